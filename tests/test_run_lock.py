"""The run lock (``tinystories.run_lock``): two runs on one folder, a killed run's lock, and the lock's own rules."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from conftest import REPO
from openai_server import FakeOpenAIServer

from tinystories.errors import TinyStoriesError
from tinystories.run_lock import LOCK_NAME, OWNER_NAME, RunLock, RunLockError, read_owner

TIMEOUT = 300  # seconds a subprocess may take on the loaded 2-core machine (never reached when things work)


def generate_command(server, output_dir, cache_dir, num_stories):
    return [
        sys.executable,
        "-m",
        "tinystories",
        "generate",
        "--model",
        "fake-gpt",
        "--base_url",
        server.base_url,
        "--num_stories",
        str(num_stories),
        "--output_dir",
        str(output_dir),
        "--cache_dir",
        str(cache_dir),
        "--max_concurrency",
        "2",
        "--min_words",
        "10",
        "--max_out_of_vocabulary",
        "0.6",
        "--dedup_threshold",
        "0.97",
        "--request_timeout",
        "600",
    ]


def test_a_second_generate_on_the_same_cache_exits_at_once_and_nothing_is_paid_twice(tmp_path):
    cache = tmp_path / "shared-cache"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    log = open(tmp_path / "first.log", "w+")
    with FakeOpenAIServer() as server:
        server.pause_replies()  # the first run's requests arrive and wait, in flight, until resume_replies()
        first = subprocess.Popen(
            generate_command(server, tmp_path / "first", cache, 6),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        try:
            # both of its max_concurrency 2 requests recorded (in_flight counts from arrival, num_requests from the
            # parsed body) and held: the first run cannot send another until replies resume
            assert server.wait_until(
                lambda: (server.num_requests >= 2 and server.in_flight >= 2) or first.poll() is not None, TIMEOUT
            )
            assert first.poll() is None, open(tmp_path / "first.log").read()
            held = server.num_requests
            second = subprocess.run(
                generate_command(server, tmp_path / "second", cache, 6),
                capture_output=True,
                text=True,
                cwd=REPO,
                env=env,
                timeout=TIMEOUT,
            )
            assert first.poll() is None  # the first run was alive the whole time
            assert second.returncode == 2, second.stdout + second.stderr
            error = second.stderr.strip().splitlines()[-1]
            assert error.startswith("tinystories generate: error: ") and "Traceback" not in second.stderr
            assert f"pid {first.pid} " in error and str(cache) in error and "started " in error
            assert "tinystories generate" in error.split(": ", 2)[2]  # the other run's command line
            assert server.num_requests == held  # the second run sent nothing
        finally:
            server.resume_replies()
            returncode = first.wait(timeout=TIMEOUT)
        first_log = open(tmp_path / "first.log").read()
        assert returncode == 0, first_log
        assert server.num_requests == 6 and server.repeated_identical_requests() == 0
    assert "HTTP Request:" not in first_log  # quiet by default: no line per request
    for folder in (cache, tmp_path / "first"):  # released: no lock files left behind
        assert not os.path.exists(folder / LOCK_NAME) and not os.path.exists(folder / OWNER_NAME)


HOLDER = """
import sys, time
from tinystories.run_lock import RunLock
RunLock(sys.argv[1], purpose="generate").__enter__()
print("locked", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    folder = tmp_path / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockError) as busy:
            with RunLock(folder, purpose="evaluate"):
                pass
        assert f"pid {holder.pid} " in str(busy.value) and "\n" not in str(busy.value)
        assert isinstance(busy.value, TinyStoriesError)  # the CLI prints it as one line, exit 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=TIMEOUT)
    assert read_owner(folder)["pid"] == holder.pid  # the dead run's files are still there ...
    with RunLock(folder, purpose="evaluate"):  # ... and its lock is taken over at once
        owner = read_owner(folder)
        assert owner["pid"] == os.getpid() and owner["purpose"] == "evaluate"
    assert not os.path.exists(folder / LOCK_NAME) and not os.path.exists(folder / OWNER_NAME)


def test_the_lock_is_reentrant_in_its_thread_and_refused_to_another(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    outcome = {}

    def other_thread():
        try:
            with RunLock(b, purpose="generate"):
                outcome["locked"] = True
        except RunLockError as e:
            outcome["error"] = str(e)

    with RunLock(a, b, a, None, purpose="generate") as lock:  # a folder named twice is locked once; None skipped
        assert lock.folders == [os.path.realpath(a), os.path.realpath(b)]
        with RunLock(b, purpose="evaluate"):  # the same thread, nested: re-entrant
            pass
        assert os.path.exists(b / LOCK_NAME)  # the inner exit did not release the outer lock
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert "locked" not in outcome and f"pid {os.getpid()} " in outcome["error"]
    assert not os.path.exists(a / LOCK_NAME) and not os.path.exists(b / LOCK_NAME)


def test_a_partly_acquired_lock_is_released_when_one_folder_is_busy(tmp_path):
    free, busy = tmp_path / "free", tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(busy)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockError):
            with RunLock(free, busy):
                pass
        with RunLock(free):  # "free" was released when "busy" failed
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=TIMEOUT)


def test_the_owner_file_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setattr(
        sys,
        "argv",
        ["tinystories", "serve", "m", "--api_key", "sk-secret1", "--hub_token=hf_secret2", "http://u:pw3@host/v1"],
    )
    with RunLock(tmp_path, purpose="generate"):
        text = open(tmp_path / OWNER_NAME).read()
    owner = json.loads(text)
    assert owner["command"].startswith("tinystories serve m --api_key") and owner["host"]
    for secret in ("sk-secret1", "hf_secret2", "pw3"):
        assert secret not in text
