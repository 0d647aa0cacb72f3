"""The Batch API mode against the local server's files/batches endpoints: split, resume by polling, partial results."""

import json

import datasets
import pytest
from openai_server import FakeOpenAIServer

from tinystories.cli import generate
from tinystories.llm import LLMConfig, LLMEngine
from tinystories.llm.batch_api import BatchRunner, split_jsonl
from tinystories.llm.request_cache import request_key


def requests(n):
    return [
        [{"role": "user", "content": f'Story {i}: the verb "run", the noun "dog" and the adjective "big".'}]
        for i in range(n)
    ]


def runner(server, tmp_path, **kwargs):
    engine = LLMEngine(
        LLMConfig(model="fake-gpt", base_url=server.base_url, cache_dir=str(tmp_path / "cache")), progress=False
    )
    return BatchRunner(engine, poll_interval=0.05, **kwargs)


def test_split_respects_both_limits():
    lines = ["x" * 9] * 25  # 10 bytes a line with its newline
    assert [len(c) for c in split_jsonl(lines, max_requests=10, max_bytes=1000)] == [10, 10, 5]
    assert [len(c) for c in split_jsonl(lines, max_requests=100, max_bytes=45)] == [4, 4, 4, 4, 4, 4, 1]
    with pytest.raises(ValueError, match="over the 5-byte file limit"):
        split_jsonl(lines, max_requests=10, max_bytes=5)


def test_batches_are_split_and_results_cached(tmp_path):
    with FakeOpenAIServer() as server:
        results = runner(server, tmp_path, max_requests_per_file=7).run(requests(20), max_tokens=200)
        assert [len(lines) for lines in server.batch_inputs] == [7, 7, 6]
        again = runner(server, tmp_path).run(requests(20), max_tokens=200)  # all cached: nothing submitted
        assert len(server.batch_inputs) == 3
    assert all(r.ok for r in results) and [r.text for r in again] == [r.text for r in results]
    assert all('"run"' not in r.text and "run" in r.text for r in results)


def test_a_rerun_polls_the_submitted_batch_instead_of_paying_again(tmp_path):
    with FakeOpenAIServer(batch_delay=0.3) as server:
        first = runner(server, tmp_path)
        batch_ids = first.submit(requests(10), max_tokens=200)  # then the process "dies" before collecting
        state = json.loads((tmp_path / "cache" / "batches.json").read_text())
        assert [e["batch_id"] for e in state.values()] == batch_ids
        results = runner(server, tmp_path).run(requests(10), max_tokens=200)
        assert len(server.batch_inputs) == 1  # polled, not re-submitted
    assert all(r.ok for r in results)
    assert json.loads((tmp_path / "cache" / "batches.json").read_text()) == {}


def test_expired_batch_keeps_partial_results_and_the_rest_is_resubmitted(tmp_path):
    with FakeOpenAIServer(batch_expire_after=6) as server:
        partial = runner(server, tmp_path).run(requests(10), max_tokens=200)
        assert sum(r.ok for r in partial) == 6
        assert all(r.error.startswith("batch:") for r in partial if not r.ok)
        server.batch_expire_after = None
        complete = runner(server, tmp_path).run(requests(10), max_tokens=200)
        assert [len(lines) for lines in server.batch_inputs] == [10, 4]  # only the missing ones
        assert server.repeated_identical_requests() == 0
    assert all(r.ok for r in complete)


def test_failed_lines_stay_uncached_and_only_they_are_resubmitted(tmp_path):
    keys = [request_key("fake-gpt", messages, {"max_tokens": 200}) for messages in requests(10)]
    in_error_file, in_output_file = keys[1:3], keys[6:8]  # 400s in the error file; 500s among the outputs
    with FakeOpenAIServer(batch_fail_ids=in_error_file, batch_fail_in_output_ids=in_output_file) as server:
        first = runner(server, tmp_path).run(requests(10), max_tokens=200)
        batch = server._batches["batch_fake0000"]
        assert batch["error_file_id"] and batch["request_counts"] == {"total": 10, "completed": 6, "failed": 4}
        failed = {r.key for r in first if not r.ok}
        assert failed == {*in_error_file, *in_output_file}
        assert all(r.error.startswith("batch:") for r in first if not r.ok)
        cache = runner(server, tmp_path).engine.cache
        assert all(cache.get(key) is None for key in failed)  # an error is never cached as a reply
        assert all(cache.get(r.key) is not None for r in first if r.ok)

        server.batch_fail_ids, server.batch_fail_in_output_ids = set(), set()
        second = runner(server, tmp_path).run(requests(10), max_tokens=200)
        resubmitted = {json.loads(line)["custom_id"] for line in server.batch_inputs[1]}
        assert resubmitted == failed  # only the failed requests, the good ones are kept
        assert server.repeated_identical_requests() == 0
    assert all(r.ok for r in second)
    assert [r.text for r in second if r.key not in failed] == [r.text for r in first if r.ok]


def test_generate_with_the_batch_api(tmp_path):
    out = tmp_path / "data"
    with FakeOpenAIServer() as server:
        generate(
            [
                "--model",
                "fake-gpt",
                "--base_url",
                server.base_url,
                "--num_stories",
                "12",
                "--use_batch_api",
                "--batch_poll_interval",
                "0.05",
                "--instruct",
                "--output_dir",
                str(out),
                "--min_words",
                "10",
                "--max_out_of_vocabulary",
                "0.6",
                "--dedup_threshold",
                "0.97",
                "--validation_fraction",
                "0.2",
            ]
        )
        assert len(server.batch_inputs) == 2  # stories, then summaries
    loaded = datasets.load_dataset(str(out), "instruct")
    assert len(loaded["train"]) + len(loaded["validation"]) == 12
