"""A small OpenAI-compatible HTTP server for the test suite (standard library only).

The ``openai`` client talks to it over real HTTP on 127.0.0.1, so everything the client does (retries,
timeouts, connection pooling, response parsing) is exercised for real::

    with FakeOpenAIServer(latency=0.01, fail_first={"429": 1}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert server.repeated_identical_requests() == 0

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``, ``POST /v1/completions``.
Streaming (``"stream": true``) is not supported and answered with a 400 error.

Faults (``faults`` probabilities, or ``fail_first`` counts per distinct request body) are only injected into
the two completion endpoints. Kinds:

``"429"``        status 429 with a ``retry-after`` header and an OpenAI error body
``"500"``        status 500 with an OpenAI error body
``"503"``        status 503 (an overloaded server, as vLLM or TGI say it) with a ``retry-after`` header
``"timeout"``    holds the reply until the client gives up (closes the connection), :meth:`FakeOpenAIServer.release_held`
                 or the server stops (or at most ``timeout_sleep`` seconds when set), then answers normally: the
                 client times out whatever its timeout, with no race against a sleep
``"truncated"``  status 200 and the Content-Length of the full body, but only half the body, then the
                 connection is closed
``"length"``     a normal reply whose choices are cut mid-sentence, with ``finish_reason == "length"``
``"empty"``      a normal reply whose choices have ``""`` as content
``"garbage"``    status 200 and ``Content-Type: application/json``, but an HTML page for a body (a broken proxy)
``"malformed"``  status 200 and a JSON body whose one choice's content is a list, not text

Slow like a real server (``capacity``): at most ``capacity`` completion requests are served at once, each for
``service_time`` seconds, the others wait in a first-come-first-served queue (time in the queue counts toward the
client's timeout). A client that hangs up (times out) while its request waits or is being served has it dropped,
as vLLM aborts it: nothing is sent, its place or its slot is freed at once, and its record says ``dropped``::

    with FakeOpenAIServer(capacity=2, service_time=1.0) as server:   # 2 requests/s at most
        ...
        assert server.max_serving == 2 and server.num_dropped == 0
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import json
import random
import re
import select
import socket
import socketserver
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("429", "500", "timeout", "truncated", "length", "empty", "503", "garbage", "malformed")
#: Faults after which the reply's body is (presumably) not received in full by the client.
_UNDELIVERED_FAULTS = ("429", "500", "timeout", "truncated", "503")

WORDS_RE = re.compile(r'the verb "([^"]+)",? the noun "([^"]+)",? and the adjective "([^"]+)"', re.IGNORECASE)

Responder = Callable[[dict], "str | list[str]"]


def canonical_json(body: Any) -> str:
    """The key under which two request bodies count as identical."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def count_tokens(text: str) -> int:
    return len(text.split())


def _content_text(content: Any) -> str:
    """Text of a chat message's ``content``: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def last_user_text(request: dict) -> str:
    """The last user message of a chat request, or the prompt of a completions request."""
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""
    prompt = request.get("prompt", "")
    if isinstance(prompt, list):
        prompt = " ".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


def _prompt_tokens(request: dict) -> int:
    messages = request.get("messages")
    if isinstance(messages, list):
        return sum(count_tokens(_content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    return count_tokens(last_user_text(request))


def _an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_NAMES = ("Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna")
_STORY_TEMPLATES = (
    (
        "Once upon a time, {a_adj} {adj} {noun} wanted to {verb}.",
        "{name} saw the {noun} and smiled.",
        '{name} asked, "Can I {verb} with you?"',
        "They tried to {verb} together all day.",
        "At the end, the {adj} {noun} was very happy.",
    ),
    (
        "Once upon a time, there was {a_adj} {adj} {noun}.",
        "One day, {name} found the {noun} in the park.",
        '{name} said, "Let us {verb} now!"',
        "It was the best day ever.",
    ),
    (
        "Once upon a time, {name} had {a_adj} {adj} {noun}.",
        "{name} did not know how to {verb}.",
        "Mom showed {name} how to {verb}.",
    ),
)
_SUMMARIES = (
    "A little child and a friend learn to share and are happy.",
    "A kind friend helps a child, and they play together all day.",
    "A child finds something new and learns to be brave.",
)
_GENERIC = (
    "Sure! Here is a short answer from the fake server.",
    "This is a simple reply from the fake server.",
    "OK. The fake server says hello.",
)


def default_responder(request: dict) -> list[str]:
    """One reply per choice (``n``), deterministic in the request body.

    A summary request (the last user message contains "summar") gets one sentence; a TinyStories prompt
    (``the verb "X", the noun "Y" and the adjective "Z"``) gets a 3-5 sentence story using the three words as
    given; anything else gets a generic one-sentence reply.
    """
    seed = int.from_bytes(hashlib.sha256(canonical_json(request).encode()).digest()[:8], "big")
    n = request.get("n") or 1
    text = last_user_text(request)
    match = WORDS_RE.search(text)
    replies = []
    # a word such as "summary" quoted in the words pattern does not make the prompt a summary request
    asks_summary = "summar" in WORDS_RE.sub("", text).lower()
    for i in range(max(1, int(n))):
        rng = random.Random(seed + i)
        if asks_summary:
            reply = rng.choice(_SUMMARIES)
        elif match:
            verb, noun, adj = match.groups()
            template = rng.choice(_STORY_TEMPLATES)
            fields = {"verb": verb, "noun": noun, "adj": adj, "a_adj": _an(adj), "name": rng.choice(_NAMES)}
            reply = " ".join(sentence.format(**fields) for sentence in template)
        else:
            reply = rng.choice(_GENERIC)
        replies.append(reply)
    return replies


def cut_mid_sentence(text: str) -> str:
    """About the first half of ``text``, cut between two words and without a final punctuation mark."""
    words = text.split()
    if len(words) < 2:
        return text[: max(1, len(text) // 2)] if text else text
    cut = " ".join(words[: max(1, len(words) // 2)]).rstrip('.!?"')
    return cut or words[0]


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, which may do a slow reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout fault, truncated reply) is normal here; anything else is kept.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.owner._record_handler_error(exc)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeOpenAI/1.0"
    sys_version = ""

    @property
    def owner(self) -> FakeOpenAIServer:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)
        self._flying = False

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        """A request is in flight from its arrival until its reply starts being sent."""
        self._flying = True
        self.owner._enter_flight()
        try:
            yield
        finally:
            self._land()

    def _land(self) -> None:
        if self._flying:
            self._flying = False
            self.owner._leave_flight()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.owner._track(self.connection, False)

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature of the base class
        pass

    # --- plumbing ----------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload, headers: dict | None = None, truncate: bool = False) -> None:
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()  # a str: sent as is
        self._land()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        self.wfile.flush()

    def _authorized(self) -> bool:
        key = self.owner.require_api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_json(401, error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def _not_found(self) -> None:
        self._send_json(
            404, error_body(f"Unknown request URL: {self.command} {self.path}", "invalid_request_error", "unknown_url")
        )

    # --- endpoints ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        with self._in_flight():
            if not self._authorized():
                return
            path = self.path.split("?", 1)[0].rstrip("/")
            name = self.owner.model_name
            model = {"id": name, "object": "model", "created": 0, "owned_by": "fake-openai-server"}
            if path.startswith("/v1/batches/"):
                batch = self.owner._batches.get(path.rsplit("/", 1)[1])
                if batch is None:
                    self._not_found()
                else:
                    self._send_json(200, dict(batch))
                return
            if path.startswith("/v1/files/") and path.endswith("/content"):
                content = self.owner._files.get(path.split("/")[3])
                if content is None:
                    self._not_found()
                    return
                self._land()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return
            if path == "/v1/models":
                self._send_json(200, {"object": "list", "data": [model]})
            elif path == f"/v1/models/{name}":
                self._send_json(200, model)
            else:
                self._not_found()

    def do_POST(self) -> None:  # noqa: N802
        with self._in_flight():
            raw = self._read_body()
            if not self._authorized():
                return
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/files":
                self._send_json(200, self.owner._upload(self.headers.get("Content-Type", ""), raw))
                return
            if path == "/v1/batches":
                self._send_json(200, self.owner._create_batch(json.loads(raw)))
                return
            endpoints = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
            if path not in endpoints:
                self._not_found()
                return
            try:
                request = json.loads(raw)
                if not isinstance(request, dict):
                    raise ValueError("the request body must be a JSON object")
            except ValueError as err:
                message = f"We could not parse the JSON body of your request. ({err})"
                self._send_json(400, error_body(message, "invalid_request_error", "invalid_json"))
                return
            if request.get("stream"):
                message = "stream=true is not supported by the fake server."
                self._send_json(400, error_body(message, "invalid_request_error", "unsupported", "stream"))
                return
            rejected = [key for key in self.owner.reject_params if key in request]
            if rejected:  # a server without this feature (e.g. no logprobs): a 400 naming the argument
                self.owner._record_rejected(request, rejected[0])
                message = f"Unrecognized request argument supplied: {rejected[0]}"
                self._send_json(400, error_body(message, "invalid_request_error", "unsupported", rejected[0]))
                return
            self._complete(endpoints[path], request)

    def _complete(self, kind: str, request: dict) -> None:
        owner = self.owner
        record = owner._admit(request)
        fault = record["fault"]
        if owner.latency > 0:
            owner._stop.wait(owner.latency)
        if fault == "timeout":
            self._hold(record)
        if owner.capacity is not None and not self._serve(record):
            return  # dropped: the client hung up while queued or served
        with owner._gate():  # pause_replies(): requests wait here, in flight, until resume_replies() or stop()
            self._answer(kind, request, record)

    def _serve(self, record: dict) -> bool:
        """Wait for one of the ``capacity`` slots (first come, first served), then hold it ``service_time`` seconds;
        ``False`` (the request dropped) if the client hangs up meanwhile."""
        owner = self.owner
        with owner._changed:
            owner._queue.append(record)
            record["queued"] = True
            owner._changed.notify_all()
        try:
            while True:
                with owner._changed:
                    if owner._stop.is_set() or (owner._queue[0] is record and owner._serving < owner.capacity):
                        owner._queue.remove(record)
                        record["queued"], record["started_at"] = False, time.monotonic()
                        owner._serving += 1
                        owner._max_serving = max(owner._max_serving, owner._serving)
                        owner._changed.notify_all()
                        break
                    owner._changed.wait(0.05)  # woken by any change; the timeout only notices a hang-up
                if self._client_gone():
                    return self._drop(record)
        finally:
            with owner._changed:
                if record["queued"]:
                    owner._queue.remove(record)
                    record["queued"] = False
                    owner._changed.notify_all()
        try:
            # service_time is read again and again: a test may shorten it (to 0: answer now) while requests are served
            while (
                not owner._stop.is_set()
                and (remaining := record["started_at"] + owner.service_time - time.monotonic()) > 0
            ):
                try:  # wakes at once when the client hangs up (readable, then end-of-file)
                    readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
                except OSError:
                    return self._drop(record)
                if readable and self._client_gone():
                    return self._drop(record)
            return True
        finally:
            with owner._changed:
                owner._serving -= 1
                owner._changed.notify_all()

    def _drop(self, record: dict) -> bool:
        """Forget a request whose client hung up (status 499, nothing sent); returns ``False``."""
        with self.owner._changed:
            record["dropped"] = True
        self._land()
        self.owner._finish(record, 499, delivered=False)
        self.close_connection = True
        return False

    def _hold(self, record: dict) -> None:
        """Hold a "timeout" reply until the client hangs up, release_held(), stop() or ``timeout_sleep``."""
        owner = self.owner
        deadline = None if owner.timeout_sleep is None else time.monotonic() + owner.timeout_sleep
        with owner._changed:
            record["held"] = True
            owner._changed.notify_all()
        try:
            while not owner._stop.is_set() and not owner._release.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    return
                try:  # wakes at once when the client closes its end (readable, then end-of-file)
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                except OSError:
                    return
                if readable and self._client_gone():
                    return
        finally:
            with owner._changed:
                record["held"] = False
                owner._changed.notify_all()

    def _answer(self, kind: str, request: dict, record: dict) -> None:
        owner, fault = self.owner, record["fault"]
        if fault == "429":
            retry_after = owner.retry_after
            payload = error_body("Rate limit reached (fake server).", "requests", "rate_limit_exceeded")
            headers = {"retry-after": f"{retry_after:g}", "retry-after-ms": f"{retry_after * 1000:g}"}
            self._reply(record, 429, payload, headers=headers)
            return
        if fault == "500":
            self._reply(record, 500, error_body("The server had an error (fake server).", "server_error", None))
            return
        if fault == "503":
            payload = error_body("The server is overloaded (fake server).", "server_error", "overloaded")
            self._reply(record, 503, payload, headers={"retry-after": f"{owner.retry_after:g}"})
            return
        if fault == "garbage":
            self._reply(record, 200, "<html><body>502 Bad Gateway</body></html>")
            return
        try:
            payload = owner._build_reply(kind, request, record["index"], fault)
        except Exception as err:  # a broken responder: answer like a server error, and keep the error
            owner._record_handler_error(err)
            self._reply(record, 500, error_body(f"responder failed: {err!r}", "server_error", "responder_error"))
            return
        self._reply(record, 200, payload, truncate=fault == "truncated")

    def _client_gone(self) -> bool:
        """Whether the client closed its end (e.g. its process was killed) while the request was in flight.

        HTTP/1.1 clients send nothing more on a connection while they wait for a reply, so a readable socket that
        peeks end-of-file means nobody will read the reply: it must not count as delivered (or as paid twice).
        """
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _reply(self, record: dict, status: int, payload: dict, headers: dict | None = None, truncate=False) -> None:
        if self._client_gone():
            self._land()
            self.owner._finish(record, status, delivered=False)
            self.close_connection = True
            return
        # The outcome is recorded before the reply is sent: a client that has read its reply must find it counted.
        self.owner._finish(record, status)
        try:
            self._send_json(status, payload, headers=headers, truncate=truncate)
        except OSError:
            self.owner._finish(record, status, delivered=False)
            raise


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 (a free port), run in a daemon thread; use it as a context manager.

    Options:
        model_name: the model listed by ``/v1/models`` (replies echo the request's ``model``).
        responder: ``(request_json) -> str`` (or a list of ``n`` strings, one per choice) giving the content;
            a single string is used for every choice; a ``{"content": str, "logprobs": {...}}`` dict in place of
            a string also returns the chat ``logprobs`` of that choice. Default: :func:`default_responder`.
        latency: seconds waited in the handler thread before replying to a completion request (not bounded by
            ``capacity``: any number of requests wait their latency at once).
        capacity: completion requests served at once (default ``None``: no limit, no queue); the others queue.
        service_time: seconds each request holds its slot of ``capacity``; it may be changed while the server
            runs and applies at once (``server.service_time = 0`` answers the requests being served now).
        faults: probability per fault kind (see the module docstring); one draw of a RNG seeded with ``seed``
            per completion request, in arrival order, so the k-th request always gets the same fault.
        fail_first: ``{kind: k}``: the first k attempts of every distinct request body (canonical JSON) get
            that fault; several kinds apply one after another in the dict's order. Takes precedence over
            ``faults``; afterwards the random faults (if any) apply.
        retry_after: value of the ``retry-after`` header of 429 replies (and ``retry-after-ms``) and of 503 replies.
        timeout_sleep: ``None`` (default): a ``"timeout"`` fault holds its reply until the client gives up,
            :meth:`release_held` or :meth:`stop`; a number: at most that many seconds, then it answers normally.
        require_api_key: when set, requests without ``Authorization: Bearer <key>`` get a 401.
        reject_params: request keys the server does not support (say ``("logprobs",)``): such a request gets a 400
            and is listed in ``rejected_requests`` (not in ``requests``).
        batch_delay: seconds before a batch is processed; batch_expire_after: process only that many lines of a
            batch, then expire it.
        batch_fail_ids: custom_ids of batch lines answered in the batch's error file (status 400);
            batch_fail_in_output_ids: custom_ids answered in the output file with ``status_code`` 500.

    Accounting (thread-safe; completion requests only): ``requests``, ``num_requests``, ``num_completed``,
    ``num_succeeded``, ``faults_injected``, ``max_concurrency``, ``in_flight``, ``records``, ``rejected_requests``,
    ``queue_length``, ``serving``, ``max_serving``, ``num_dropped``,
    :meth:`repeated_identical_requests`, :meth:`reset_counters`. Synchronisation for tests, on events rather than
    sleeps: :meth:`wait_until`, :meth:`pause_replies` / :meth:`resume_replies`, :meth:`release_held`.
    """

    def __init__(
        self,
        *,
        model_name: str = "fake-gpt",
        responder: Responder | None = None,
        latency: float = 0.0,
        capacity: int | None = None,
        service_time: float = 0.0,
        faults: dict[str, float] | None = None,
        fail_first: dict[str, int] | None = None,
        seed: int = 0,
        retry_after: float = 0.05,
        timeout_sleep: float | None = None,
        require_api_key: str | None = None,
        batch_delay: float = 0.0,
        batch_expire_after: int | None = None,
        batch_fail_ids: tuple[str, ...] = (),
        batch_fail_in_output_ids: tuple[str, ...] = (),
        reject_params: tuple[str, ...] = (),
    ) -> None:
        self.reject_params = tuple(reject_params)  # request keys answered with HTTP 400 (an unsupported feature)
        self.batch_delay = batch_delay  # seconds before a batch is processed
        self.batch_expire_after = batch_expire_after  # process only this many lines, then expire the batch
        self.batch_fail_ids = set(batch_fail_ids)  # custom_ids answered with a line of the error file
        self.batch_fail_in_output_ids = set(batch_fail_in_output_ids)  # custom_ids answered 500 in the output file
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, dict] = {}
        self.batch_inputs: list[list[str]] = []  # the JSONL lines of every batch created
        self.faults = dict(faults or {})
        self.fail_first = dict(fail_first or {})
        for kind in [*self.faults, *self.fail_first]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if any(p < 0 for p in self.faults.values()) or sum(self.faults.values()) > 1 + 1e-9:
            raise ValueError(f"fault probabilities must be >= 0 and sum to at most 1, got {self.faults}")
        if any(int(k) < 0 for k in self.fail_first.values()):
            raise ValueError(f"fail_first counts must be >= 0, got {self.fail_first}")
        self.model_name = model_name
        self.responder = responder or default_responder
        self.latency = float(latency)
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1 (or None: no limit), got {capacity}")
        self.capacity = capacity
        self.service_time = float(service_time)
        self._queue: list[dict] = []  # records waiting for a slot of capacity, in arrival order
        self._serving = 0
        self.seed = seed
        self.retry_after = float(retry_after)
        self.timeout_sleep = None if timeout_sleep is None else float(timeout_sleep)
        self.require_api_key = require_api_key

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified whenever a request's state changes
        self._stop = threading.Event()
        self._release = threading.Event()  # release_held(): held "timeout" replies are answered
        self._paused = False
        self._passing = 0  # replies past the pause gate and not yet sent
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.handler_errors: list[BaseException] = []
        self._in_flight_now = 0
        self._reset_faults()
        self._reset_counters()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        self._stop.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenAIServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()  # wakes handlers waiting on latency / timeout faults
        with self._changed:
            self._changed.notify_all()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # ends keep-alive connections still held by clients
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- OpenAI Batch API (files + batches), processed at once in a thread --------------------------------
    def _upload(self, content_type: str, raw: bytes) -> dict:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        content = b""
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                content = part.get_payload(decode=True)
        with self._lock:
            file_id = f"file-fake{len(self._files):04d}"
            self._files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": 0,
            "filename": "batch.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def _create_batch(self, body: dict) -> dict:
        with self._lock:
            batch_id = f"batch_fake{len(self._batches):04d}"
            lines = self._files[body["input_file_id"]].decode().splitlines()
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress",
                "created_at": int(time.time()),
                "output_file_id": None,
                "error_file_id": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            }
            self._batches[batch_id] = batch
            self.batch_inputs.append(lines)
        threading.Thread(target=self._process_batch, args=(batch, lines), daemon=True).start()
        return dict(batch)

    def _process_batch(self, batch: dict, lines: list[str]) -> None:
        time.sleep(self.batch_delay)
        outputs, errors = [], []
        for position, line in enumerate(lines):
            item = json.loads(line)
            if self.batch_expire_after is not None and position >= self.batch_expire_after:
                break  # the 24 h window ran out: the rest is never processed
            custom_id = item["custom_id"]
            if custom_id in self.batch_fail_ids:
                status, body = 400, error_body("bad request (fake)", "invalid_request_error", None)
            elif custom_id in self.batch_fail_in_output_ids:
                status, body = 500, error_body("The server had an error (fake server).", "server_error", None)
            else:
                status, body = 200, None
            now = time.monotonic()
            with self._changed:
                index = len(self._records)
                self._records.append(
                    {
                        "index": index,
                        "request": item["body"],
                        "key": canonical_json(item["body"]),
                        "fault": None,
                        "status": status,
                        "delivered": True,
                        "completed": status == 200,
                        "success": status == 200,  # a failed line is not paid for: asking again is no repeat
                        "held": False,
                        "queued": False,
                        "dropped": False,
                        "started_at": now,
                        "arrived_at": now,
                        "replied_at": now,
                        "batch": batch["id"],
                    }
                )
                self._changed.notify_all()
            if body is None:
                body = self._build_reply("chat", item["body"], index, None)
            line = {
                "id": f"batch_req_{position}",
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": f"req_{position}", "body": body},
                "error": None,
            }
            (errors if custom_id in self.batch_fail_ids else outputs).append(line)
        with self._changed:
            for name, rows in (("output_file_id", outputs), ("error_file_id", errors)):
                if rows:
                    file_id = f"file-fake{len(self._files):04d}"
                    self._files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                    batch[name] = file_id
            completed = sum(line["response"]["status_code"] == 200 for line in outputs)
            batch["request_counts"] = {"total": len(lines), "completed": completed, "failed": len(lines) - completed}
            batch["status"] = (
                "expired"
                if self.batch_expire_after is not None and len(lines) > self.batch_expire_after
                else "completed"
            )
            self._changed.notify_all()

    # --- synchronisation for tests -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _gate(self) -> Iterator[None]:
        with self._changed:
            while self._paused and not self._stop.is_set():
                self._changed.wait(0.05)
            self._passing += 1
        try:
            yield
        finally:
            with self._changed:
                self._passing -= 1
                self._changed.notify_all()

    def pause_replies(self, timeout: float = 60.0) -> None:
        """Hold every completion reply not yet started (requests stay in flight) until :meth:`resume_replies`, and
        return once every reply already started is recorded and sent: the traffic is frozen, e.g. to kill a client
        at a moment when no reply is half-processed. Raises ``TimeoutError`` if a reply never ends."""
        with self._changed:
            self._paused = True
            if not self._changed.wait_for(lambda: self._passing == 0, timeout):
                raise TimeoutError(f"{self._passing} replies were still being sent after {timeout} s")

    def resume_replies(self) -> None:
        with self._changed:
            self._paused = False
            self._changed.notify_all()

    def release_held(self) -> None:
        """Answer the held ``"timeout"`` replies (and those to come) normally."""
        self._release.set()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Wait until ``condition()`` (which may read this server's accounting) is true, re-checked whenever a
        request arrives, is held, answered or leaves; ``False`` if it is still false after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- accounting ----------------------------------------------------------------------------------------
    def _reset_faults(self) -> None:
        self._rng = random.Random(self.seed)
        self._attempts: Counter[str] = Counter()

    def _reset_counters(self) -> None:
        self._records: list[dict] = []
        self._rejected: list[dict] = []
        self._faults_injected: Counter[str] = Counter()
        self._max_concurrency = 0
        self._max_serving = 0

    def reset_counters(self, reset_faults: bool = False) -> None:
        """Forget the recorded requests and counters; with ``reset_faults`` also restart the fault schedule
        (re-seed the RNG and forget the ``fail_first`` attempts), as on a fresh server."""
        with self._lock:
            self._reset_counters()
            self._max_concurrency = self._in_flight_now
            self._max_serving = self._serving
            if reset_faults:
                self._reset_faults()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record_handler_error(self, err: BaseException) -> None:
        with self._lock:
            self.handler_errors.append(err)

    def _enter_flight(self) -> None:
        with self._changed:
            self._in_flight_now += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight_now)
            self._changed.notify_all()

    def _leave_flight(self) -> None:
        with self._changed:
            self._in_flight_now -= 1
            self._changed.notify_all()

    def _record_rejected(self, request: dict, param: str) -> None:
        with self._changed:
            self._rejected.append({"request": request, "status": 400, "param": param})
            self._changed.notify_all()

    def _admit(self, request: dict) -> dict:
        """Record a completion request and decide its fault; returns its record."""
        key = canonical_json(request)
        with self._changed:
            draw = self._rng.random() if self.faults else None
            attempt = self._attempts[key]
            self._attempts[key] += 1
            fault = None
            first = 0
            for kind, count in self.fail_first.items():
                first += int(count)
                if attempt < first:
                    fault = kind
                    break
            if fault is None and draw is not None:
                total = 0.0
                for kind in FAULT_KINDS:
                    total += self.faults.get(kind, 0.0)
                    if draw < total:
                        fault = kind
                        break
            if fault is not None:
                self._faults_injected[fault] += 1
            record = {
                "index": len(self._records),
                "request": request,
                "key": key,
                "fault": fault,
                "status": None,
                "delivered": False,
                "completed": False,
                "success": False,
                "held": False,
                "queued": False,
                "dropped": False,
                "started_at": None,
                "arrived_at": time.monotonic(),
                "replied_at": None,
            }
            self._records.append(record)
            self._changed.notify_all()
            return record

    def _finish(self, record: dict, status: int, delivered: bool = True) -> None:
        with self._changed:
            record["replied_at"] = time.monotonic()
            record["status"] = status
            record["delivered"] = delivered
            record["completed"] = delivered and status == 200 and record["fault"] not in _UNDELIVERED_FAULTS
            record["success"] = record["completed"] and record["fault"] is None
            self._changed.notify_all()

    def _build_reply(self, kind: str, request: dict, index: int, fault: str | None) -> dict:
        prompts = request.get("prompt") if kind == "completions" else None
        if isinstance(prompts, list) and prompts and all(isinstance(p, str) for p in prompts):
            per_prompt = [{**request, "prompt": p} for p in prompts]  # completions with a batch of prompts
        else:
            per_prompt = [request]
        n = max(1, int(request.get("n") or 1))
        contents = []
        for sub_request in per_prompt:
            replies = self.responder(sub_request)
            if isinstance(replies, (str, dict)):
                replies = [replies] * n
            replies = list(replies)
            if len(replies) < n:
                raise ValueError(f"the responder returned {len(replies)} replies for n={n}")
            contents.extend(replies[:n])
        # a responder may give {"content": text, "logprobs": {...}} to return chat logprobs with a reply
        logprobs = [c.get("logprobs") if isinstance(c, dict) else None for c in contents]
        contents = [c["content"] if isinstance(c, dict) else c for c in contents]
        finish_reason = "stop"
        if fault == "length":
            contents = [cut_mid_sentence(c) for c in contents]
            finish_reason = "length"
        elif fault == "empty":
            contents = ["" for _ in contents]
        elif fault == "malformed":
            contents = [[c] for c in contents]

        created = int(time.time())
        model = request.get("model") or self.model_name
        completion_tokens = sum(count_tokens(c if isinstance(c, str) else "".join(c)) for c in contents)
        prompt_tokens = sum(_prompt_tokens(r) for r in per_prompt)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if kind == "chat":
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": c, "refusal": None},
                    "finish_reason": finish_reason,
                    "logprobs": logprobs[i],
                }
                for i, c in enumerate(contents)
            ]
            return {
                "id": f"chatcmpl-fake{index:06d}",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                "usage": usage,
            }
        choices = [
            {"index": i, "text": c, "finish_reason": finish_reason, "logprobs": None} for i, c in enumerate(contents)
        ]
        return {
            "id": f"cmpl-fake{index:06d}",
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
        }

    @property
    def records(self) -> list[dict]:
        """One dict per completion request: index, request, key (canonical JSON), fault (kind or None), status
        (None while in flight), delivered (False if sending the reply failed), completed, success, held (a
        "timeout" reply being held now), queued (waiting for a slot of ``capacity`` now), dropped (its client hung
        up while it was queued or served: status 499), arrived_at, started_at (when it got its slot of
        ``capacity``) and replied_at (``time.monotonic()``; None while in flight)."""
        with self._lock:
            return [dict(r) for r in self._records]

    @property
    def requests(self) -> list[dict]:
        """Parsed bodies of the completion requests, in arrival order (auth, JSON and streaming errors excluded)."""
        with self._lock:
            return [r["request"] for r in self._records]

    @property
    def rejected_requests(self) -> list[dict]:
        """Completion requests refused for an unsupported parameter (``reject_params``), in arrival order: dicts of
        request (the parsed body), status (400) and param (the parameter named in the error)."""
        with self._lock:
            return [dict(r) for r in self._rejected]

    @property
    def in_flight(self) -> int:
        """Requests (any endpoint) in flight now: arrived, reply not yet started."""
        with self._lock:
            return self._in_flight_now

    @property
    def queue_length(self) -> int:
        """Requests waiting for a slot of ``capacity`` now."""
        with self._lock:
            return len(self._queue)

    @property
    def serving(self) -> int:
        """Requests holding a slot of ``capacity`` now."""
        with self._lock:
            return self._serving

    @property
    def max_serving(self) -> int:
        """Most requests served at once (never above ``capacity``) since the start or the last reset_counters()."""
        with self._lock:
            return self._max_serving

    @property
    def num_dropped(self) -> int:
        """Requests dropped because their client hung up while they were queued or served (status 499)."""
        with self._lock:
            return sum(r.get("dropped", False) for r in self._records)

    @property
    def num_requests(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def num_completed(self) -> int:
        """200 replies whose full body was sent (includes "length"/"empty"; excludes "truncated"/"timeout")."""
        with self._lock:
            return sum(r["completed"] for r in self._records)

    @property
    def num_succeeded(self) -> int:
        """200 replies with a full body and no fault at all."""
        with self._lock:
            return sum(r["success"] for r in self._records)

    @property
    def faults_injected(self) -> Counter:
        with self._lock:
            return Counter(self._faults_injected)

    @property
    def max_concurrency(self) -> int:
        """Most requests (any endpoint) in flight at once since the start or the last reset_counters()."""
        with self._lock:
            return self._max_concurrency

    def repeated_identical_requests(self) -> int:
        """Requests whose canonical body equals that of an EARLIER-arrived request answered successfully.

        Successfully means status 200 with the full, non-faulty body. The earlier request may have been
        answered after the later one arrived (concurrent duplicates count too); requests still in flight
        when this is called are not yet successes.
        """
        with self._lock:
            records = list(self._records)
        seen_success: set[str] = set()
        repeated = 0
        for record in records:
            if record["key"] in seen_success:
                repeated += 1
            if record["success"]:
                seen_success.add(record["key"])
        return repeated
