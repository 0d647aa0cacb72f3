"""``tinystories serve``: a real server process on 127.0.0.1 serving the tiny trained model, driven by the real
``openai`` client (completions, chat, streaming, n, stop, seeds, logprobs, usage, errors, batching of concurrent
requests, disconnects), ``tinystories generate`` and GPT-Eval running against it; in-process apps for the queue,
failures inside a batch, a dead worker, shutdown, the API key and a SentencePiece-style (Metaspace) tokenizer."""

import json
import logging
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
from tinystories.evaluation.grade_parsing import weighted_grades
from tinystories.serving.server import (
    API_KEY_ENV,
    Job,
    ServedModel,
    ServerThread,
    ServeSettings,
    build_app,
    warn_if_exposed,
)
from tinystories.serving.server import main as serve_main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def post_raw(url: str, data: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def health(root: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def settled_stats(root: str, timeout: float = 30) -> dict:
    """The batching statistics once nothing runs or waits (a reply can reach the client before its batch's counts)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = health(root)[1]["stats"]
        if (stats["running"] == 0 and stats["queued"] == 0) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def send_and_hang_up_later(base_url: str, body: dict) -> socket.socket:
    """A raw HTTP request whose reply is never read: closing the socket is a client that disconnects."""
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    data = json.dumps(body).encode()
    s = socket.create_connection((host, int(port)))
    head = f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    s.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def wait_for(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: str):
        self.base_url, self.process, self.log_path = base_url, process, log_path
        self.root = base_url.removesuffix("/v1")

    def stats(self) -> dict:
        return settled_stats(self.root)


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
    request = urllib.request.Request(
        f"{server.base_url}/completions", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        events = [line.removeprefix(b"data: ") for line in response.read().splitlines() if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
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
    assert after["requests"] - before["requests"] == 32 and after["rows"] - before["rows"] == 32
    calls = after["generate_calls"] - before["generate_calls"]
    assert calls < 32, after  # 32 rows in fewer calls: some call ran several requests (whatever ran before)
    assert after["queued"] == 0


def test_a_client_that_disconnects_cancels_its_request(server, client, tokenizer):
    before = server.stats()
    n, max_tokens = 64, 800
    body = {"model": "model", "prompt": "Once", "n": n, "max_tokens": max_tokens, "temperature": 1}
    s = send_and_hang_up_later(server.base_url, {**body, "logit_bias": {str(tokenizer.eos_token_id): -100}})
    assert wait_for(lambda: health(server.root)[1]["stats"]["running"] == 1)
    time.sleep(0.2)
    s.close()  # the client gives up: the worker stops its rows at the next step
    after = settled_stats(server.root)
    assert after["completion_tokens"] - before["completion_tokens"] < n * max_tokens // 2, after
    assert after["cancelled"] - before["cancelled"] == 1
    reply = client.completions.create(model="model", prompt="Once", max_tokens=4, temperature=0)
    assert reply.usage.completion_tokens >= 1


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
        root = base_url.removesuffix("/v1")
        stats = settled_stats(root)
        assert stats["rejected"] == 6 and stats["requests"] == 3 and stats["generate_calls"] == 2

        # two clients fill the queue and hang up: their requests leave it at once, they never run
        sockets = [send_and_hang_up_later(base_url, {"prompt": "Once", "max_tokens": 8}) for _ in range(2)]
        assert wait_for(lambda: health(root)[1]["stats"]["queued"] == 2)
        for s in sockets:
            s.close()
        assert wait_for(lambda: health(root)[1]["stats"]["queued"] == 0, timeout=0.9)  # before the batch wait ends
        reply = client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=1)  # no 429
        assert reply.choices[0].finish_reason in ("stop", "length")
        stats = settled_stats(root)
        assert stats["cancelled"] == 2 and stats["rejected"] == 6 and stats["generate_calls"] == 3


def test_cli_help_and_a_missing_model_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        serve_main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--max_batch_size" in out and "--api_key" in out and API_KEY_ENV in out
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


@pytest.fixture(scope="module")
def slow_batching(tiny_model):
    """An in-process app gathering requests for 300 ms: two requests sent together share a generate call."""
    app = build_app(tiny_model, served_model_name="tiny", batch_wait_ms=300)
    with ServerThread(app) as base_url:
        yield app, base_url


def test_a_nan_parameter_is_a_400_and_spares_the_requests_batched_with_it(slow_batching):
    app, base_url = slow_batching
    good = {}
    data = json.dumps({"model": "tiny", "prompt": "Once", "max_tokens": 4, "temperature": 0.5}).encode()
    thread = threading.Thread(target=lambda: good.update(r=post_raw(f"{base_url}/completions", data)))
    thread.start()
    time.sleep(0.05)
    status, reply = post_raw(f"{base_url}/completions", b'{"prompt": "Once", "max_tokens": 4, "temperature": NaN}')
    thread.join()
    assert status == 400 and reply["error"]["code"] == "invalid_json", reply
    assert good["r"][0] == 200 and good["r"][1]["choices"][0]["finish_reason"] in ("stop", "length"), good


def test_a_failure_inside_a_batch_is_a_generic_500_and_the_worker_goes_on(slow_batching):
    app, base_url = slow_batching
    scheduler = app.state.scheduler
    sampler_class, tracker_class = scheduler._classes
    failures = []

    class FailingOnce(sampler_class):
        def __init__(self, *args, **kwargs):
            if not failures:
                failures.append(1)
                raise RuntimeError("secret internal detail")
            super().__init__(*args, **kwargs)

    scheduler._classes = (FailingOnce, tracker_class)
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=60)
        with pytest.raises(openai.InternalServerError) as e:
            client.completions.create(model="tiny", prompt="Once", max_tokens=4)
        assert e.value.status_code == 500 and e.value.code == "generation_error"
        assert "secret" not in e.value.message and "RuntimeError" not in e.value.message
        reply = client.completions.create(model="tiny", prompt="Once", max_tokens=4)  # the worker is alive
        assert reply.usage.completion_tokens >= 1
        stats = settled_stats(base_url.removesuffix("/v1"))
        assert stats["failed"] == 1 and health(base_url.removesuffix("/v1"))[0] == 200
    finally:
        scheduler._classes = (sampler_class, tracker_class)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the worker is made to die
def test_shutdown_and_a_dead_worker_are_503s(tiny_model):
    app = build_app(tiny_model, served_model_name="tiny")
    scheduler = app.state.scheduler
    with ServerThread(app) as base_url:
        root = base_url.removesuffix("/v1")
        outcome = {}
        long = {"prompt": "Once", "n": 32, "max_tokens": 900, "logit_bias": {"0": -100}}
        thread = threading.Thread(
            target=lambda: outcome.update(r=post_raw(f"{base_url}/completions", json.dumps(long).encode()))
        )
        thread.start()
        assert wait_for(lambda: health(root)[1]["stats"]["running"] == 1)
        scheduler.close()  # what the end of the lifespan does: the running batch stops at its next step
        thread.join()
        status, body = outcome["r"]
        assert status == 503 and body["error"]["code"] == "shutting_down", body
        status, body = post_raw(f"{base_url}/completions", b'{"prompt": "Once", "max_tokens": 2}')
        assert status == 503 and body["error"]["code"] == "shutting_down"
        assert health(root)[0] == 503 and health(root)[1]["status"] == "unhealthy"

        scheduler.start()  # a new worker ... that dies
        assert health(root)[0] == 200

        def die():
            raise SystemExit

        scheduler._pick = die
        status, body = post_raw(f"{base_url}/completions", b'{"prompt": "Once", "max_tokens": 2}')
        assert status == 503 and body["error"]["code"] == "unavailable", body  # answered, not left hanging
        assert wait_for(lambda: health(root)[0] == 503)
        status, body = post_raw(f"{base_url}/completions", b'{"prompt": "Once", "max_tokens": 2}')
        assert status == 503 and body["error"]["code"] == "unavailable"


def test_an_api_key_guards_the_v1_endpoints(tiny_model, monkeypatch, caplog):
    monkeypatch.setenv(API_KEY_ENV, "sk-from-env")
    settings = ServeSettings(model=tiny_model, host="0.0.0.0")
    assert settings.api_key == "sk-from-env" and "sk-from-env" not in repr(settings)
    with caplog.at_level(logging.INFO, logger="tinystories.serve"):
        warn_if_exposed(settings)
        assert "sk-from-env" not in caplog.text and not any(r.levelno >= logging.WARNING for r in caplog.records)
        warn_if_exposed(ServeSettings(model=tiny_model, host="0.0.0.0", api_key=""))
        assert "not a loopback address, without an API key" in caplog.text
        caplog.clear()
        warn_if_exposed(ServeSettings(model=tiny_model, host="::1", api_key=""))
        assert not caplog.records
    monkeypatch.delenv(API_KEY_ENV)

    app = build_app(tiny_model, served_model_name="tiny", api_key="sk-secret")
    with ServerThread(app) as base_url:
        for headers in ({}, {"authorization": "Bearer sk-wrong"}, {"authorization": "sk-secret"}):
            status, body = post_raw(f"{base_url}/completions", b'{"prompt": "Once", "max_tokens": 2}', headers)
            assert status == 401 and body["error"]["code"] == "invalid_api_key", (headers, body)
            assert set(body["error"]) == {"message", "type", "param", "code"} and "sk-" not in body["error"]["message"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0).models.list()
        client = openai.OpenAI(base_url=base_url, api_key="sk-secret", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["tiny"]
        assert client.completions.create(model="tiny", prompt="Once", max_tokens=2).usage.completion_tokens >= 1
        assert health(base_url.removesuffix("/v1"))[0] == 200  # /health stays open


@pytest.fixture(scope="module")
def metaspace_model(tiny_model, tmp_path_factory):
    """The tiny model with a SentencePiece-style word tokenizer (Metaspace pre-tokenizer and decoder: a leading
    space is written ``▁``, and the first word of a decoded text loses it), built offline with ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "</s>", "<s>", "▁Once", "▁upon", "▁a", "▁time", "▁word", "▁café", "▁日本語", "▁🎉", "▁naïve"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    folder = tmp_path_factory.mktemp("metaspace") / "model"
    shutil.copytree(tiny_model, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        (folder / name).unlink(missing_ok=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", bos_token="<s>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    assert tokenizer.decode([words.index("▁word")]) == "word"  # the bug's cause: no leading space alone
    return str(folder), {w: i for i, w in enumerate(words)}


def test_a_metaspace_reply_keeps_its_leading_space_and_streams_whole_characters(metaspace_model):
    folder, vocab = metaspace_model
    with ServerThread(build_app(folder, served_model_name="meta")) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=60)
        word = {"model": "meta", "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0}
        word["logit_bias"] = {str(vocab["▁word"]): 100}
        reply = client.completions.create(**word, logprobs=1)
        assert reply.choices[0].text == " word word word"
        assert reply.choices[0].logprobs.tokens == [" word"] * 3 and reply.choices[0].logprobs.text_offset == [
            0,
            5,
            10,
        ]
        assert client.completions.create(**word, echo=True).choices[0].text == "Once upon a time word word word"
        assert "".join(c.choices[0].text for c in client.completions.create(**word, stream=True)) == " word word word"

        # sampled among multi-byte words: the stream's chunks join to the same text as the plain reply
        many = {"model": "meta", "prompt": "Once upon a time", "max_tokens": 12, "seed": 1, "n": 2}
        many["logit_bias"] = {str(vocab[w]): 100 for w in ("▁café", "▁日本語", "▁🎉", "▁naïve")}
        plain = [c.text for c in client.completions.create(**many).choices]
        assert all(t.startswith(" ") and not t.isascii() and "\ufffd" not in t for t in plain), plain
        streamed = ["", ""]
        for chunk in client.completions.create(**many, stream=True):
            for choice in chunk.choices:
                streamed[choice.index] += choice.text
        assert streamed == plain


class _Served:
    """Just the text side of ServedModel, for the row-level tests."""

    decode = ServedModel.decode
    decode_after = ServedModel.decode_after

    def __init__(self, tokenizer):
        self.tokenizer, self.eos_ids, self.decodes = tokenizer, {tokenizer.eos_token_id}, 0


def _row(stream: bool, stops: list[str] | None = None, max_tokens: int = 100):
    spec = {"index": 0, "prompt_ids": [1], "context": [], "context_text": "", "temperature": 0.0, "top_p": 1.0,
            "max_tokens": max_tokens, "stops": stops or [], "logprobs": None}  # fmt: skip
    return Job("completion", [spec], stream=stream, seed=None, extra={"prompt_tokens": 1, "prompts": [None]}).rows[0]


def test_streamed_rows_send_whole_multibyte_characters(tokenizer):
    served = _Served(tokenizer)
    text = "Café naïve: 日本語 🎉 ok"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) > len(text.split())  # byte-level: the characters are split over several tokens
    row, chunks = _row(stream=True), []
    for token in ids:
        row.add(token, None, served)
        chunks.append(row.delta(final=False)[0])
    row.finish_reason = "length"
    row.finalize(served)
    chunks.append(row.delta(final=True)[0])
    assert "".join(chunks) == row.text == tokenizer.decode(ids) == text
    assert not any("\ufffd" in c for c in chunks)

    row = _row(stream=True, stops=["本語"])
    for token in ids:
        row.add(token, None, served)
        if row.finished:
            break
    row.finalize(served)
    assert row.text == "Café naïve: 日" and row.finish_reason == "stop"


def test_rows_nobody_reads_while_generating_are_decoded_once(tokenizer, monkeypatch):
    served = _Served(tokenizer)
    calls = []
    monkeypatch.setattr(_Served, "decode", lambda self, ids: calls.append(1) or ServedModel.decode(self, ids))
    ids = tokenizer("Once upon a time there was a dog.", add_special_tokens=False).input_ids
    row = _row(stream=False, max_tokens=len(ids))
    for token in ids:
        row.add(token, None, served)
    assert calls == [] and row.finish_reason == "length"
    row.finalize(served)
    assert len(calls) == 1 and row.text == "Once upon a time there was a dog."
    streamed = _row(stream=True, max_tokens=len(ids))
    for token in ids:
        streamed.add(token, None, served)
    assert len(calls) > len(ids)  # a streamed row decodes a window every step
