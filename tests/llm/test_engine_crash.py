"""A generation run killed with SIGKILL half-way and started again finishes without paying twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from openai_server import FakeOpenAIServer

N = 120

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from tinystories.llm import LLMConfig, LLMEngine

    base_url, cache_dir, out = sys.argv[1:4]
    requests = [[{"role": "user", "content": f'Story {i}: the verb "run", the noun "dog" and the adjective "big".'}]
                for i in range(int(sys.argv[4]))]
    engine = LLMEngine(LLMConfig(model="fake-gpt", base_url=base_url, cache_dir=cache_dir, max_concurrency=8,
                                    backoff_base=0.01), progress=False)
    results = engine.run(requests, temperature=1.0, max_tokens=200)
    json.dump({"ok": sum(r.ok for r in results), "sent": engine.stats.sent, "cached": engine.stats.cached,
               "texts": [r.text for r in results]}, open(out, "w"))
    """
)


def cached_rows(path):
    if not os.path.exists(path):
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def wait_for_rows(proc, path, enough, what):
    """Poll the running client's cache file until it holds ``enough`` replies (no event crosses the process
    boundary; the poll only decides when to go on, never what is asserted)."""
    deadline = time.monotonic() + 120
    while cached_rows(path) < enough:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_sigkill_half_way_then_restart_pays_nothing_twice(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    cache_dir, out = tmp_path / "cache", tmp_path / "out.json"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    with FakeOpenAIServer(latency=0.1, faults={"500": 0.05}, seed=1) as server:
        args = [sys.executable, str(script), server.base_url, str(cache_dir), str(out), str(N)]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        database = cache_dir / "requests.sqlite"
        wait_for_rows(proc, database, N // 2, "the run did not get half-way")
        # freeze the traffic (pause_replies returns once every reply already started is sent), wait until the client
        # has stored every good reply it received, then kill it with requests in flight: their replies come after
        # its death and must not count as delivered (nor paid twice)
        server.pause_replies()
        received = server.num_succeeded  # frozen now: no reply is sent until resume_replies()
        wait_for_rows(proc, database, received, "the client did not store the replies it received")
        assert cached_rows(database) == received
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        server.resume_replies()
        assert not out.exists()  # it really died half-way
        done_before = cached_rows(database)
        assert N // 2 <= done_before < N

        finished = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr[-2000:]
        repeats = server.repeated_identical_requests()
    result = json.loads(out.read_text())
    assert result["ok"] == N and all(result["texts"])
    assert result["cached"] >= done_before  # everything paid before the kill came from the cache
    assert repeats == 0  # the server never answered the same request twice
