"""The batching worker under stress, in-process (``build_app`` + ``ServerThread``): a bad request inside a burst,
a failure inside a batch, shutdown and a dead worker, the queue limit, prompt truncation, and the API key."""

import json
import logging
import threading

import openai
import pytest
from openai_schema import ErrorResponse
from serve_helpers import TIMEOUT, health, make_client, post_raw, send_and_hang_up_later, settled_stats, wait_for

from tinystories.serving import API_KEY_ENV, ServerThread, ServeSettings, build_app
from tinystories.serving.cli import warn_if_exposed


def burst(n: int, send) -> list:
    """``send(i)`` from ``n`` threads released at the same moment; their results (or exceptions), in order."""
    results: list = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait(timeout=TIMEOUT)
        try:
            results[i] = send(i)
        except Exception as e:  # noqa: BLE001 - returned and asserted by the caller
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture(scope="module")
def slow_batching(tiny_model):
    """An in-process app gathering requests for 300 ms: requests sent together share a generate call."""
    app = build_app(tiny_model, served_model_name="tiny", batch_wait_ms=300)
    with ServerThread(app) as base_url:
        yield app, base_url


def test_a_nan_parameter_inside_a_burst_is_a_400_and_spares_the_requests_batched_around_it(slow_batching):
    app, base_url = slow_batching
    root = base_url.removesuffix("/v1")
    before = settled_stats(root)
    good = json.dumps({"model": "tiny", "prompt": "Once", "max_tokens": 4, "temperature": 0.5}).encode()
    bad = b'{"model": "tiny", "prompt": "Once", "max_tokens": 4, "temperature": NaN}'
    replies = burst(9, lambda i: post_raw(f"{base_url}/completions", bad if i == 4 else good))
    status, body = replies.pop(4)
    assert status == 400 and body["error"]["code"] == "invalid_json" and "NaN" in body["error"]["message"], body
    ErrorResponse.model_validate(body)
    assert [r[0] for r in replies] == [200] * 8, replies
    assert all(r[1]["choices"][0]["finish_reason"] in ("stop", "length") for r in replies), replies
    after = settled_stats(root)
    assert after["requests"] - before["requests"] == 8  # the bad one never reached the queue
    assert after["failed"] == before["failed"]
    calls = after["generate_calls"] - before["generate_calls"]
    assert 1 <= calls < 8, (before, after)  # batched: some call ran several of the burst's requests


def test_a_failure_inside_a_batch_is_a_generic_500_and_the_worker_goes_on(slow_batching, monkeypatch):
    app, base_url = slow_batching
    scheduler = app.state.scheduler
    failures = []

    class FailingOnce(scheduler.sampler_class):
        def __init__(self, *args, **kwargs):
            if not failures:
                failures.append(1)
                raise RuntimeError("secret internal detail")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(scheduler, "sampler_class", FailingOnce)
    client = make_client(base_url)
    before = settled_stats(base_url.removesuffix("/v1"))
    with pytest.raises(openai.InternalServerError) as e:
        client.completions.create(model="tiny", prompt="Once", max_tokens=4)
    assert e.value.status_code == 500 and e.value.code == "generation_error"
    assert "secret" not in e.value.message and "RuntimeError" not in e.value.message
    ErrorResponse.model_validate(e.value.response.json())
    reply = client.completions.create(model="tiny", prompt="Once", max_tokens=4)  # the worker is alive
    assert reply.usage.completion_tokens >= 1
    stats = settled_stats(base_url.removesuffix("/v1"))
    assert stats["failed"] - before["failed"] == 1 and health(base_url.removesuffix("/v1"))[0] == 200


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


def test_in_process_app_queue_limit_and_prompt_truncation(tiny_model):
    # a batch waits for 4 rows or a quiet 2 s: the first two requests stay queued, so the queue (2) is full
    settings = {"max_batch_size": 4, "max_queue": 2, "batch_wait_ms": 2000, "max_model_len": 64}
    app = build_app(tiny_model, served_model_name="tiny", truncate_prompts=True, **settings)
    with ServerThread(app) as base_url:
        client = make_client(base_url)
        long_prompt = "Once upon a time there was a little dog. " * 20
        reply = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=8, temperature=0)
        assert reply.usage.prompt_tokens == 64 - 8  # the prompt kept its last tokens

        def one(i):
            try:
                client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=1)
                return "ok"
            except openai.RateLimitError as e:
                assert e.status_code == 429 and e.response.headers["retry-after"] == "1"
                assert e.code == "queue_full" and "queue is full" in e.message
                ErrorResponse.model_validate(e.response.json())
                return 429

        outcomes = burst(8, one)
        assert sorted(outcomes, key=str) == [429] * 6 + ["ok"] * 2, outcomes
        root = base_url.removesuffix("/v1")
        stats = settled_stats(root)
        assert stats["rejected"] == 6 and stats["requests"] == 3 and stats["generate_calls"] == 2

        # two clients fill the queue and hang up: their requests leave it at once, they never run
        sockets = [send_and_hang_up_later(base_url, {"prompt": "Once", "max_tokens": 8}) for _ in range(2)]
        assert wait_for(lambda: health(root)[1]["stats"]["queued"] == 2)
        for s in sockets:
            s.close()
        assert wait_for(lambda: health(root)[1]["stats"]["queued"] == 0, timeout=1.8)  # before the batch wait ends
        reply = client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=1)  # no 429
        assert reply.choices[0].finish_reason in ("stop", "length")
        stats = settled_stats(root)
        assert stats["cancelled"] == 2 and stats["rejected"] == 6 and stats["generate_calls"] == 3


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
            ErrorResponse.model_validate(body)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0).models.list()
        client = make_client(base_url, api_key="sk-secret")
        assert [m.id for m in client.models.list().data] == ["tiny"]
        assert client.completions.create(model="tiny", prompt="Once", max_tokens=2).usage.completion_tokens >= 1
        assert health(base_url.removesuffix("/v1"))[0] == 200  # /health stays open
