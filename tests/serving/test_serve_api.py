# ruff: noqa: F401, F811
"""``tinystories serve`` as users run it: a real server process on 127.0.0.1 (``--port 0``) serving the tiny trained
model, driven by the real ``openai`` client: completions, chat, streaming, ``n``, stop strings, seeds, logprobs,
usage, errors, batching of concurrent requests, disconnects, and ``tinystories generate`` and GPT-Eval running
against it."""

import math
import threading

import evaluate
import openai
import pytest
from serve_helpers import (  # the fixtures client, server and tokenizer are the tests' parameters
    TIMEOUT,
    client,
    get_json,
    health,
    make_client,
    post_raw,
    post_stream,
    send_and_hang_up_later,
    server,
    settled_stats,
    tokenizer,
    wait_for,
)

import tinystories.metrics
from tinystories.evaluation.grade_parsing import weighted_grades


def test_models_and_health_name_the_folder_and_its_context(server, client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["model"]  # the folder's name
    assert models.data[0].model_extra["max_model_len"] == 1024
    assert models.data[0].model_extra["root"] == "model"  # the served name, never the folder's path
    health = get_json(f"{server.root}/health")
    assert health["status"] == "ok" and health["context"] == 1024
    assert get_json(f"{server.base_url}/health")["model"] == "model"
    assert "http://127.0.0.1:" in open(server.log_path).read()  # the URL is logged at start


def test_completion_counts_usage_with_the_tokenizer(client, tokenizer):
    prompt = "Once upon a time, Lily went to the park."
    reply = client.completions.create(model="model", prompt=prompt, max_tokens=8, temperature=0)
    choice = reply.choices[0]
    assert reply.object == "text_completion" and choice.index == 0 and isinstance(choice.text, str)
    assert choice.finish_reason in ("length", "stop")
    assert reply.usage.prompt_tokens == len(tokenizer(prompt).input_ids)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert 1 <= reply.usage.completion_tokens <= 8
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 8


def test_chat_without_template_uses_the_plain_dialogue_format(client, tokenizer):
    messages = [{"role": "system", "content": "Tell stories."}, {"role": "user", "content": "A story about a dog."}]
    reply = client.chat.completions.create(model="model", messages=messages, max_tokens=10, temperature=0)
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant" and isinstance(reply.choices[0].message.content, str)
    assert "\nUser:" not in reply.choices[0].message.content
    expected = "System: Tell stories.\nUser: A story about a dog.\nAssistant:"
    assert reply.usage.prompt_tokens == len(tokenizer(expected).input_ids)


def test_streaming_joins_to_the_greedy_text(client):
    prompt = "Tom saw a big red ball"
    plain = client.completions.create(model="model", prompt=prompt, max_tokens=20, temperature=0)
    chunks = list(client.completions.create(model="model", prompt=prompt, max_tokens=20, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason

    messages = [{"role": "user", "content": "Tell me a story."}]
    plain = client.chat.completions.create(model="model", messages=messages, max_tokens=20, temperature=0)
    stream = client.chat.completions.create(
        model="model",
        messages=messages,
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens


def test_n_gives_distinct_choices(client):
    kwargs = {"model": "model", "prompt": "Once upon a time", "n": 4, "max_tokens": 12, "temperature": 1, "seed": 5}
    reply = client.completions.create(**kwargs)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert len({c.text for c in reply.choices}) == 4
    assert 4 <= reply.usage.completion_tokens <= 4 * 12
    assert [c.text for c in client.completions.create(**kwargs).choices] == [c.text for c in reply.choices]


def test_streaming_n_choices_join_to_the_same_seeded_texts(server, client):
    kwargs = {"model": "model", "prompt": "Lily saw a cat", "n": 3, "max_tokens": 16, "temperature": 1, "seed": 11}
    before = server.stats()
    plain = client.completions.create(**kwargs)
    after = server.stats()
    assert after["prompt_tokens"] - before["prompt_tokens"] == plain.usage.prompt_tokens  # once a prompt, not a row
    texts, finishes = {i: "" for i in range(3)}, {i: [] for i in range(3)}
    for chunk in client.completions.create(**kwargs, stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            if choice.finish_reason is not None:
                finishes[choice.index].append(choice.finish_reason)
    assert [texts[i] for i in range(3)] == [c.text for c in plain.choices]
    assert [finishes[i] for i in range(3)] == [[c.finish_reason] for c in plain.choices]

    chat = {"model": "model", "messages": [{"role": "user", "content": "Hi"}], "n": 2, "max_tokens": 8, "seed": 3}
    plain = client.chat.completions.create(**chat)
    texts = {0: "", 1: ""}
    for chunk in client.chat.completions.create(**chat, stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert [texts[0], texts[1]] == [c.message.content for c in plain.choices]


def test_stream_usage_is_null_in_every_chunk_but_the_last(server):
    body = {"model": "model", "prompt": "Once", "max_tokens": 6, "temperature": 0, "stream": True, "n": 2}
    body["stream_options"] = {"include_usage": True}
    events = post_stream(f"{server.base_url}/completions", body)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all("usage" in c for c in chunks)  # OpenAI: "usage": null until the last chunk
    assert [c["usage"] is None for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12


def test_stop_cuts_the_text_at_the_stop_string(client):
    prompt = "Lily and Ben played"
    full = client.completions.create(model="model", prompt=prompt, max_tokens=24, temperature=0).choices[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert len(stop) == 2
    cut = client.completions.create(model="model", prompt=prompt, max_tokens=24, temperature=0, stop=[stop, "@@"])
    assert cut.choices[0].text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="model", prompt=prompt, max_tokens=24, temperature=0, stop=stop, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == full[: full.index(stop)]
    # every generated token is counted and has a logprob entry, the one that completed the stop string too
    cut = client.completions.create(model="model", prompt=prompt, max_tokens=24, temperature=0, stop=stop, logprobs=0)
    assert len(cut.choices[0].logprobs.tokens) == cut.usage.completion_tokens
    assert "".join(cut.choices[0].logprobs.tokens).startswith(cut.choices[0].text)


def test_eos_is_counted_and_has_a_logprob_entry_with_its_text(client, tokenizer):
    eos = tokenizer.eos_token_id
    reply = client.completions.create(
        model="model", prompt="The end", max_tokens=4, temperature=0, logprobs=2, logit_bias={str(eos): 100}
    )
    choice = reply.choices[0]
    assert choice.text == "" and choice.finish_reason == "stop" and reply.usage.completion_tokens == 1
    assert choice.logprobs.tokens == ["<|endoftext|>"] and choice.logprobs.text_offset == [0]
    assert "<|endoftext|>" in choice.logprobs.top_logprobs[0]  # special tokens are shown with their text
    chat = client.chat.completions.create(
        model="model",
        messages=[{"role": "user", "content": "Bye"}],
        max_tokens=4,
        logprobs=True,
        top_logprobs=3,
        logit_bias={str(eos): 100},
    )
    content = chat.choices[0].logprobs.content
    assert chat.choices[0].message.content == "" and len(content) == chat.usage.completion_tokens == 1
    assert content[0].token == "<|endoftext|>" and bytes(content[0].bytes) == b"<|endoftext|>"
    assert len({t.token for t in content[0].top_logprobs}) == 3  # no two alternatives share a text


def test_same_seed_same_text(client):
    def sample(seed):
        reply = client.completions.create(
            model="model", prompt="One day", max_tokens=16, temperature=1, top_p=0.9, n=2, seed=seed
        )
        return [c.text for c in reply.choices]

    first = sample(1234)
    assert sample(1234) == first
    assert sample(4321) != first
    chat = [{"role": "user", "content": "Hello"}]
    replies = [
        client.chat.completions.create(model="model", messages=chat, max_tokens=12, seed=7).choices[0].message.content
        for _ in range(2)
    ]
    assert replies[0] == replies[1]


def test_completion_logprobs_legacy_format(client):
    reply = client.completions.create(model="model", prompt="The cat", max_tokens=10, temperature=0, logprobs=3)
    choice = reply.choices[0]
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 10
    assert "".join(lp.tokens) == choice.text  # ASCII tokens
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(10)]
    for logprob, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert logprob <= 0 and 1 <= len(top) <= 3
        assert all(v <= 0 for v in top.values()) and sum(math.exp(v) for v in top.values()) <= 1 + 1e-6
        assert logprob == pytest.approx(max(top.values()))  # greedy: the chosen token is the most likely


def test_chat_logprobs_format_is_what_the_judge_reads(client, tokenizer):
    messages = [{"role": "user", "content": "Grade this story."}]
    reply = client.chat.completions.create(
        model="model", messages=messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=5
    )
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 8
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and bytes(token.bytes).decode("utf-8", "replace") == token.token
        assert len(token.top_logprobs) == 5 and sum(math.exp(t.logprob) for t in token.top_logprobs) <= 1 + 1e-6
        assert token.logprob == pytest.approx(token.top_logprobs[0].logprob)

    # the GPT-Eval judge's probability-weighted grade reads choices[0].logprobs.content[*].top_logprobs: with the
    # digits 5 and 8 made likely (and the other grades impossible), the one-token reply is a grade whose weighted
    # value is a probability-weighted mean of 5 and 8
    grade_ids = {g: tokenizer(str(g), add_special_tokens=False).input_ids for g in range(11)}
    bias = {str(ids[0]): (10 if g in (5, 8) else -100) for g, ids in grade_ids.items() if len(ids) == 1}
    reply = client.chat.completions.create(
        model="model", messages=messages, max_tokens=1, temperature=0, logprobs=True, top_logprobs=20, logit_bias=bias
    )
    first = reply.choices[0].logprobs.content[0]
    assert first.token in ("5", "8") and {t.token for t in first.top_logprobs} >= {"5", "8"}
    grades = weighted_grades(reply.choices[0].logprobs.model_dump(), {"grammar": 0})
    assert 5 < grades["grammar"] < 8 and 0 < grades["grammar_mass"] <= 1 + 1e-6


def test_bad_requests_are_clear_openai_errors(server, client):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="Hi", max_tokens=2)
    assert e.value.status_code == 404 and "gpt-4" in e.value.message and e.value.code == "model_not_found"

    cases = [
        ({"temperature": 3}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"n": 0}, "n"),
        ({"n": 1000}, "n"),
        ({"logprobs": 21}, "logprobs"),
        ({"prompt": "hello " * 1200}, "prompt"),
        ({"prompt": [[-1]] * 130}, "n"),  # n x prompts is checked before the prompts are read
    ]
    for params, param in cases:
        kwargs = {"prompt": "Hi", "max_tokens": 4, **params}
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model="model", **kwargs)
        assert e.value.status_code == 400 and e.value.param == param, (params, e.value.body)
        assert param in e.value.message
    with pytest.raises(openai.BadRequestError, match="context length is 1024 tokens"):
        client.completions.create(model="model", prompt="hello " * 1200, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(
            model="model", messages=[{"role": "user", "content": "Hi"}], logprobs=True, top_logprobs=25
        )
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="model", messages=[])

    status, body = post_raw(f"{server.base_url}/completions", b'{"model": "model", "prompt": ')
    assert status == 400 and body["error"]["code"] == "invalid_json" and "JSON" in body["error"]["message"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    for name, constant in [("temperature", "NaN"), ("presence_penalty", "NaN"), ("top_p", "-Infinity")]:
        data = f'{{"prompt": "Once", "max_tokens": 2, "{name}": {constant}}}'.encode()
        status, body = post_raw(f"{server.base_url}/completions", data)
        assert status == 400 and body["error"]["code"] == "invalid_json" and constant in body["error"]["message"]
    status, body = post_raw(f"{server.base_url}/completions", b'{"prompt": "Once", "temperature": 1e999}')
    assert status == 400 and body["error"]["param"] == "temperature" and "finite" in body["error"]["message"]
    status, body = post_raw(f"{server.base_url}/completions", b"[" * 100_000)
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = post_raw(f"{server.base_url}/embeddings", b"{}")
    assert status == 404 and "/v1/embeddings" in body["error"]["message"]


def test_concurrent_requests_are_batched_into_few_generate_calls(server):
    before = server.stats()
    results, errors = [None] * 32, []
    start = threading.Barrier(32)  # a real burst: every client sends at the same moment

    def one(i):
        try:
            local = make_client(server.base_url)
            start.wait(timeout=TIMEOUT)
            reply = local.completions.create(model="model", prompt=f"Story {i}: Once", max_tokens=8, temperature=1)
            results[i] = reply.choices[0].text
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(r is not None for r in results)
    after = server.stats()
    assert after["requests"] - before["requests"] == 32 and after["rows"] - before["rows"] == 32
    calls = after["generate_calls"] - before["generate_calls"]
    assert calls < 32, after  # 32 rows in fewer calls: some call ran several requests (whatever ran before)
    assert after["queued"] == 0


def test_a_client_that_disconnects_cancels_its_request(server, client, tokenizer):
    before = server.stats()
    n, max_tokens = 64, 800
    body = {"model": "model", "prompt": "Once", "n": n, "max_tokens": max_tokens, "temperature": 1}
    s = send_and_hang_up_later(server.base_url, {**body, "logit_bias": {str(tokenizer.eos_token_id): -100}})
    assert wait_for(lambda: health(server.root)[1]["stats"]["running"] == 1)  # its rows are generating
    s.close()  # the client gives up: the worker stops its rows at the next step
    after = settled_stats(server.root)
    assert after["completion_tokens"] - before["completion_tokens"] < n * max_tokens // 2, after
    assert after["cancelled"] - before["cancelled"] == 1
    reply = client.completions.create(model="model", prompt="Once", max_tokens=4, temperature=0)
    assert reply.usage.completion_tokens >= 1


def test_generate_pipeline_runs_against_the_served_model(server, tmp_path, monkeypatch, capsys):
    from tinystories.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    before = server.stats()["requests"]
    out = tmp_path / "data"
    args = ["--model", "model", "--base_url", server.base_url, "--num_stories", "4", "--output_dir", str(out)]
    args += ["--max_tokens", "24", "--temperature", "0", "--max_retries", "0", "--max_content_retries", "0"]
    args += ["--max_concurrency", "4"]
    # the tiny model writes 24 tokens of noise: every reply is cut at max_tokens, which the engine rejects
    with pytest.raises(SystemExit) as e:
        main(["generate", *args])
    assert server.stats()["requests"] - before == 4  # every story request reached the server
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and err.startswith("tinystories generate: error: No story survived")
    assert "0 of 4 requests gave a story (failures: finish_reason=length (reply cut at max_tokens): 4)" in err
    assert (out / ".cache").is_dir()


def test_gpt_eval_runs_against_the_served_model(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    before = server.stats()
    gpt_eval = evaluate.load(
        tinystories.metrics.GPT_EVAL, judge_model="model", cache_dir=str(tmp_path), progress=False
    )
    predictions = [" park. She played with her ball.", " dog. He was happy."]
    references = ["Lily went to the", "Tom had a little"]
    scores = gpt_eval.compute(
        predictions=predictions,
        references=references,
        base_url=server.base_url,
        judge_max_tokens=24,
        max_retries=1,
        return_samples=True,
    )
    after = server.stats()  # settled: the counts of the last batch are in
    sent = after["requests"] - before["requests"]
    assert sent >= 2 * len(predictions)  # every sample was sent at least twice (an assessment, then a retry/grade)
    assert scores["num_graded"] + scores["num_ungraded"] == len(predictions)
    usage = scores["usage"]
    assert usage["requests_sent"] == sent and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    # the server counts a prompt once, as usage does, whatever n the judge asks for
    assert usage["prompt_tokens"] == after["prompt_tokens"] - before["prompt_tokens"]
    assert usage["completion_tokens"] == after["completion_tokens"] - before["completion_tokens"]
    # greedy noise never ends on its own: each assessment is cut at max_tokens, and the sample is ungraded
    for sample in scores["samples"]:
        assert sample["grades"] is not None or "finish_reason=length" in (sample["error"] or ""), sample
