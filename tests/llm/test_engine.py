"""The LLM engine against a real local OpenAI-compatible server: faults, retries, cache, budget, endpoints."""

import pytest
from llm_helpers import engine, story_requests
from openai_server import FakeOpenAIServer

from tinystories.llm import request_key


def test_200_requests_with_10_percent_faults_all_arrive(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    faults = {"429": 0.02, "500": 0.02, "timeout": 0.02, "truncated": 0.02, "length": 0.01, "empty": 0.01}
    # a "timeout" reply is held until the client gives up: only those time out, whatever the machine's load
    with FakeOpenAIServer(faults=faults, seed=3, latency=0.01) as server:
        eng = engine(server, tmp_path, request_timeout=5.0)
        results = eng.run(story_requests(200), temperature=1.0, max_tokens=300)
        injected = sum(server.faults_injected.values())
        kinds = set(server.faults_injected)
        repeats = server.repeated_identical_requests()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert 10 <= injected <= 40  # about 10% of ~220 requests
    assert kinds == set(faults)  # every kind of fault happened (the seeded schedule is deterministic)
    assert eng.stats.retries == injected  # every fault was retried once it was seen
    assert eng.stats.succeeded == 200 and eng.stats.failed == 0
    assert repeats == 0
    for result, request in zip(results, story_requests(200)):
        verb = request[0]["content"].split('verb "')[1].split('"')[0]
        assert verb in result.text  # each result belongs to its own request, in order


def test_timeouts_are_retried_and_reported(tmp_path):
    with FakeOpenAIServer(fail_first={"timeout": 1}) as server:  # each first attempt is held until abandoned
        eng = engine(server, tmp_path, request_timeout=5.0)
        results = eng.run(story_requests(4), max_tokens=100)
        records = server.records
    assert all(r.ok and r.attempts == 2 for r in results)
    assert eng.stats.retries == 4
    abandoned = [r for r in records if r["fault"] == "timeout"]
    assert len(abandoned) == 4 and not any(r["delivered"] for r in abandoned)  # the client hung up on each


def test_persistent_failures_are_reported_with_their_reason(tmp_path):
    with FakeOpenAIServer(fail_first={"500": 10}) as server:
        eng = engine(server, tmp_path, max_retries=2)
        results = eng.run(story_requests(3), max_tokens=100)
    assert not any(r.ok for r in results)
    assert all(r.error == "HTTP 500" and r.reason == "HTTP 500" and r.attempts == 3 for r in results)
    assert eng.stats.failures == {"HTTP 500": 3}
    assert eng.stats.as_dict()["reasons"] == {"HTTP 500": {"count": 9, "cost_usd": 0.0}}


def test_replies_that_are_not_chat_completions_are_retried_then_cached_once_usable(tmp_path):
    # each request: an HTML page with status 200 (a broken proxy), then a JSON reply whose content is no text
    with FakeOpenAIServer(fail_first={"garbage": 1, "malformed": 1}) as server:
        eng = engine(server, tmp_path)
        results = eng.run(story_requests(3), max_tokens=100)
        again = engine(server, tmp_path).run(story_requests(3), max_tokens=100)
        sent = len(server.records)
    assert all(r.ok and r.attempts == 3 for r in results)
    reasons = eng.stats.as_dict()["reasons"]
    assert reasons == {"malformed reply": {"count": 6, "cost_usd": 0.0}}, reasons
    assert [r.text for r in again] == [r.text for r in results] and all(r.cached for r in again)
    assert sent == 9  # the usable replies came from the cache the second time


def test_unusable_replies_fail_with_their_reason_after_the_retries(tmp_path):
    with FakeOpenAIServer(fail_first={"garbage": 5}) as server:
        eng = engine(server, tmp_path, max_retries=1)
        results = eng.run(story_requests(2), max_tokens=100)
    assert not any(r.ok for r in results)
    assert all(r.reason == "malformed reply" and r.attempts == 2 for r in results), [r.error for r in results]
    assert eng.stats.failures == {"malformed reply": 2}


def test_retry_after_is_honoured(tmp_path):
    with FakeOpenAIServer(fail_first={"429": 1}, retry_after=0.4) as server:
        eng = engine(server, tmp_path, backoff_base=0.001)
        results = eng.run(story_requests(2), max_tokens=100)
        records = server.records
    assert all(r.ok for r in results)
    for key in {r["key"] for r in records}:  # measured by the server: load only makes the wait longer
        refused, retried = [r for r in records if r["key"] == key]
        assert refused["fault"] == "429" and retried["success"]
        assert retried["arrived_at"] - refused["replied_at"] >= 0.4  # waited as asked, not the 1 ms backoff


def test_identical_requests_are_never_sent_twice(tmp_path):
    with FakeOpenAIServer() as server:
        first = engine(server, tmp_path).run(story_requests(20), temperature=0.7, max_tokens=200)
        sent = server.num_requests
        second_engine = engine(server, tmp_path)  # a new run, same cache folder
        second = second_engine.run(story_requests(20), temperature=0.7, max_tokens=200)
        assert server.num_requests == sent == 20
        # any sampling parameter is part of the key: another temperature is another request
        engine(server, tmp_path).run(story_requests(2), temperature=0.9, max_tokens=200)
        assert server.num_requests == 22
    assert [r.text for r in first] == [r.text for r in second]
    assert all(r.cached for r in second) and second_engine.stats.sent == 0
    assert request_key("m", [{"role": "user", "content": "x"}], {"temperature": 1.0}) != request_key(
        "m", [{"role": "user", "content": "x"}], {"temperature": 0.5}
    )


def test_budget_cap_stops_sending_and_says_so(tmp_path, caplog):
    # fake-gpt priced at $1 per 1M input and $1000 per 1M output tokens: ~60 words a reply ~ $0.06
    with FakeOpenAIServer(latency=0.02) as server:
        eng = engine(server, tmp_path, budget_usd=0.5, max_concurrency=4, prices={"fake-gpt": (1.0, 1000.0)})
        results = eng.run(story_requests(100), max_tokens=300)
        sent = server.num_requests
    paid = [r for r in results if r.ok]
    refused = [r for r in results if not r.ok]
    assert eng.stats.budget_stopped
    assert 0 < len(paid) < 100 and all(r.error.startswith("budget") for r in refused)
    assert sent == len(paid)
    per_request = eng.stats.cost_usd / len(paid)
    assert eng.stats.cost_usd >= 0.5 and eng.stats.cost_usd <= 0.5 + 4 * per_request  # overshoot <= in flight
    assert "Budget of $0.50 reached" in caplog.text


def test_requests_spread_over_endpoints_least_loaded_first(tmp_path):
    with FakeOpenAIServer(latency=0.05) as a, FakeOpenAIServer(latency=0.05) as b:
        eng = engine(f"{a.base_url},{b.base_url}", tmp_path, max_concurrency=8)
        results = eng.run(story_requests(40), max_tokens=100)
        counts = (a.num_requests, b.num_requests)
    assert all(r.ok for r in results)
    assert sum(counts) == 40 and min(counts) >= 15  # both replicas did real work


def test_bad_request_is_permanent_and_api_key_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(require_api_key="sk-secret") as server:
        results = engine(server, tmp_path).run(story_requests(2), max_tokens=100)
        assert all(r.error.startswith("HTTP 401") and r.attempts == 1 for r in results)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
        assert all(r.ok for r in engine(server, tmp_path).run(story_requests(2), max_tokens=100))
    cache_bytes = (tmp_path / "cache" / "requests.sqlite").read_bytes()
    assert b"sk-secret" not in cache_bytes


def test_unknown_sampling_parameter_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown sampling parameters"):
        engine("http://127.0.0.1:9/v1", tmp_path).run(story_requests(1), temprature=1.0)
