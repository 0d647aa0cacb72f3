"""``tinystories serve MODEL``: any causal LM behind an OpenAI-compatible HTTP API, with batched generation.

Endpoints: ``GET /v1/models``, ``GET /health`` (alias ``/v1/health``; with the batching statistics),
``POST /v1/completions`` and ``POST /v1/chat/completions`` (streaming, ``n``, ``temperature``, ``top_p``,
``max_tokens``, ``stop``, ``seed``, ``logprobs``, penalties, ``logit_bias``, ``usage``), so that the ``openai``
client, ``tinystories generate`` and GPT-Eval use a local model as they would use OpenAI or vLLM.

How requests are run:

- Batching. Requests are queued; a single worker thread takes the oldest one and joins to it every queued request
  that fits (up to ``max_batch_size`` rows, a similar ``max_tokens``: same power-of-two bucket, and the padded
  prompt plus the longest reply within the context), gathering a burst of requests first (until no new one came
  for ``batch_wait_ms``, at most 10 x that after the oldest).
  The rows (``n`` choices and every prompt of a request are rows) run as ONE left-padded ``model.generate`` call.
  Every sampling parameter is per row: a logits processor picks each row's token (greedy at temperature 0, else
  temperature, top-p and a per-row ``torch.Generator``) and a stopping criterion ends each row at its EOS, stop
  string or ``max_tokens``; a request is answered as soon as its own rows are done.
- Seeds. A request with ``seed`` runs alone (its rows only): the arithmetic of a row depends on the shape of the
  batch it is in (kernels pick other blockings), so only the same shape gives the same text bit for bit. Same
  request, same seed: same text. Choice ``i`` is drawn from its own generator seeded by ``(seed, i)``.
- Streaming. Streamed requests are batched like the others: each decoding step sends the new text of each row
  as a server-sent event (OpenAI's chunk format, ending with ``data: [DONE]``), holding back what could be the
  beginning of a stop string; a client that disconnects frees its rows at the next step.
- Logprobs are those of the model's distribution (after ``logit_bias`` and penalties, before temperature and
  top-p), in the legacy format for completions (``logprobs: k``) and the chat format for chat completions
  (``logprobs: true, top_logprobs: k``), at most 20.
- Chat. A tokenizer with a ``chat_template`` formats the messages with it; otherwise a plain text dialogue
  (``User: ...`` / ``Assistant:`` lines) with ``"\\nUser:"`` as a stop string.
- Limits. Bad parameters are 400 errors in OpenAI's error shape naming the parameter; an unknown model is a 404;
  a prompt plus ``max_tokens`` longer than the context is a 400 (or, with ``truncate_prompts``, the prompt keeps
  its last tokens); more than ``max_queue`` waiting requests is a 429 with ``retry-after``.

``build_app(path, **settings)`` returns the FastAPI application (what ``tinystories serve`` runs with uvicorn) and
``ServerThread(app)`` runs one in a background thread of the current process.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger("tinystories.serve")

SERVE_EXTRA_HINT = "pip install 'tinystories[serve]'"
MAX_LOGPROBS = 20  # top logprobs a token, as OpenAI
MAX_CHOICES = 128  # rows (n x prompts) a request
MAX_STOPS = 16
PLAIN_CHAT_STOP = "\nUser:"
_PLAIN_ROLES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


@dataclass
class ServeSettings:
    """Options of ``tinystories serve`` (and of ``build_app``)."""

    model: str
    served_model_name: str | None = None  # default: the folder's name, or the Hub id
    host: str = "127.0.0.1"
    port: int = 8000
    dtype: str = "auto"
    device: str | None = None  # default: cuda if available, else cpu
    attn_implementation: str = "sdpa"
    max_batch_size: int = 32
    max_queue: int = 256
    batch_wait_ms: float = 5.0
    max_model_len: int | None = None
    truncate_prompts: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {self.max_queue}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ValueError(f"max_model_len must be at least 2, got {self.max_model_len}")
        if self.served_model_name is None:
            path = self.model.rstrip("/\\")
            self.served_model_name = os.path.basename(path) if os.path.isdir(path) else self.model


class APIError(Exception):
    """An error reply in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


# -- the model ----------------------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable character table (byte-level BPE vocabularies are written with it)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


class ServedModel:
    """A causal LM and its tokenizer, ready for left-padded batched generation, and their text helpers."""

    def __init__(self, settings: ServeSettings):
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from .models import load_model

        self.settings = settings
        self.name = settings.served_model_name
        self.device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = settings.dtype if settings.dtype == "auto" else getattr(torch, settings.dtype, None)
        if not isinstance(dtype, (str, torch.dtype)):
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {settings.dtype!r}")
        path = os.path.expanduser(settings.model)
        looks_local = path.startswith((".", "/")) or path.count("/") > 1 or "\\" in path
        if looks_local and not os.path.isdir(path):
            raise ValueError(f"model folder {settings.model!r} does not exist")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = load_model(
            path, attn_implementation=settings.attn_implementation, dtype=dtype, device=self.device
        )
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tok.eos_token_id is not None and tok.eos_token_id not in eos:
            eos.append(tok.eos_token_id)
        self.eos_ids = set(eos)
        if tok.pad_token_id is None:
            if tok.eos_token_id is not None:
                tok.pad_token = tok.eos_token
            else:
                tok.pad_token_id = 0
        tok.padding_side = "left"
        self.pad_id = tok.pad_token_id
        self.start_ids = [tok.bos_token_id if tok.bos_token_id is not None else eos[0] if eos else self.pad_id]
        # the server applies the request's parameters only: no model-author defaults (repetition penalty, ...)
        self.model.generation_config = GenerationConfig(
            bos_token_id=tok.bos_token_id, eos_token_id=eos or None, pad_token_id=self.pad_id
        )
        self.context = self._context_length(settings.max_model_len)
        self.vocab_size = self.model.get_output_embeddings().weight.shape[0]
        self.chat_template = getattr(tok, "chat_template", None)
        decoder = getattr(getattr(tok, "backend_tokenizer", None), "decoder", None)
        self._byte_level = type(decoder).__name__ == "ByteLevel"
        self._byte_of = {c: b for b, c in _bytes_to_unicode().items()}
        self._token_text: dict[int, str] = {}
        self._token_bytes: dict[int, list[int]] = {}
        self.created = int(time.time())

    def _context_length(self, cap: int | None) -> int:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                break
        else:
            value = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1_000_000 else 2048
        return min(value, cap) if cap else value

    # -- text -------------------------------------------------------------------------------------------------
    def encode(self, text: str, special: bool = True) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return list(ids) or list(self.start_ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        text = self._token_text.get(token_id)
        if text is None:
            text = self._token_text[token_id] = self.tokenizer.decode([token_id])
        return text

    def token_bytes(self, token_id: int) -> list[int]:
        """The token's raw bytes (a byte-level token can be part of a UTF-8 character: its text is then U+FFFD)."""
        raw = self._token_bytes.get(token_id)
        if raw is None:
            piece = self.tokenizer.convert_ids_to_tokens(token_id)
            if self._byte_level and piece is not None and all(c in self._byte_of for c in piece):
                raw = [self._byte_of[c] for c in piece]
            else:
                raw = list(self.token_text(token_id).encode("utf-8"))
            self._token_bytes[token_id] = raw
        return raw

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """Token ids of a dialogue ready for the assistant's turn, and the stop strings the format needs."""
        if self.chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return self.encode(text, special=False), []
        lines = [f"{_PLAIN_ROLES[m['role']]}: {m['content']}" for m in messages]
        return self.encode("\n".join(lines) + "\nAssistant:"), [PLAIN_CHAT_STOP]


# -- requests, rows and their decoding state ----------------------------------------------------------------------


@dataclass
class Row:
    """One choice being generated: its prompt, its sampling parameters and what it has produced so far."""

    job: "Job"
    index: int  # choice index in the response
    prompt_ids: list[int]
    temperature: float
    top_p: float
    max_tokens: int
    stops: list[str]
    logprobs: int | None  # top-k alternatives to return (0: only the chosen token's logprob), None: no logprobs
    seed: int
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    # state, written by the worker thread only
    ids: list[int] = field(default_factory=list)
    text: str = ""
    entries: list[tuple[int, float, list[tuple[int, float]], int]] = field(default_factory=list)  # id, lp, top, at
    generated: int = 0
    finish_reason: str | None = None
    cut: int | None = None  # the text ends here (a stop string starts here)
    finalized: bool = False
    sent_chars: int = 0
    sent_entries: int = 0
    _prefix: int = 0
    _read: int = 0

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def add(self, token_id: int, entry, served: ServedModel) -> None:
        """Append a generated token; sets ``finish_reason`` at EOS, at a stop string or at ``max_tokens``."""
        self.generated += 1
        if token_id in served.eos_ids:
            self.finish_reason = "stop"
            return
        self.ids.append(token_id)
        # incremental detokenization: decode a short window, emit only complete characters
        prefix = served.decode(self.ids[self._prefix : self._read])
        window = served.decode(self.ids[self._prefix :])
        start = len(self.text)
        # (a UTF-8 character has at most 4 bytes: after 4 more tokens a U+FFFD is the model's, not a partial one)
        if len(window) > len(prefix) and (not window.endswith("\ufffd") or len(self.ids) - self._read >= 4):
            self.text += window[len(prefix) :]
            self._prefix, self._read = self._read, len(self.ids)
        if entry is not None:
            self.entries.append((token_id, entry[0], entry[1], start))
        if self.stops:
            longest = max(len(s) for s in self.stops)
            found = [i for i in (self.text.find(s, max(0, start - longest)) for s in self.stops) if i >= 0]
            if found:
                self.cut = min(found)
                self.finish_reason = "stop"
                return
        if len(self.ids) >= self.max_tokens:
            self.finish_reason = "length"

    def finalize(self, served: ServedModel) -> None:
        self.finalized = True
        if self.cut is None:
            self.text = served.decode(self.ids)  # the exact text, including a trailing partial character
        else:
            self.text = self.text[: self.cut]
            self.entries = [e for e in self.entries if e[3] < self.cut]

    def delta(self, final: bool) -> tuple[str, list]:
        """Text and logprob entries not yet streamed; short of a possible stop string's start unless ``final``."""
        limit = len(self.text)
        if not final and self.stops:
            limit = max(self.sent_chars, limit - max(len(s) for s in self.stops) + 1)
        text = self.text[self.sent_chars : limit]
        upto = len(self.entries) if final else sum(1 for e in self.entries if e[3] < limit)
        entries = self.entries[self.sent_entries : upto]
        self.sent_chars, self.sent_entries = max(self.sent_chars, limit), max(self.sent_entries, upto)
        return text, entries


class Job:
    """One HTTP request: its rows, and how results reach the event loop (a future, or an event queue to stream)."""

    def __init__(self, kind: str, rows_spec: list[dict], stream: bool, alone: bool, loop, extra: dict):
        self.kind = kind  # "completion" or "chat"
        self.stream = stream
        self.alone = alone
        self.loop = loop
        self.extra = extra  # response details: prompts text, echo, usage options
        self.rows = [Row(job=self, **spec) for spec in rows_spec]
        self.max_tokens = max(r.max_tokens for r in self.rows)
        self.max_prompt = max(len(r.prompt_ids) for r in self.rows)
        self.cancelled = False
        self.arrived = time.monotonic()
        self.future: asyncio.Future = loop.create_future()
        self.events: asyncio.Queue | None = asyncio.Queue() if stream else None

    # called from the worker thread
    def _call(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is gone (shutdown)
            pass

    def publish(self, updates: list) -> None:
        if self.stream and updates:
            self._call(self.events.put_nowait, updates)

    def resolve(self, error: APIError | None = None) -> None:
        def done():
            if self.stream:
                self.events.put_nowait(error or None)
            if not self.future.done():
                self.future.set_exception(error) if error else self.future.set_result(None)
                if error:
                    self.future.exception()  # retrieved: no "never retrieved" warning when nobody waits

        self._call(done)


# -- per-row sampling inside one generate call ----------------------------------------------------------------------


def _sampler_classes():
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class RowSampler(LogitsProcessor):
        """Picks every row's next token with that row's parameters; returns logits allowing only that token.

        ``generate`` then runs greedy decoding, so it takes exactly the token chosen here: per-row temperature,
        top-p, seed, penalties, logit bias and logprobs in one batched call.
        """

        def __init__(self, rows: list[Row], vocab_size: int, device):
            self.rows = rows
            self.temperature = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=device)
            self.top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device)
            self.sampled = [i for i, r in enumerate(rows) if r.temperature > 0]
            self.greedy = [i for i, r in enumerate(rows) if r.temperature == 0]
            self.generators = [torch.Generator().manual_seed(r.seed) for r in rows]
            self.with_logprobs = [i for i, r in enumerate(rows) if r.logprobs is not None]
            self.k = max((rows[i].logprobs for i in self.with_logprobs), default=0)
            self.bias = None
            if any(r.logit_bias for r in rows):
                self.bias = torch.zeros(len(rows), vocab_size, device=device)
                for i, r in enumerate(rows):
                    for token, value in r.logit_bias.items():
                        self.bias[i, token] = value
            self.penalized = any(r.presence_penalty or r.frequency_penalty for r in rows)
            if self.penalized:
                self.presence = torch.tensor([r.presence_penalty for r in rows], device=device)[:, None]
                self.frequency = torch.tensor([r.frequency_penalty for r in rows], device=device)[:, None]
                self.counts = torch.zeros(len(rows), vocab_size, device=device)
            self.entries: list = [None] * len(rows)

        def __call__(self, input_ids, scores):
            scores = scores.float()
            vocab = scores.shape[-1]
            if self.bias is not None:
                scores = scores + self.bias[:, :vocab]
            if self.penalized:
                counts = self.counts[:, :vocab]
                scores = scores - self.frequency * counts - self.presence * (counts > 0)
            choice = torch.empty(len(self.rows), dtype=torch.long, device=scores.device)
            if self.greedy:
                choice[self.greedy] = scores[self.greedy].argmax(-1)
            if self.sampled:
                idx = self.sampled
                probs = torch.softmax(scores[idx] / self.temperature[idx, None], dim=-1)
                order = None
                if bool((self.top_p[idx] < 1).any()):
                    probs, order = probs.sort(dim=-1, descending=True)
                    before = probs.cumsum(-1) - probs  # mass of the more likely tokens
                    probs = probs.masked_fill(before >= self.top_p[idx, None], 0.0)
                cdf = probs.cumsum(-1)
                u = torch.stack([1 - torch.rand((), generator=self.generators[i]) for i in idx]).to(cdf.device)
                picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1).clamp_max(vocab - 1)
                if order is not None:
                    picked = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
                choice[idx] = picked
            if self.with_logprobs:
                idx = self.with_logprobs
                logprobs = torch.log_softmax(scores[idx], dim=-1)
                chosen = logprobs.gather(-1, choice[idx].unsqueeze(-1)).squeeze(-1).tolist()
                top_values, top_ids = (t.tolist() for t in logprobs.topk(self.k, dim=-1)) if self.k else ([], [])
                for j, i in enumerate(idx):
                    k = self.rows[i].logprobs
                    top = list(zip(top_ids[j][:k], top_values[j][:k])) if k else []
                    self.entries[i] = (chosen[j], top)
            if self.penalized:
                self.counts[torch.arange(len(self.rows)), choice] += 1
            self.choice = choice
            return torch.full_like(scores, float("-inf")).scatter_(-1, choice.unsqueeze(-1), 0.0)

    class RowTracker(StoppingCriteria):
        """Records each row's new token, ends rows (EOS, stop string, max_tokens, client gone), streams, answers."""

        def __init__(self, rows: list[Row], sampler: RowSampler, served: ServedModel, closing: threading.Event):
            self.rows, self.sampler, self.served, self.closing = rows, sampler, served, closing
            self.jobs = list(dict.fromkeys(r.job for r in rows))
            self.resolved: set[int] = set()

        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, -1].tolist()
            closing = self.closing.is_set()
            for i, row in enumerate(self.rows):
                if row.finished:
                    continue
                if row.job.cancelled or closing:
                    row.finish_reason = "cancelled"
                    continue
                row.add(new[i], self.sampler.entries[i], self.served)
            self.flush()
            return torch.tensor([r.finished for r in self.rows], device=input_ids.device)

        def flush(self, final: bool = False) -> None:
            """Stream the rows' new text; answer every job whose rows are all done."""
            for job in self.jobs:
                if id(job) in self.resolved:
                    continue
                updates = []
                for row in job.rows:
                    if final and not row.finished:
                        row.finish_reason = "length"
                    if row.finished and not row.finalized:
                        row.finalize(self.served)
                        if job.stream:
                            updates.append((row, *row.delta(final=True), row.finish_reason))
                    elif job.stream and not row.finished:
                        text, entries = row.delta(final=False)
                        if text or entries:
                            updates.append((row, text, entries, None))
                if all(row.finished for row in job.rows):
                    self.resolved.add(id(job))
                    if self.closing.is_set() and not job.cancelled:
                        job.resolve(APIError(503, "The server shut down during generation.", code="shutting_down"))
                        continue
                    job.publish(updates)
                    job.resolve()
                else:
                    job.publish(updates)

    return RowSampler, RowTracker


# -- the batching worker ------------------------------------------------------------------------------------------


@dataclass
class BatchStats:
    requests: int = 0
    rejected: int = 0
    generate_calls: int = 0
    rows: int = 0
    max_rows_per_call: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_seconds: float = 0.0


def _bucket(max_tokens: int) -> int:
    return (max_tokens - 1).bit_length()  # 1, 2, 3-4, 5-8, ..., 33-64, 65-128, ...


class BatchScheduler:
    """A queue of jobs and the worker thread that runs them in batches (see the module docstring)."""

    def __init__(self, served: ServedModel, settings: ServeSettings):
        self.served = served
        self.max_batch_size = settings.max_batch_size
        self.max_queue = settings.max_queue
        self.batch_wait = settings.batch_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: deque[Job] = deque()
        self._running = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._classes = _sampler_classes()

    def start(self) -> None:
        if self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(target=self._work, name="tinystories-generate", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop: the running batch ends at its next step (its rows "cancelled"), queued requests get a 503."""
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing.is_set() or self._thread is None:
                raise APIError(503, "The server is shutting down.", code="shutting_down")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise APIError(
                    429,
                    f"The server's queue is full ({self.max_queue} requests waiting); retry later.",
                    code="queue_full",
                    kind="rate_limit_error",
                    headers={"retry-after": "1"},
                )
            self.stats.requests += 1
            self._queue.append(job)
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            stats = asdict(self.stats)
            stats["queued"] = len(self._queue)
            stats["running"] = self._running
        stats["mean_rows_per_call"] = (
            round(stats["rows"] / stats["generate_calls"], 2) if stats["generate_calls"] else 0
        )
        stats["generate_seconds"] = round(stats["generate_seconds"], 3)
        return stats

    # -- worker thread ------------------------------------------------------------------------------------------
    def _pick(self) -> list[Job]:
        """The oldest job and the queued jobs that can share its generate call (lock held)."""
        while self._queue and self._queue[0].cancelled:
            self._queue.popleft().resolve()
        if not self._queue:
            return []
        first = self._queue[0]
        batch = [first]
        if not first.alone:
            rows, longest_prompt, longest_reply = len(first.rows), first.max_prompt, first.max_tokens
            for job in list(self._queue)[1:]:
                if job.alone or job.cancelled or _bucket(job.max_tokens) != _bucket(first.max_tokens):
                    continue
                if rows + len(job.rows) > self.max_batch_size:
                    continue
                if max(longest_prompt, job.max_prompt) + max(longest_reply, job.max_tokens) > self.served.context:
                    continue
                batch.append(job)
                rows += len(job.rows)
                longest_prompt, longest_reply = max(longest_prompt, job.max_prompt), max(longest_reply, job.max_tokens)
                if rows == self.max_batch_size:
                    break
        for job in batch:
            self._queue.remove(job)
        return batch

    def _gather_deadline(self) -> float:
        return min(self._queue[-1].arrived + self.batch_wait, self._queue[0].arrived + 10 * self.batch_wait)

    def _work(self) -> None:
        import torch

        while True:
            with self._cond:
                while not self._queue and not self._closing.is_set():
                    self._cond.wait()
                if self._closing.is_set():
                    break
                # gather company: a burst of requests is still arriving while they come less than batch_wait
                # apart; stop waiting at a quiet gap, a full batch, or 10 x batch_wait after the oldest arrived
                while (
                    not self._closing.is_set()
                    and sum(len(j.rows) for j in self._queue) < self.max_batch_size
                    and not self._queue[0].alone
                    and (left := self._gather_deadline() - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                if self._closing.is_set():
                    break
                batch = self._pick()
                self._running = len(batch)
            if batch:
                with torch.inference_mode():
                    self._run(batch)
            with self._cond:
                self._running = 0
        with self._cond:
            pending, self._queue = list(self._queue), deque()
        for job in pending:
            job.resolve(APIError(503, "The server is shutting down.", code="shutting_down"))

    def _run(self, batch: list[Job]) -> None:
        import torch

        served = self.served
        rows = [row for job in batch for row in job.rows]
        width = max(len(r.prompt_ids) for r in rows)
        input_ids = torch.full((len(rows), width), served.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            mask[i, width - len(row.prompt_ids) :] = 1
        sampler_class, tracker_class = self._classes
        sampler = sampler_class(rows, served.vocab_size, served.device)
        tracker = tracker_class(rows, sampler, served, self._closing)
        start = time.perf_counter()
        try:
            served.model.generate(
                input_ids=input_ids.to(served.device),
                attention_mask=mask.to(served.device),
                max_new_tokens=max(r.max_tokens for r in rows),
                do_sample=False,
                logits_processor=[sampler],
                stopping_criteria=[tracker],
                pad_token_id=served.pad_id,
            )
        except Exception as e:  # a failed call must not kill the worker: answer its requests with a 500
            logger.exception("generate failed for a batch of %d rows", len(rows))
            for job in batch:
                if id(job) not in tracker.resolved:
                    tracker.resolved.add(id(job))
                    job.resolve(APIError(500, f"Generation failed: {type(e).__name__}: {e}", code="generation_error"))
        else:
            tracker.flush(final=True)
        elapsed = time.perf_counter() - start
        with self._cond:
            s = self.stats
            s.generate_calls += 1
            s.rows += len(rows)
            s.max_rows_per_call = max(s.max_rows_per_call, len(rows))
            s.generate_seconds += elapsed
            s.prompt_tokens += sum(len(r.prompt_ids) for r in rows)
            s.completion_tokens += sum(r.generated for r in rows)


# -- request parsing ----------------------------------------------------------------------------------------------


def _number(body: dict, name: str, default, low=None, high=None, integer=False, low_open=False):
    value = body.get(name)
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise _bad(f"{name} must be {kind}, got {json.dumps(value)}", name, "invalid_type")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        left = "(" if low_open else "["
        raise _bad(f"{name} must be in {left}{low}, {high}], got {value}", name)
    return value


def _stops(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop must be a string or a list of strings", "stop", "invalid_type")
    stops = [s for s in stops if s]
    if len(stops) > MAX_STOPS:
        raise _bad(f"stop may hold at most {MAX_STOPS} strings, got {len(stops)}", "stop")
    return stops


def _logit_bias(body: dict, vocab_size: int) -> dict[int, float]:
    bias = body.get("logit_bias")
    if bias is None:
        return {}
    if not isinstance(bias, dict):
        raise _bad("logit_bias must be an object mapping token ids to biases", "logit_bias", "invalid_type")
    out = {}
    for key, value in bias.items():
        try:
            token = int(key)
        except ValueError:
            raise _bad(f"logit_bias keys must be token ids, got {key!r}", "logit_bias") from None
        if not 0 <= token < vocab_size:
            raise _bad(f"logit_bias token id {token} is outside the vocabulary [0, {vocab_size})", "logit_bias")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -100 <= value <= 100:
            raise _bad(f"logit_bias values must be numbers in [-100, 100], got {value!r}", "logit_bias")
        out[token] = float(value)
    return out


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise _bad(f"messages[{index}].content: only text parts are supported", "messages")
        return "".join(parts)
    raise _bad(f"messages[{index}].content must be a string or a list of text parts", "messages", "invalid_type")


def _messages(body: dict) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list of {role, content} objects", "messages", "invalid_type")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _PLAIN_ROLES:
            raise _bad(f"messages[{i}] must be an object with a role among {', '.join(_PLAIN_ROLES)}", "messages")
        out.append({"role": message["role"], "content": _message_text(message.get("content"), i)})
    return out


def _prompts(body: dict, served: ServedModel) -> list[tuple[list[int], str]]:
    """(token ids, text) of each prompt of a completion request: a string, strings, token ids or lists of them."""
    prompt = body.get("prompt")
    if prompt is None:
        raise _bad("prompt is required (a string, a list of strings or token ids)", "prompt", "missing")
    if isinstance(prompt, str):
        prompt = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise _bad("prompt must be a string, a list of strings or token ids", "prompt", "invalid_type")
    out = []
    for p in prompt:
        if isinstance(p, str):
            out.append((served.encode(p), p))
        elif isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            if not all(0 <= t < served.vocab_size for t in p):
                raise _bad(f"prompt token ids must be in [0, {served.vocab_size})", "prompt")
            out.append((list(p), served.decode(p)))
        else:
            raise _bad("prompt must be a string, a list of strings or token ids", "prompt", "invalid_type")
    return out


def _fit(ids: list[int], max_tokens: int, served: ServedModel, param: str) -> list[int]:
    context = served.context
    if max_tokens >= context:
        raise _bad(
            f"max_tokens={max_tokens} leaves no room for the prompt: this model's context is {context} tokens",
            "max_tokens",
        )
    if len(ids) + max_tokens > context:
        if served.settings.truncate_prompts:
            return ids[len(ids) + max_tokens - context :]
        raise _bad(
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{len(ids) + max_tokens} tokens ({len(ids)} in the {param}, {max_tokens} in the completion). "
            f"Please reduce the length of the {param} or max_tokens.",
            param,
            "context_length_exceeded",
        )
    return ids


def parse_request(body: Any, kind: str, served: ServedModel, loop) -> Job:
    """Validate an OpenAI request body; returns its Job (raises ``APIError`` naming the bad parameter)."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_json")
    model = body.get("model")
    if model is not None and model not in (served.name, served.settings.model):
        raise APIError(404, f"The model `{model}` does not exist. This server serves `{served.name}`.", "model",
                       "model_not_found")  # fmt: skip
    unsupported = {"suffix": None, "tools": [], "functions": [], "tool_choice": "none"}
    for name, fine in unsupported.items():
        if body.get(name) not in (None, fine):
            raise _bad(f"{name} is not supported by this server", name, "unsupported_parameter")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") != "text"
    ):
        raise _bad("response_format: only {'type': 'text'} is supported by this server", "response_format",
                   "unsupported_parameter")  # fmt: skip
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _bad("stream must be a boolean", "stream", "invalid_type")
    n = _number(body, "n", 1, 1, MAX_CHOICES, integer=True)
    best_of = _number(body, "best_of", None, 1, MAX_CHOICES, integer=True)
    if best_of not in (None, n):
        raise _bad("best_of other than n is not supported by this server", "best_of", "unsupported_parameter")
    temperature = float(_number(body, "temperature", 1.0, 0, 2))
    top_p = float(_number(body, "top_p", 1.0, 0, 1, low_open=True))
    presence = float(_number(body, "presence_penalty", 0.0, -2, 2))
    frequency = float(_number(body, "frequency_penalty", 0.0, -2, 2))
    seed = _number(body, "seed", None, -(2**63), 2**64 - 1, integer=True)
    stops = _stops(body)
    bias = _logit_bias(body, served.vocab_size)
    extra: dict[str, Any] = {"model": served.name}
    if kind == "chat":
        max_tokens = _number(body, "max_completion_tokens", None, 1, None, integer=True)
        max_tokens = _number(body, "max_tokens", max_tokens, 1, None, integer=True)
        want = body.get("logprobs") or False
        if not isinstance(want, bool):
            raise _bad("logprobs must be a boolean for chat completions", "logprobs", "invalid_type")
        top = _number(body, "top_logprobs", None, 0, MAX_LOGPROBS, integer=True)
        if top is not None and not want:
            raise _bad("top_logprobs requires logprobs: true", "top_logprobs")
        logprobs = (top or 0) if want else None
        ids, format_stops = served.chat_prompt(_messages(body))
        stops = stops + [s for s in format_stops if s not in stops]
        if max_tokens is None:
            max_tokens = served.context - len(ids)
            if max_tokens < 1:
                raise _bad(f"The messages ({len(ids)} tokens) fill this model's context of {served.context} tokens",
                           "messages", "context_length_exceeded")  # fmt: skip
        prompts = [(_fit(ids, max_tokens, served, "messages"), None)]
    else:
        max_tokens = _number(body, "max_tokens", 16, 1, None, integer=True)
        logprobs = _number(body, "logprobs", None, 0, MAX_LOGPROBS, integer=True)
        echo = body.get("echo") or False
        if not isinstance(echo, bool):
            raise _bad("echo must be a boolean", "echo", "invalid_type")
        if echo and logprobs is not None:
            raise _bad("echo with logprobs (prompt logprobs) is not supported by this server", "echo",
                       "unsupported_parameter")  # fmt: skip
        prompts = [(_fit(ids, max_tokens, served, "prompt"), text) for ids, text in _prompts(body, served)]
        extra["echo"] = echo
    if n * len(prompts) > MAX_CHOICES:
        raise _bad(f"n x prompts must be at most {MAX_CHOICES}, got {n * len(prompts)}", "n")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise _bad("stream_options must be an object", "stream_options", "invalid_type")
    extra["include_usage"] = bool(stream_options.get("include_usage"))
    extra["prompts"] = [text for _, text in prompts]
    extra["prompt_tokens"] = sum(len(ids) for ids, _ in prompts)
    base_seed = seed if seed is not None else random.getrandbits(63)
    specs = []
    for p, (ids, _) in enumerate(prompts):
        for j in range(n):
            index = p * n + j
            specs.append(
                {
                    "index": index,
                    "prompt_ids": ids,
                    "temperature": temperature,
                    "top_p": top_p,
                    "max_tokens": max_tokens,
                    "stops": stops,
                    "logprobs": logprobs,
                    "seed": (base_seed + 0x9E3779B97F4A7C15 * index) % 2**64,
                    "presence_penalty": presence,
                    "frequency_penalty": frequency,
                    "logit_bias": bias,
                }
            )
    return Job(kind, specs, stream=stream, alone=seed is not None, loop=loop, extra=extra)


# -- responses ----------------------------------------------------------------------------------------------------


def _legacy_logprobs(served: ServedModel, entries: list, offset: int) -> dict[str, list]:
    return {
        "tokens": [served.token_text(e[0]) for e in entries],
        "token_logprobs": [e[1] for e in entries],
        "top_logprobs": [{served.token_text(t): lp for t, lp in e[2]} for e in entries],
        "text_offset": [offset + e[3] for e in entries],
    }


def _chat_logprobs(served: ServedModel, entries: list) -> dict[str, list]:
    def item(token_id: int, logprob: float) -> dict[str, Any]:
        return {"token": served.token_text(token_id), "logprob": logprob, "bytes": served.token_bytes(token_id)}

    return {"content": [{**item(e[0], e[1]), "top_logprobs": [item(t, lp) for t, lp in e[2]]} for e in entries]}


def _usage(job: Job) -> dict[str, int]:
    completion = sum(r.generated for r in job.rows)
    prompt = job.extra["prompt_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _fingerprint() -> str:
    from . import __version__

    return f"tinystories-{__version__}"


def completion_body(job: Job, served: ServedModel, request_id: str, created: int) -> dict[str, Any]:
    n = len(job.rows) // max(1, len(job.extra["prompts"]))
    choices = []
    for row in job.rows:
        if job.kind == "chat":
            logprobs = _chat_logprobs(served, row.entries) if row.logprobs is not None else None
            message = {"role": "assistant", "content": row.text}
            choices.append(
                {"index": row.index, "message": message, "logprobs": logprobs, "finish_reason": row.finish_reason}
            )
        else:
            prefix = job.extra["prompts"][row.index // n] if job.extra["echo"] else ""
            logprobs = _legacy_logprobs(served, row.entries, len(prefix)) if row.logprobs is not None else None
            choices.append(
                {
                    "index": row.index,
                    "text": prefix + row.text,
                    "logprobs": logprobs,
                    "finish_reason": row.finish_reason,
                }
            )
    return {
        "id": request_id,
        "object": "chat.completion" if job.kind == "chat" else "text_completion",
        "created": created,
        "model": served.name,
        "system_fingerprint": _fingerprint(),
        "choices": choices,
        "usage": _usage(job),
    }


async def stream_events(job: Job, served: ServedModel, request_id: str, created: int):
    """Server-sent events of a streamed request, in OpenAI's chunk format, ending with ``data: [DONE]``."""
    chat = job.kind == "chat"
    n = len(job.rows) // max(1, len(job.extra["prompts"]))

    def chunk(choices: list, usage: dict | None = None) -> str:
        body = {
            "id": request_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": served.name,
            "system_fingerprint": _fingerprint(),
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        if chat:
            yield chunk(
                [
                    {
                        "index": r.index,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }  # fmt: skip
                    for r in job.rows
                ]
            )
        elif job.extra["echo"]:
            yield chunk(
                [
                    {
                        "index": r.index,
                        "text": job.extra["prompts"][r.index // n],
                        "logprobs": None,
                        "finish_reason": None,
                    }
                    for r in job.rows
                ]  # fmt: skip
            )
        sent_chars = {r.index: 0 for r in job.rows}
        while True:
            updates = await job.events.get()
            if updates is None:
                break
            if isinstance(updates, APIError):
                yield f"data: {json.dumps(updates.body())}\n\n"
                break
            choices = []
            for row, text, entries, finish in updates:
                if chat:
                    logprobs = _chat_logprobs(served, entries) if row.logprobs is not None else None
                    delta = {"content": text} if text or finish is None else {}
                    choices.append({"index": row.index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
                else:
                    offset = sent_chars[row.index]
                    logprobs = _legacy_logprobs(served, entries, 0) if row.logprobs is not None else None
                    choices.append({"index": row.index, "text": text, "logprobs": logprobs, "finish_reason": finish})
                    sent_chars[row.index] = offset + len(text)
            if choices:
                yield chunk(choices)
        if job.extra["include_usage"]:
            yield chunk([], usage=_usage(job))
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled = True  # nothing left to send: a still running row stops at the next step


# -- the application ----------------------------------------------------------------------------------------------


def _require_serve_dependencies() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"tinystories serve needs FastAPI and uvicorn ({e.name} is missing): {SERVE_EXTRA_HINT}"
        ) from e


def build_app(model: str | None = None, *, settings: ServeSettings | None = None, **kwargs: Any):
    """The FastAPI application serving ``model`` (a folder or a Hub id); ``kwargs`` are ``ServeSettings`` fields.

    The model loads here; the generation worker starts and stops with the application's lifespan.
    """
    _require_serve_dependencies()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    if settings is None:
        if model is None:
            raise ValueError("build_app needs a model path or settings")
        settings = ServeSettings(model=model, **kwargs)
    served = ServedModel(settings)
    scheduler = BatchScheduler(served, settings)

    @asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()

    app = FastAPI(title="tinystories serve", description="OpenAI-compatible API", lifespan=lifespan)
    app.state.served, app.state.scheduler, app.state.settings = served, scheduler, settings

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        status = error.status_code
        message = {404: f"Unknown endpoint {request.method} {request.url.path}"}.get(status, str(error.detail))
        return JSONResponse(APIError(status, message).body(), status_code=status, headers=error.headers)

    def model_card() -> dict[str, Any]:
        return {
            "id": served.name,
            "object": "model",
            "created": served.created,
            "owned_by": "tinystories",
            "root": settings.model,
            "max_model_len": served.context,
        }

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model_info(name: str):
        if name not in (served.name, settings.model):
            raise APIError(404, f"The model `{name}` does not exist.", "model", "model_not_found")
        return model_card()

    @app.get("/health")
    @app.get("/v1/health")
    async def health():
        return {
            "status": "ok",
            "model": served.name,
            "context": served.context,
            "max_batch_size": settings.max_batch_size,
            "max_queue": settings.max_queue,
            "stats": scheduler.snapshot(),
        }

    async def handle(request: Request, kind: str):
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise APIError(400, f"The request body is not valid JSON: {e}", code="invalid_json") from None
        loop = asyncio.get_running_loop()
        job = parse_request(body, kind, served, loop)
        request_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        scheduler.submit(job)
        if job.stream:
            return StreamingResponse(
                stream_events(job, served, request_id, created),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        try:
            await job.future
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        return JSONResponse(completion_body(job, served, request_id, created))

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, "completion")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, "chat")

    return app


class ServerThread:
    """Run an app with uvicorn in a background thread of this process: ``with ServerThread(app) as url: ...``.

    ``port=0`` picks a free port; the context value is the base URL (``http://host:port/v1``).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
        self.host = host
        self.thread = threading.Thread(target=self.server.run, name="tinystories-serve", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{self.host}:{port}/v1"
        return self.base_url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


# -- command line -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> ServeSettings:
    defaults = ServeSettings(model="")
    parser = argparse.ArgumentParser(
        prog="tinystories serve",
        description="Serve a causal LM through an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
        "/v1/models, /health), batching concurrent requests into one generate call.",
    )
    parser.add_argument("model", help="A model folder (e.g. a tinystories train output_dir) or a Hub id.")
    parser.add_argument("--served_model_name", help="Model name clients use (default: the folder's name).")
    parser.add_argument("--host", default=defaults.host, help="Interface to bind (default: %(default)s).")
    parser.add_argument("--port", type=int, default=defaults.port, help="Port (default: %(default)s).")
    parser.add_argument(
        "--dtype", default=defaults.dtype, choices=["auto", "float32", "bfloat16", "float16"], help="Weights dtype."
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu).")
    parser.add_argument(
        "--attn_implementation",
        default=defaults.attn_implementation,
        help="sdpa (GPT-Neo: this package's exact fast attention) or eager (default: %(default)s).",
    )
    parser.add_argument(
        "--max_batch_size", type=int, default=defaults.max_batch_size, help="Rows in one generate call (%(default)s)."
    )
    parser.add_argument(
        "--max_queue",
        type=int,
        default=defaults.max_queue,
        help="Requests waiting at most; beyond, a 429 with retry-after (default: %(default)s).",
    )
    parser.add_argument(
        "--batch_wait_ms",
        type=float,
        default=defaults.batch_wait_ms,
        help="How long a new request waits for others to batch with (default: %(default)s ms).",
    )
    parser.add_argument("--max_model_len", type=int, help="Context length (default: the model's positions).")
    parser.add_argument(
        "--truncate_prompts",
        action="store_true",
        help="Keep the last tokens of a prompt too long for the context instead of a 400 error.",
    )
    parser.add_argument("--log_level", default=defaults.log_level, choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    try:
        return ServeSettings(**vars(args))
    except ValueError as e:
        parser.error(str(e))


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _require_serve_dependencies()
    except ImportError as e:
        print(f"tinystories serve: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    import uvicorn

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=settings.log_level.upper()
    )
    try:
        app = build_app(settings=settings)
    except (OSError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"tinystories serve: error: cannot load {settings.model!r}: {first_line}", file=sys.stderr)
        raise SystemExit(2) from None
    served = app.state.served
    logger.info(
        "Serving %s (%s, context %d, max_batch_size %d) at http://%s:%d/v1",
        served.name,
        type(served.model).__name__,
        served.context,
        settings.max_batch_size,
        settings.host,
        settings.port,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=5)
