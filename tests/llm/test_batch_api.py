"""The Batch API mode against the local server's files/batches endpoints: split, resume by polling, partial results."""

import json

import datasets
import pytest
from openai_server import FakeOpenAIServer

from tinystories.cli import generate
from tinystories.llm import LLMConfig, LLMEngine
from tinystories.llm.batch_api import BatchRunner, split_jsonl


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
