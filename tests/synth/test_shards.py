"""Sharded generation: chunks written as Hub-named Parquet shards with completion markers, resumed after SIGKILL
without paying again, duplicates found across chunks, workers that together make exactly one run's stories, and the
``missing_words`` setting."""

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import datasets
import pytest
from openai_server import WORDS_RE, FakeOpenAIServer, default_responder

from tinystories.cli import generate
from tinystories.synth.prompts import PromptSampler
from tinystories.synth.vocabulary import load_vocabulary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LENIENT = ["--min_words", "10", "--max_out_of_vocabulary", "0.6"]
VOCABULARY = load_vocabulary()
SIMPLE = [*VOCABULARY.nouns[:200], *VOCABULARY.adjectives[:100]]


def args_for(server, out, num_stories, chunk_size, *extra):
    return [
        *("--model", "fake-gpt", "--base_url", server.base_url, "--num_stories", str(num_stories)),
        *("--chunk_size", str(chunk_size), "--output_dir", str(out), "--max_concurrency", "4"),
        *("--validation_fraction", "0.2", *LENIENT, *extra),
    ]


def distinct_or_duplicate(request):
    """A 60-word story using the prompt's words; one prompt in five gets the same 60 words as every other such
    prompt (near duplicates of one another: they differ only in the required words of their last sentence)."""
    match = WORDS_RE.search(request["messages"][-1]["content"])
    if not match:
        return default_responder(request)
    verb, noun, adjective = match.groups()
    key = int.from_bytes(hashlib.sha256(" ".join(match.groups()).encode()).digest()[:4], "big")
    rng = random.Random("duplicate" if key % 5 == 0 else key)
    body = " ".join(rng.choice(SIMPLE) for _ in range(60))
    return f"Once upon a time {body}. Then they {verb} with the {adjective} {noun}."


def stories_of(folder, config="default"):
    loaded = datasets.load_dataset(str(folder), config)
    return {split: sorted(rows["story"]) for split, rows in loaded.items()}


def test_chunks_become_hub_named_shards_and_a_rerun_makes_only_the_unfinished(tmp_path):
    out = tmp_path / "data"
    with FakeOpenAIServer() as server:
        summary = generate(args_for(server, out, 25, 10, "--instruct"))
        names = sorted(os.listdir(out / "default"))
        assert {f"train-{c:05d}-of-00003.parquet" for c in range(3)} <= set(names)
        assert all(n.startswith(("train-", "validation-")) and n.endswith("-of-00003.parquet") for n in names)
        assert sorted(os.listdir(out / "instruct")) == names
        assert sorted(os.listdir(out / ".shards" / "completions")) == ["00000", "00001", "00002"]
        assert "default/train-*.parquet" in (out / "README.md").read_text()  # the card's configs: a glob of shards
        loaded = datasets.load_dataset(str(out))
        assert len(loaded["train"]) + len(loaded["validation"]) == summary["filters"]["kept"] > 20
        assert len(datasets.load_dataset(str(out), "instruct")["train"]) == len(loaded["train"])
        assert summary["shards"] == {
            **summary["shards"],
            **{"num_shards": 3, "chunk_size": 10, "complete": 3, "incomplete": [], "missing": ""},
        }
        assert summary["engine"]["stories"]["sent"] == 25 and summary["filters"]["total"] == 25

        # a lost marker: that chunk alone is made again, from the request cache; the other shards are untouched
        os.remove(out / ".shards" / "completions" / "00001")
        shards = [out / "default" / n for n in names]
        before = {p: p.stat().st_mtime_ns for p in shards}
        sent = server.num_requests
        again = generate(args_for(server, out, 25, 10, "--instruct"))
        assert server.num_requests == sent
        changed = {p.name for p in shards if p.stat().st_mtime_ns != before[p]}
        assert changed == {n for n in names if "-00001-of-" in n} and "train-00001-of-00003.parquet" in changed
        assert again["engine"]["stories"]["cached"] == 10 and again["engine"]["stories"]["sent"] == 15
        assert again["filters"] == summary["filters"] and again["counts"] == summary["counts"]
        assert stories_of(out) == {split: sorted(rows["story"]) for split, rows in loaded.items()}


def test_near_duplicates_are_found_across_chunks_and_the_report_is_exact(tmp_path):
    with FakeOpenAIServer(responder=distinct_or_duplicate) as server:
        chunked = generate(args_for(server, tmp_path / "chunked", 40, 4))
        whole = generate(args_for(server, tmp_path / "whole", 40, 40))
    duplicates = chunked["filters"]["removed"].get("near duplicate", 0)
    assert duplicates >= 3  # the one-in-five group: all but its first story, wherever their chunks are
    assert chunked["filters"] == whole["filters"]  # ten chunks report exactly what one chunk of all 40 does
    assert stories_of(tmp_path / "chunked") == stories_of(tmp_path / "whole")
    rows = [s for split in stories_of(tmp_path / "chunked").values() for s in split]
    group = [s for s in rows if s.startswith(distinct_or_duplicate_prefix())]
    assert len(group) == 1 and len(rows) == chunked["filters"]["kept"]


def distinct_or_duplicate_prefix():
    rng = random.Random("duplicate")
    return "Once upon a time " + " ".join(rng.choice(SIMPLE) for _ in range(60))


def test_two_workers_then_merge_make_exactly_the_stories_of_one_run(tmp_path):
    """Workers dedup only against their own earlier chunks (they cannot see each other); ``--merge`` replays the
    duplicate index over all chunks in order and removes what one run would have removed."""
    one, split = tmp_path / "one", tmp_path / "split"
    with FakeOpenAIServer(responder=distinct_or_duplicate) as server:
        single = generate(args_for(server, one, 40, 5))
        server.reset_counters()
        workers = [generate(args_for(server, split, 40, 5, "--worker", f"{i}/2")) for i in range(2)]
        assert server.num_requests == 40 and server.repeated_identical_requests() == 0  # disjoint halves
        assert sorted(os.listdir(split / ".shards" / "completions")) == [f"{c:05d}" for c in range(8)]
        assert [w["shards"]["complete"] for w in workers] == [4, 4]
        before_merge = sum(w["filters"]["kept"] for w in workers)
        assert before_merge > single["filters"]["kept"]  # the workers kept duplicates of each other's stories
        merged = generate(args_for(server, split, 40, 5, "--merge"))
        assert server.num_requests == 40  # merging sends nothing
    assert merged["filters"] == single["filters"] and merged["counts"] == single["counts"]
    assert stories_of(split) == stories_of(one)
    assert merged["engine"]["stories"]["sent"] == 40 and merged["shards"]["worker"] == "merged"


def test_missing_words_reask_keep_drop(tmp_path):
    def forgets_the_adjective(request):
        match = WORDS_RE.search(request["messages"][-1]["content"])
        story = distinct_or_duplicate(request)
        key = int.from_bytes(hashlib.sha256(story.encode()).digest()[:2], "big")
        return story.replace(f" {match.group(3)} ", " ") if match and key % 2 else story

    runs = {}
    with FakeOpenAIServer(responder=forgets_the_adjective) as server:
        for mode in ("keep", "drop", "reask"):
            server.reset_counters()
            out = tmp_path / mode
            runs[mode] = (generate(args_for(server, out, 20, 10, "--missing_words", mode)), server.num_requests)
    keep, keep_requests = runs["keep"]
    rows = [r for split in datasets.load_dataset(str(tmp_path / "keep")).values() for r in split]
    flagged = [r for r in rows if r["missing_words"]]
    assert keep_requests == 20 and flagged  # kept, not re-asked
    assert all(r["missing_words"] == [r["instruction"]["words"][2]] for r in flagged)
    assert "missing required words" not in keep["filters"]["removed"]
    drop, drop_requests = runs["drop"]
    assert drop_requests == 20  # accepted once, never paid again, then filtered with its own reason
    assert drop["filters"]["removed"]["missing required words"] == len(flagged)
    assert drop["filters"]["kept"] == keep["filters"]["kept"] - len(flagged)
    reask, reask_requests = runs["reask"]
    assert reask_requests > 20  # the engine asked again for each story missing its word
    assert reask["engine"]["stories"]["failed"] >= 1 or reask["filters"]["kept"] == keep["filters"]["kept"]
    dropped = datasets.load_dataset(str(tmp_path / "drop"))
    assert not any(r["missing_words"] for split in dropped.values() for r in split)


def _wait_for(condition, timeout=120.0):
    """Wait until ``condition()`` holds (the state of another process: files, its cache), re-checked every 20 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_resume_after_sigkill_keeps_finished_shards_and_pays_nothing_twice(tmp_path):
    out = tmp_path / "data"
    sampler = PromptSampler(VOCABULARY, seed=0)
    chunk3 = [sampler.prompt(i).prompt for i in range(30, 40)]
    release = threading.Event()

    def holds_chunk_3(request):  # the 4th-10th stories of chunk 3 wait: the kill always finds chunk 3 unfinished
        if request["messages"][-1]["content"] in chunk3[3:]:
            release.wait(120)
        return default_responder(request)

    with FakeOpenAIServer(responder=holds_chunk_3) as server:
        argv = args_for(server, out, 60, 10)
        env = {**os.environ, "PYTHONPATH": REPO}
        child = subprocess.Popen([sys.executable, "-m", "tinystories", "generate", *argv], env=env, cwd=str(tmp_path))
        try:
            # chunk 3 is requested while chunk 2 is written; its first three replies are committed, then chunk 2's
            # marker is written (chunk 3 cannot be: 7 of its stories are held)
            assert server.wait_until(
                lambda: sum(r["request"]["messages"][-1]["content"] in chunk3 for r in server.records) >= 4
            )
            cache = sqlite3.connect(f"file:{out / '.cache' / 'requests.sqlite'}?mode=ro", uri=True)
            _wait_for(lambda: cache.execute("SELECT COUNT(*) FROM replies").fetchone()[0] >= 33)
            cache.close()
            _wait_for(lambda: len(os.listdir(out / ".shards" / "completions")) >= 3)
            markers = sorted(os.listdir(out / ".shards" / "completions"))
            assert markers == ["00000", "00001", "00002"]
            finished = [p for c in range(3) for p in (out / "default").glob(f"*-{c:05d}-of-00006.parquet")]
            assert len(finished) >= 3
            finished += [out / ".shards" / "completions" / m for m in markers]
            mtimes = {p: p.stat().st_mtime_ns for p in finished}
            child.send_signal(signal.SIGKILL)
            assert child.wait(60) == -signal.SIGKILL
        finally:
            release.set()
            if child.poll() is None:
                child.kill()
        paid_before = server.num_succeeded
        summary = generate(argv)
        assert {p: p.stat().st_mtime_ns for p in finished} == mtimes  # finished shards were not rewritten
        assert server.repeated_identical_requests() == 0  # nothing answered before the kill was paid again
        assert server.num_succeeded == 60 and paid_before == 33
    stories = summary["engine"]["stories"]
    assert stories["cached"] == 3 and stories["sent"] == 57  # chunks 0-2 never looked up; chunk 3's 3 from cache
    rows = [r for split in datasets.load_dataset(str(out)).values() for r in split]
    prompts = [r["instruction"]["prompt:"] for r in rows]
    assert len(prompts) == len(set(prompts)) == summary["filters"]["kept"]  # every story once
    assert summary["filters"]["total"] == 60 and summary["shards"]["complete"] == 6
    assert json.loads((out / "generation.json").read_text())["shards"]["complete"] == 6


def test_a_chunk_that_cannot_be_written_stops_the_run_and_a_rerun_finishes_from_the_cache(tmp_path, monkeypatch):
    from tinystories.synth import pipeline

    out = tmp_path / "data"
    real_write = pipeline.write_shard

    def disk_full_at_chunk_1(folder, path, rows):
        if "-00001-of-" in path:
            raise OSError(28, "No space left on device")
        return real_write(folder, path, rows)

    with FakeOpenAIServer() as server:
        monkeypatch.setattr(pipeline, "write_shard", disk_full_at_chunk_1)
        with pytest.raises(OSError, match="No space left"):  # raised in the writing thread, seen by the run
            generate(args_for(server, out, 40, 10))
        assert sorted(os.listdir(out / ".shards" / "completions")) == ["00000"]
        sent = server.num_requests
        assert sent <= 30  # chunk 2 may have been requested while chunk 1 was written, chunk 3 never
        monkeypatch.setattr(pipeline, "write_shard", real_write)
        summary = generate(args_for(server, out, 40, 10))
        assert server.repeated_identical_requests() == 0  # what the failed run was paid for came from the cache
        assert server.num_requests == 40  # each story asked for once, over both runs
    assert summary["shards"]["complete"] == 4 and summary["filters"]["total"] == 40
    prompts = [r["instruction"]["prompt:"] for split in datasets.load_dataset(str(out)).values() for r in split]
    assert len(prompts) == len(set(prompts)) == summary["filters"]["kept"]


def test_a_plan_change_rebuilds_the_shards_from_the_cache(tmp_path):
    out = tmp_path / "data"
    with FakeOpenAIServer() as server:
        generate(args_for(server, out, 20, 10))
        sent = server.num_requests
        summary = generate(args_for(server, out, 20, 5))  # same stories, other chunking: 4 shards, nothing paid
        assert server.num_requests == sent
    assert sorted(os.listdir(out / "default"))[0] == "train-00000-of-00004.parquet"
    assert len(os.listdir(out / "default")) == 8 and summary["engine"]["stories"]["cached"] == 20


@pytest.mark.parametrize("bad", ["2/2", "1", "a/b"])
def test_worker_must_be_i_of_n(bad, tmp_path):
    from tinystories.errors import RecipeError

    with pytest.raises((RecipeError, ValueError), match="worker"):
        generate(["--output_dir", str(tmp_path), "--worker", bad])
