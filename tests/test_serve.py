"""``tinystories serve``: a real server process on 127.0.0.1 serving the tiny trained model, driven by the real
``openai`` client (completions, chat, streaming, n, stop, seeds, logprobs, usage, errors, batching of concurrent
requests), and ``tinystories generate`` and GPT-Eval running against it."""

import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import evaluate
import openai
import pytest
from conftest import REPO
from transformers import AutoTokenizer

import tinystories.metrics
from tinystories.judge import weighted_grades
from tinystories.serve import ServerThread, build_app
from tinystories.serve import main as serve_main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def post_raw(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: str):
        self.base_url, self.process, self.log_path = base_url, process, log_path
        self.root = base_url.removesuffix("/v1")

    def stats(self) -> dict:
        return get_json(f"{self.root}/health")["stats"]


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """``python -m tinystories serve TINY_MODEL`` as a subprocess, ready when /health answers; stopped with SIGINT."""
    port = free_port()
    log_path = str(tmp_path_factory.mktemp("serve") / "server.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tinystories", "serve", tiny_model, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    srv = Server(f"http://127.0.0.1:{port}/v1", process, log_path)
    deadline = time.monotonic() + 90
    while True:
        try:
            if get_json(f"{srv.root}/health")["status"] == "ok":
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start:\n{open(log_path).read()}")
        time.sleep(0.2)
    yield srv
    process.send_signal(2)  # Ctrl-C: uvicorn's graceful shutdown, then the generation worker stops
    try:
        assert process.wait(timeout=20) == 0, open(log_path).read()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_models_and_health_name_the_folder_and_its_context(server, client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["model"]  # the folder's name
    assert models.data[0].model_extra["max_model_len"] == 1024
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
    reply = client.completions.create(model="model", prompt="Once upon a time", n=4, max_tokens=12, temperature=1)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert len({c.text for c in reply.choices}) == 4
    assert 4 <= reply.usage.completion_tokens <= 4 * 12


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
    status, body = post_raw(f"{server.base_url}/embeddings", b"{}")
    assert status == 404 and "/v1/embeddings" in body["error"]["message"]


def test_concurrent_requests_are_batched_into_few_generate_calls(server):
    before = server.stats()
    results, errors = [None] * 32, []

    def one(i):
        try:
            local = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=120)
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
    assert after["requests"] - before["requests"] == 32
    calls = after["generate_calls"] - before["generate_calls"]
    assert calls < 32 and after["max_rows_per_call"] > 1, after
    assert after["queued"] == 0


def test_in_process_app_queue_limit_and_prompt_truncation(tiny_model):
    # a batch waits for 4 rows or a quiet second: the first two requests stay queued, so the queue (2) is full
    settings = {"max_batch_size": 4, "max_queue": 2, "batch_wait_ms": 1000, "max_model_len": 64}
    app = build_app(tiny_model, served_model_name="tiny", truncate_prompts=True, **settings)
    with ServerThread(app) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=60)
        long_prompt = "Once upon a time there was a little dog. " * 20
        reply = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=8, temperature=0)
        assert reply.usage.prompt_tokens == 64 - 8  # the prompt kept its last tokens

        outcomes = []

        def one():
            try:
                client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=1)
                outcomes.append("ok")
            except openai.RateLimitError as e:
                assert e.status_code == 429 and e.response.headers["retry-after"] == "1"
                assert e.code == "queue_full" and "queue is full" in e.message
                outcomes.append(429)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes, key=str) == [429] * 6 + ["ok"] * 2
        stats = get_json(base_url.removesuffix("/v1") + "/health")["stats"]
        assert stats["rejected"] == 6 and stats["requests"] == 3 and stats["generate_calls"] == 2


def test_cli_help_and_a_missing_model_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        serve_main(["--help"])
    assert e.value.code == 0 and "--max_batch_size" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        serve_main([str(tmp_path / "no-such-model")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinystories serve: error:") and "no-such-model" in err and "\n" not in err


def test_generate_pipeline_runs_against_the_served_model(server, tmp_path, monkeypatch, capsys):
    from tinystories.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    before = server.stats()["requests"]
    out = tmp_path / "data"
    args = ["--model", "model", "--base_url", server.base_url, "--num_stories", "4", "--output_dir", str(out)]
    args += ["--max_tokens", "24", "--temperature", "0", "--max_retries", "0", "--max_concurrency", "4"]
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
        tinystories.metrics.GPT_EVAL, judge_model="model", judge_cache_dir=str(tmp_path), progress=False
    )
    predictions = [" park. She played with her ball.", " dog. He was happy."]
    references = ["Lily went to the", "Tom had a little"]
    scores = gpt_eval.compute(
        predictions=predictions,
        references=references,
        base_url=server.base_url,
        max_tokens=24,
        max_retries=1,
        return_samples=True,
    )
    after = server.stats()
    sent = after["requests"] - before["requests"]
    assert sent >= 2 * len(predictions)  # every sample was sent at least twice (an assessment, then a retry/grade)
    assert scores["num_graded"] + scores["num_ungraded"] == len(predictions)
    usage = scores["usage"]
    assert usage["requests_sent"] == sent and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["prompt_tokens"] == after["prompt_tokens"] - before["prompt_tokens"]
    # greedy noise never ends on its own: each assessment is cut at max_tokens, and the sample is ungraded
    for sample in scores["samples"]:
        assert sample["grades"] is not None or "finish_reason=length" in (sample["error"] or ""), sample


def test_a_tokenizer_chat_template_formats_the_messages(tiny_model, tmp_path):
    folder = str(tmp_path / "templated")
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    messages = [{"role": "user", "content": "Tell me a story about a frog."}]
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert expected == "<user>Tell me a story about a frog.\n<assistant>"
    with ServerThread(build_app(folder)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["templated"]
        reply = client.chat.completions.create(model="templated", messages=messages, max_tokens=6, temperature=0)
    assert reply.usage.prompt_tokens == len(tokenizer(expected, add_special_tokens=False).input_ids)
    assert reply.usage.completion_tokens <= 6
