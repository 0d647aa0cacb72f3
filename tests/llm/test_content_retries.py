"""Replies that come back unusable (cut, empty, refused by ``validate``) are re-asked at once, within their own
limit, kept in the cache as rejected, and reused by a re-run whose check accepts them; their cost is counted."""

import sqlite3

from llm_helpers import engine, story_requests
from openai_server import FakeOpenAIServer

from tinystories.llm import failure_table
from tinystories.llm.failures import CUT

PRICES = {"fake-gpt": (1.0, 1000.0)}  # USD per 1M tokens: a reply of ~60 words costs ~$0.06


def missing(word):
    """A validator that wants ``word`` in every reply (the fake server never writes "zebra")."""
    return lambda text, index: None if word in text else f"misses required word(s): {word}"


def test_cut_and_empty_replies_are_re_asked_at_once_within_max_content_retries(tmp_path):
    with FakeOpenAIServer(fail_first={"length": 1, "empty": 1}) as server:
        eng = engine(server, tmp_path, max_retries=0, max_content_retries=2, backoff_base=5.0, backoff_max=5.0)
        results = eng.run(story_requests(4), max_tokens=100)
    assert all(r.ok and r.attempts == 3 for r in results)  # no transport retry was allowed: these are not ones
    assert eng.stats.backoff_s == 0.0  # and none waited
    assert [[x.reason for x in r.rejected] for r in results] == [[CUT, "empty reply"]] * 4
    assert all(r.rejected[0].text and not r.rejected[1].text for r in results)  # the cut text is kept
    stats = eng.stats.as_dict()
    assert stats["content_retries"] == 8 and stats["retries"] == 8 and stats["failures"] == {}


def test_the_content_limit_is_independent_of_the_transport_limit(tmp_path):
    with FakeOpenAIServer(fail_first={"500": 1, "length": 3}) as server:
        eng = engine(server, tmp_path, max_retries=1, max_content_retries=2)
        results = eng.run(story_requests(2), max_tokens=100)
        sent = server.num_requests
    assert sent == 8  # 1 + 1 transport retry, then 1 + 2 content re-asks, each request
    assert not any(r.ok for r in results) and all(r.error == CUT and len(r.rejected) == 3 for r in results)
    assert eng.stats.failures == {CUT: 2}
    assert eng.stats.backoff_s > 0  # the 500 waited (jittered backoff), the cut replies did not add to it


def test_rejected_replies_are_cached_and_a_looser_rerun_reuses_them_without_a_request(tmp_path):
    requests = story_requests(5)
    with FakeOpenAIServer() as server:
        strict = engine(server, tmp_path, missing("zebra"), max_content_retries=1)
        first = strict.run(requests, max_tokens=100)
        assert server.num_requests == 10  # 1 + 1 re-ask each, both paid and refused
        assert {r.reason for r in first} == {"misses required word(s)"}
        assert all(r.error == "misses required word(s): zebra" for r in first)
        # the same strict check again: the limit counts the paid rejected replies, so nothing more is bought
        again = engine(server, tmp_path, missing("zebra"), max_content_retries=1).run(requests, max_tokens=100)
        assert server.num_requests == 10 and all(r.cached and not r.ok and len(r.rejected) == 2 for r in again)
        # a looser check (a word the replies have): the first paid reply is taken, no request sent
        loose = engine(server, tmp_path, missing("Once"), max_content_retries=1)
        reused = loose.run(requests, max_tokens=100)
        assert server.num_requests == 10 and loose.stats.sent == 0
        # a larger limit buys only what the limit adds: one more reply each, never the two already paid again
        more = engine(server, tmp_path, missing("zebra"), max_content_retries=2)
        more.run(requests, max_tokens=100)
        assert server.num_requests == 15 and more.stats.sent == 5
    assert all(r.ok and r.cached for r in reused) and loose.stats.reused_rejected == 5
    assert [r.text for r in reused] == [r.rejected[0].text for r in first]
    with sqlite3.connect(tmp_path / "cache" / "requests.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0] == 15
        assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0


def test_a_stricter_rerun_keeps_the_accepted_reply_as_rejected_and_pays_only_within_the_limit(tmp_path):
    requests = story_requests(3)
    with FakeOpenAIServer() as server:
        engine(server, tmp_path).run(requests, max_tokens=100)
        stricter = engine(server, tmp_path, missing("zebra"), max_content_retries=1)
        results = stricter.run(requests, max_tokens=100)
        assert server.num_requests == 6  # the cached reply counts as the first of the two allowed
        loose = engine(server, tmp_path).run(requests, max_tokens=100)
        assert server.num_requests == 6 and all(r.ok and r.cached for r in loose)
    assert all(not r.ok and [x.cached for x in r.rejected] == [True, False] for r in results)


def test_failure_reasons_count_attempts_and_what_their_replies_cost(tmp_path):
    with FakeOpenAIServer(fail_first={"429": 1, "length": 1}, retry_after=0.01) as server:
        eng = engine(server, tmp_path, prices=PRICES, max_content_retries=0)
        results = eng.run(story_requests(4), max_tokens=100)
    assert not any(r.ok for r in results)
    cut_cost = sum(eng.cost_of(r.rejected[0].response["usage"]) for r in results)  # as the server counted usage
    stats = eng.stats.as_dict()
    assert stats["reasons"]["HTTP 429"] == {"count": 4, "cost_usd": 0.0}  # refused: nothing paid
    assert stats["reasons"][CUT]["count"] == 4 and cut_cost > 0
    assert abs(stats["reasons"][CUT]["cost_usd"] - round(cut_cost, 6)) < 1e-6
    assert abs(stats["cost_usd"] - round(cut_cost, 6)) < 1e-6  # what the run paid: the cut replies
    assert stats["failures"] == {CUT: 4}
    table = eng.stats.table("stories").splitlines()
    assert table[0].split() == ["requests", "reason", "failed", "attempts", "cost", "USD", "requests", "lost"]
    assert table[1].split()[-3:] == ["4", f"{cut_cost:.6f}", "4"] and CUT in table[1]
    assert table[2].split()[-3:] == ["4", "0.000000", "0"] and "HTTP 429" in table[2]


def test_the_failure_table_reads_old_and_new_summaries():
    new = {"reasons": {"timeout": {"count": 3, "cost_usd": 0.0}}, "failures": {"budget": 2}}
    old = {"failures": {"APITimeoutError": 1}}  # a generation.json written before reasons were recorded
    markdown = failure_table({"stories": new, "summaries": old}, markdown=True).splitlines()
    assert markdown[0] == "| requests | reason | failed attempts | cost USD | requests lost |"
    assert markdown[2:] == [
        "| stories | timeout | 3 | 0.000000 | 0 |",
        "| stories | budget | 0 | 0.000000 | 2 |",
        "| summaries | APITimeoutError | ? | ? | 1 |",
    ]
    assert failure_table({"stories": {"reasons": {}, "failures": {}}}) == "No failed or rejected replies."
