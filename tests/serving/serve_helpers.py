"""Helpers of the serving tests: HTTP calls with generous timeouts, polling a server's state with a deadline, and
the ``server`` fixture (a real ``python -m tinystories serve`` process on a port the OS picked).

Test modules import the fixtures they use (``from serve_helpers import server, client``): a conftest.py here would
shadow the suite's own (``from conftest import ...``) for every test collected after this folder.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai
import pytest
from transformers import AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 120  # seconds a client waits for a reply: the suite runs on a loaded 2-core machine
URL_LINE = re.compile(r"Serving \S+ .* at (http://[^ ]+/v1)")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return json.load(response)


def post_raw(url: str, data: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST a raw body; the status and the JSON reply (an error reply too)."""
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def post_stream(url: str, body: dict) -> list[dict | str]:
    """The server-sent events of a streamed request: each ``data:`` payload as JSON (``[DONE]`` as the string)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        lines = [line.removeprefix(b"data: ") for line in response.read().splitlines() if line.startswith(b"data: ")]
    return [line.decode() if line == b"[DONE]" else json.loads(line) for line in lines]


def health(root: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def wait_for(predicate, timeout: float = 60) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def settled_stats(root: str, timeout: float = 60) -> dict:
    """The batching statistics once nothing runs or waits (a reply can reach the client before its batch's counts)."""
    settled = {}

    def idle() -> bool:
        settled.update(health(root)[1]["stats"])
        return settled["running"] == 0 and settled["queued"] == 0

    assert wait_for(idle, timeout), f"the server did not settle: {settled}"
    return settled


def send_and_hang_up_later(base_url: str, body: dict) -> socket.socket:
    """A raw HTTP request whose reply is never read: closing the socket is a client that disconnects."""
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    data = json.dumps(body).encode()
    s = socket.create_connection((host, int(port)))
    head = f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    s.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def make_client(base_url: str, api_key: str = "sk-test") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=TIMEOUT)


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: str):
        self.base_url, self.process, self.log_path = base_url, process, log_path
        self.root = base_url.removesuffix("/v1")

    def stats(self) -> dict:
        return settled_stats(self.root)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8") as f:
            return f.read()


def start_server(model: str, log_path: str, *args: str, timeout: float = 180) -> Server:
    """``python -m tinystories serve MODEL --port 0 ...``: the URL comes from the server's log (the OS picked the
    port: nothing else can take it between a check and the bind); ready when ``/health`` says ok."""
    command = [sys.executable, "-m", "tinystories", "serve", model, "--host", "127.0.0.1", "--port", "0", *args]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    found = {}

    def ready() -> bool:
        if process.poll() is not None:
            return True
        if "url" not in found:
            match = URL_LINE.search(open(log_path, encoding="utf-8").read())
            if not match:
                return False
            found["url"] = match.group(1)
        try:
            return get_json(f"{found['url'].removesuffix('/v1')}/health")["status"] == "ok"
        except OSError:
            return False

    if not wait_for(ready, timeout) or process.poll() is not None:
        process.kill()
        pytest.fail(f"the server did not start:\n{open(log_path, encoding='utf-8').read()}")
    return Server(found["url"], process, log_path)


def stop_server(srv: Server) -> None:
    """Ctrl-C: uvicorn's graceful shutdown, then the generation worker stops; the process must exit with 0."""
    srv.process.send_signal(signal.SIGINT)
    try:
        assert srv.process.wait(timeout=60) == 0, srv.log()
    finally:
        if srv.process.poll() is None:
            srv.process.kill()


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """``tinystories serve TINY_MODEL`` as a subprocess for this test module."""
    srv = start_server(tiny_model, str(tmp_path_factory.mktemp("serve") / "server.log"))
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def client(server):
    return make_client(server.base_url)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)
