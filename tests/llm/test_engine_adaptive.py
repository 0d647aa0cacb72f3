"""The engine's adaptive concurrency against a real local server: it backs off an overloaded endpoint, comes back,
says once when everything times out, and stops re-sending when even one request at a time times out."""

import logging
import threading

import pytest
from llm_helpers import engine, story_requests
from openai_server import FakeOpenAIServer


@pytest.mark.parametrize("kind", ["429", "503"])
def test_429_and_503_lower_the_concurrency_and_replies_raise_it_back(tmp_path, kind):
    with FakeOpenAIServer(fail_first={kind: 1}, retry_after=0.01) as server:  # every request refused once
        eng = engine(server, tmp_path, max_concurrency=4)
        results = eng.run(story_requests(24), max_tokens=100)
        most_at_once = server.max_concurrency
    assert all(r.ok for r in results)
    conc = eng.stats.as_dict()["concurrency"]
    assert conc["decreases"] >= 1 and conc["lowest"] == [1]  # refused with no reply yet: down to 1
    assert conc["increases"] >= 2  # the replies brought it back up
    assert most_at_once <= 4  # never above max_concurrency
    assert eng.stats.as_dict()["reasons"][f"HTTP {kind}"]["count"] == 24


def test_a_server_slower_than_the_timeout_at_this_concurrency_gets_fewer_requests(tmp_path):
    # capacity 2, 0.3 s each: of 8 sent at once the last two wait 1.2 s, past the 1 s timeout (the queue counts)
    with FakeOpenAIServer(capacity=2, service_time=0.3) as server:
        eng = engine(server, tmp_path, max_concurrency=8, request_timeout=1.0)
        results = eng.run(story_requests(16), max_tokens=100)
        dropped, served = server.num_dropped, server.max_serving
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    stats = eng.stats.as_dict()
    assert stats["concurrency"]["decreases"] >= 1 and stats["concurrency"]["lowest"][0] < 8
    timeouts = stats["reasons"].get("timeout", {}).get("count", 0)
    assert 1 <= dropped <= timeouts  # a client hangs up only when it times out, and the server dropped those
    assert served == 2


def test_without_adaptation_the_limit_stays_at_max_concurrency(tmp_path):
    with FakeOpenAIServer(fail_first={"429": 1}, retry_after=0.01) as server:
        eng = engine(server, tmp_path, max_concurrency=4, adaptive_concurrency=False)
        results = eng.run(story_requests(8), max_tokens=100)
    assert all(r.ok for r in results)
    assert eng.stats.concurrency["decreases"] == 0 and eng.stats.concurrency["lowest"] == [4]


def test_when_every_attempt_times_out_it_says_so_once_and_stops_sending(tmp_path, caplog):
    # every attempt is held until the client hangs up: 4 at once time out, then 1 alone, then nothing more is sent
    with FakeOpenAIServer(fail_first={"timeout": 1000}) as server:
        eng = engine(server, tmp_path, max_concurrency=4, request_timeout=0.5)
        with caplog.at_level(logging.WARNING, logger="tinystories.llm.engine"):
            results = eng.run(story_requests(10), max_tokens=100)
        sent = server.num_requests
    assert sent == 5 and eng.stats.sent == 5  # a wave of 4, then one alone: no re-sending round after round
    assert not any(r.ok for r in results) and {r.reason for r in results} == {"timeout"}
    unsent = [r for r in results if r.attempts == 0]
    assert len(unsent) == 5 and all("even one request at a time" in r.error for r in unsent)
    assert eng.stats.timeouts_stopped and eng.stats.failures == {"timeout": 10}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    early = [w for w in warnings if w.startswith("Every request to fake-gpt timed out")]
    assert len(early) == 1 and "raise request_timeout (now 0.5 s" in early[0] and "lower max_concurrency" in early[0]
    assert sum(w.startswith("Stopped sending to fake-gpt") for w in warnings) == 1
    assert len(warnings) == 2  # nothing per request


class Flag(logging.Handler):
    """Sets ``event`` when a record containing ``text`` is logged."""

    def __init__(self, text):
        super().__init__()
        self.text, self.event, self.messages = text, threading.Event(), []

    def emit(self, record):
        self.messages.append(record.getMessage())
        if self.text in record.getMessage():
            self.event.set()


def test_no_reply_for_a_while_is_said_once_before_anything_times_out(tmp_path):
    flag = Flag("No reply from fake-gpt in 0.2 s")
    log = logging.getLogger("tinystories.llm.engine")
    log.addHandler(flag)
    try:
        with FakeOpenAIServer() as server:
            server.pause_replies()  # the requests arrive; their replies wait for the warning
            eng = engine(server, tmp_path, max_concurrency=4)
            eng.stall_warning_s = 0.2
            outcome = {}
            runner = threading.Thread(target=lambda: outcome.update(results=eng.run(story_requests(6))))
            runner.start()
            assert flag.event.wait(60), flag.messages
            server.resume_replies()
            runner.join(120)
    finally:
        log.removeHandler(flag)
    assert all(r.ok for r in outcome["results"])
    assert len(flag.messages) == 1 and "4 request(s) in flight" in flag.messages[0]
    assert "raise request_timeout" in flag.messages[0]
