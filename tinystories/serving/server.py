"""``tinystories serve MODEL``: any causal LM behind an OpenAI-compatible HTTP API, with batched generation.

Endpoints: ``GET /v1/models``, ``GET /health`` (alias ``/v1/health``; with the batching statistics; a 503 when the
generation worker is not running), ``POST /v1/completions`` and ``POST /v1/chat/completions`` (streaming, ``n``,
``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``logprobs``, penalties, ``logit_bias``, ``usage``),
so that the ``openai`` client, ``tinystories generate`` and GPT-Eval use a local model as they would use OpenAI or
vLLM.

How requests are run:

- Parsing. The JSON body is read and checked (non-finite numbers such as ``NaN`` are refused), prompts are
  tokenized and chat templates applied in a worker thread of the event loop's pool, so a long prompt never holds
  up other clients; the request is then queued.
- Batching. Requests are queued; a single worker thread takes the oldest one and joins to it every queued request
  that fits (up to ``max_batch_size`` rows, a similar ``max_tokens``: same power-of-two bucket, and the padded
  prompt plus the longest reply within the context), gathering a burst of requests first (until no new one came
  for ``batch_wait_ms``, at most 10 x that after the oldest).
  The rows (``n`` choices and every prompt of a request are rows) run as ONE left-padded ``model.generate`` call.
  Every sampling parameter is per row: a logits processor picks each row's token (greedy at temperature 0, else
  temperature and top-p) and a stopping criterion ends each row at its EOS, stop string or ``max_tokens``; a
  request is answered as soon as its own rows are done.
- Seeds. A request with ``seed`` runs alone (its rows only): the arithmetic of a row depends on the shape of the
  batch it is in (kernels pick other blockings), so only the same shape gives the same text bit for bit. Its rows
  draw from one generator seeded with ``seed``: at every step, one uniform number per row, in choice order (rows
  already finished included). So the same request with the same seed gives the same text, choice by choice; the
  same seed with another ``n``, prompt or parameter may not.
- Streaming. Streamed requests are batched like the others: each decoding step sends the new text of each row
  as a server-sent event (OpenAI's chunk format, ending with ``data: [DONE]``), holding back what could be the
  beginning of a stop string.
- Disconnects. A client that disconnects (streaming or not) cancels its request: a queued request leaves the
  queue, a running one frees its rows at the next step.
- Text. A reply is decoded after the last few prompt tokens (vLLM's incremental detokenization), so that a
  SentencePiece/Metaspace tokenizer keeps the leading space of the reply's first word, and a multi-byte character
  split over several tokens is sent whole.
- Logprobs are those of the model's distribution (after ``logit_bias`` and penalties, before temperature and
  top-p), in the legacy format for completions (``logprobs: k``) and the chat format for chat completions
  (``logprobs: true, top_logprobs: k``), at most 20. As in vLLM, every generated token is counted in
  ``completion_tokens`` and has a logprob entry, the final EOS included (its text, e.g. ``<|endoftext|>``, is not
  part of the reply); special tokens are shown with their text.
- Chat. A tokenizer with a ``chat_template`` formats the messages with it; otherwise a plain text dialogue
  (``User: ...`` / ``Assistant:`` lines) with ``"\\nUser:"`` as a stop string.
- Limits. Bad parameters are 400 errors in OpenAI's error shape naming the parameter; an unknown model is a 404;
  a prompt plus ``max_tokens`` longer than the context is a 400 (or, with ``truncate_prompts``, the prompt keeps
  its last tokens); more than ``max_queue`` waiting requests is a 429 with ``retry-after``. A failure while
  generating answers the requests of that batch with a generic 500 (the traceback goes to the server's log) and
  the worker goes on.
- Access. With ``api_key`` (or the environment variable ``TINYSTORIES_SERVE_API_KEY``), every ``/v1/...`` request
  needs ``Authorization: Bearer <key>`` (else a 401); ``/health`` stays open.

``build_app(path, **settings)`` returns the FastAPI application (what ``tinystories serve`` runs with uvicorn) and
``ServerThread(app)`` runs one in a background thread of the current process.
"""

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import math
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
API_KEY_ENV = "TINYSTORIES_SERVE_API_KEY"
MAX_LOGPROBS = 20  # top logprobs a token, as OpenAI
MAX_CHOICES = 128  # rows (n x prompts) a request
MAX_STOPS = 16
MIN_LOGPROB = -9999.0  # what -inf (and NaN) logprobs are shown as: JSON has no infinity (vLLM does the same)
GREEDY_TEMPERATURE = 1e-5  # at or below: greedy (vLLM's threshold)
CONTEXT_TOKENS = 5  # prompt tokens a reply is decoded after (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET)
PLAIN_CHAT_STOP = "\nUser:"
_PLAIN_ROLES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
_GENERIC_500 = "The server had an error while generating this reply (see the server's log); retry the request."


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
    api_key: str | None = field(default=None, repr=False)  # default: $TINYSTORIES_SERVE_API_KEY; None: no key

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
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None


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


def _space_marker(tokenizer) -> str | None:
    """The character a SentencePiece-style vocabulary writes a leading space with (``▁``), if its decoder maps it
    back to a space (a ``Metaspace`` decoder, or a ``Replace`` of it); None for other tokenizers."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        decoder = json.loads(backend.to_str()).get("decoder") or {}
    except (AttributeError, TypeError, ValueError):
        return None
    parts = (decoder.get("decoders") or []) if decoder.get("type") == "Sequence" else [decoder]
    for part in parts:
        if part.get("type") == "Metaspace":
            return part.get("replacement") or "\u2581"
        if part.get("type") == "Replace" and (part.get("pattern") or {}).get("String") == "\u2581":
            return "\u2581"
    return None


class ServedModel:
    """A causal LM and its tokenizer, ready for left-padded batched generation, and their text helpers."""

    def __init__(self, settings: ServeSettings):
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from ..modeling import load_model

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
        self._space_marker = _space_marker(tok)
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

    def decode_after(self, context: list[int], context_text: str, ids: list[int]) -> str:
        """The text of ``ids`` following the tokens ``context`` (whose text is ``context_text``): a SentencePiece
        decoder drops the leading space of the first word of a text, not of a word that follows others."""
        if context:
            text = self.decode(context + ids)
            if text.startswith(context_text):
                return text[len(context_text) :]
        return self.decode(ids)

    def token_text(self, token_id: int) -> str:
        """One token's text for logprobs: special tokens with their text (``<|endoftext|>``), a SentencePiece word
        with its leading space (`` word``), a part of a UTF-8 character as U+FFFD (its bytes are ``token_bytes``)."""
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            if self._space_marker:
                piece = self.tokenizer.convert_ids_to_tokens(token_id) or ""
                missing = len(piece) - len(piece.lstrip(self._space_marker)) - (len(text) - len(text.lstrip(" ")))
                text = " " * missing + text if missing > 0 else text
            self._token_text[token_id] = text
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


@dataclass(eq=False)
class Row:
    """One choice being generated: its prompt, its sampling parameters and what it has produced so far.

    Text is decoded incrementally (a short window of tokens each step) only when it is needed while generating:
    for a streamed request or a stop string. Other rows are decoded once, when they finish.
    """

    job: "Job"
    index: int  # choice index in the response
    prompt_ids: list[int]
    context: list[int]  # the prompt's last tokens, decoded before the reply (see ServedModel.decode_after)
    context_text: str  # their text
    temperature: float
    top_p: float
    max_tokens: int
    stops: list[str]
    logprobs: int | None  # top-k alternatives to return (0: only the chosen token's logprob), None: no logprobs
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    # state, written by the worker thread only
    ids: list[int] = field(default_factory=list)  # generated tokens, without a final EOS
    text: str = ""
    # (token id, logprob, top alternatives, offset of the token's text in `text`): one a generated token, EOS too
    entries: list[tuple[int, float, list[tuple[int, float]], int]] = field(default_factory=list)
    generated: int = 0  # generated tokens, a final EOS included (what completion_tokens counts)
    finish_reason: str | None = None
    cut: int | None = None  # the text ends here (a stop string starts here)
    finalized: bool = False
    sent_chars: int = 0
    sent_entries: int = 0

    def __post_init__(self) -> None:
        self.incremental = self.job.stream or bool(self.stops)
        self._longest_stop = max((len(s) for s in self.stops), default=0)
        self._tokens = list(self.context)  # context + ids: what the incremental decoding reads
        self._prefix, self._read = 0, len(self.context)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def _detokenize(self, served: ServedModel, end: int) -> None:
        """Append the text of ``_tokens[_read:end]``: decode a short window, emit only complete characters."""
        prefix = served.decode(self._tokens[self._prefix : self._read])
        window = served.decode(self._tokens[self._prefix : end])
        # (a UTF-8 character has at most 4 bytes: after 4 more tokens a U+FFFD is the model's, not a partial one)
        if len(window) > len(prefix) and (not window.endswith("\ufffd") or end - self._read >= 4):
            self.text += window[len(prefix) :]
            self._prefix, self._read = self._read, end

    def add(self, token_id: int, entry, served: ServedModel) -> None:
        """Append a generated token; sets ``finish_reason`` at EOS, at a stop string or at ``max_tokens``."""
        self.generated += 1
        if entry is not None:
            self.entries.append((token_id, entry[0], entry[1], len(self.text)))
        if token_id in served.eos_ids:
            self.finish_reason = "stop"
            return
        self.ids.append(token_id)
        self._tokens.append(token_id)
        if self.incremental:
            start = len(self.text)
            self._detokenize(served, len(self._tokens))
            if self.stops and len(self.text) > start:
                since = max(0, start - self._longest_stop + 1)
                found = [i for i in (self.text.find(s, since) for s in self.stops) if i >= 0]
                if found:
                    self.cut = min(found)
                    self.finish_reason = "stop"
                    return
        if self.generated >= self.max_tokens:
            self.finish_reason = "length"

    def _offsets(self, served: ServedModel) -> list[int]:
        """Where each generated token's text starts, replaying the incremental decoding (rows that skipped it)."""
        self.text, self._prefix, self._read = "", 0, len(self.context)
        offsets = []
        for end in range(len(self.context) + 1, len(self._tokens) + 1):
            offsets.append(len(self.text))
            self._detokenize(served, end)
        return offsets

    def finalize(self, served: ServedModel) -> None:
        self.finalized = True
        if self.cut is not None:
            self.text = self.text[: self.cut]
        else:
            offsets = self._offsets(served) if self.entries and not self.incremental else None
            # the exact text, including a trailing partial character
            self.text = served.decode_after(self.context, self.context_text, self.ids)
            if offsets is not None:
                offsets.append(len(self.text))  # a final EOS: at the end
                self.entries = [(*e[:3], offsets[min(k, len(offsets) - 1)]) for k, e in enumerate(self.entries)]
        end = len(self.text)
        if self.entries and self.entries[-1][3] > end:
            self.entries = [e if e[3] <= end else (*e[:3], end) for e in self.entries]

    def delta(self, final: bool) -> tuple[str, list]:
        """Text and logprob entries not yet streamed; short of a possible stop string's start unless ``final``."""
        limit = len(self.text)
        if not final and self.stops:
            limit = max(self.sent_chars, limit - self._longest_stop + 1)
        text = self.text[self.sent_chars : limit]
        upto = self.sent_entries
        if final:
            upto = len(self.entries)
        else:
            while upto < len(self.entries) and self.entries[upto][3] < limit:
                upto += 1
        entries = self.entries[self.sent_entries : upto]
        self.sent_chars, self.sent_entries = max(self.sent_chars, limit), upto
        return text, entries


class Job:
    """One HTTP request: its rows, and how results reach the event loop (a future, or an event queue to stream).

    Built in a worker thread by ``parse_request``; ``attach`` (on the event loop) creates its future or queue.
    """

    def __init__(self, kind: str, rows_spec: list[dict], stream: bool, seed: int | None, extra: dict):
        self.kind = kind  # "completion" or "chat"
        self.stream = stream
        self.seed = seed
        self.alone = seed is not None
        self.extra = extra  # response details: prompts text, echo, usage options
        self.rows = [Row(job=self, **spec) for spec in rows_spec]
        self.max_tokens = max(r.max_tokens for r in self.rows)
        self.max_prompt = max(len(r.prompt_ids) for r in self.rows)
        self.prompt_tokens = extra["prompt_tokens"]
        self.cancelled = False  # the client is gone: stop at the next step
        self.resolved = False  # answered (set by the worker thread)
        self.arrived = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future | None = None
        self.events: asyncio.Queue | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the event loop: the future a non-streamed request awaits, or the queue of a stream's events."""
        self.loop = loop
        if self.stream:
            self.events = asyncio.Queue()
        else:
            self.future = loop.create_future()

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
        """Answer the request (once): the end of its stream, or its future's result or error."""
        if self.resolved:
            return
        self.resolved = True

        def done():
            if self.stream:
                self.events.put_nowait(error)
            elif not self.future.done():
                if error is None:
                    self.future.set_result(None)
                else:
                    self.future.set_exception(error)
                    self.future.exception()  # retrieved: no "never retrieved" warning when nobody waits

        self._call(done)


# -- per-row sampling inside one generate call ----------------------------------------------------------------------


def _sampler_classes():
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class RowSampler(LogitsProcessor):
        """Picks every row's next token with that row's parameters; returns logits allowing only that token.

        ``generate`` then runs greedy decoding, so it takes exactly the token chosen here: per-row temperature,
        top-p, penalties, logit bias and logprobs in one batched call. Rows at temperature 0 (at most
        ``GREEDY_TEMPERATURE``) take the most likely token, every other row is sampled; the uniform numbers come
        from ``generator``, one a row (all rows, in order) a step.
        """

        def __init__(self, rows: list[Row], vocab_size: int, device, generator):
            self.rows = rows
            self.generator = generator
            self.temperature = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=device)
            self.top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device)
            self.greedy = [i for i, r in enumerate(rows) if r.temperature <= GREEDY_TEMPERATURE]
            greedy = set(self.greedy)
            self.sampled = [i for i in range(len(rows)) if i not in greedy]  # every other row: none left unset
            self.top_p_sampled = bool((self.top_p[self.sampled] < 1).any()) if self.sampled else False
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
            uniform = torch.rand(len(self.rows), generator=self.generator)  # drawn every step: reproducible
            choice = torch.empty(len(self.rows), dtype=torch.long, device=scores.device)
            if self.greedy:
                choice[self.greedy] = scores[self.greedy].argmax(-1)
            if self.sampled:
                idx = self.sampled
                probs = torch.softmax(scores[idx] / self.temperature[idx, None], dim=-1)
                order = None
                if self.top_p_sampled:
                    probs, order = probs.sort(dim=-1, descending=True)
                    before = probs.cumsum(-1) - probs  # mass of the more likely tokens
                    probs = probs.masked_fill(before >= self.top_p[idx, None], 0.0)
                cdf = probs.cumsum(-1)
                u = (1 - uniform[idx]).to(cdf.device)  # in (0, 1]: never the tokens of probability 0 before
                picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1).clamp_max(vocab - 1)
                if order is not None:
                    picked = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
                choice[idx] = picked
            if self.with_logprobs:
                idx = self.with_logprobs
                logprobs = torch.log_softmax(scores[idx], dim=-1).clamp_min(MIN_LOGPROB).nan_to_num(MIN_LOGPROB)
                chosen = logprobs.gather(-1, choice[idx].unsqueeze(-1)).squeeze(-1).tolist()
                top_values, top_ids = (t.tolist() for t in logprobs.topk(self.k, dim=-1)) if self.k else ([], [])
                for j, i in enumerate(idx):
                    k = self.rows[i].logprobs
                    top = list(zip(top_ids[j][:k], top_values[j][:k])) if k else []
                    self.entries[i] = (chosen[j], top)
            if self.penalized:
                self.counts[torch.arange(len(self.rows)), choice] += 1
            return torch.full_like(scores, float("-inf")).scatter_(-1, choice.unsqueeze(-1), 0.0)

    class RowTracker(StoppingCriteria):
        """Records each row's new token, ends rows (EOS, stop string, max_tokens, client gone), streams, answers."""

        def __init__(self, rows: list[Row], sampler: RowSampler, served: ServedModel, closing: threading.Event):
            self.rows, self.sampler, self.served, self.closing = rows, sampler, served, closing
            self.jobs = list(dict.fromkeys(r.job for r in rows))

        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, -1].tolist()
            closing = self.closing.is_set()
            entries = self.sampler.entries
            for i, row in enumerate(self.rows):
                if row.finish_reason is not None:
                    continue
                if closing or row.job.cancelled:
                    row.finish_reason = "cancelled"
                    continue
                row.add(new[i], entries[i], self.served)
            self.flush()
            return torch.tensor([r.finish_reason is not None for r in self.rows], device=input_ids.device)

        def flush(self, final: bool = False) -> None:
            """Stream the rows' new text; answer every job whose rows are all done."""
            for job in self.jobs:
                if job.resolved:
                    continue
                updates, done = [], True
                for row in job.rows:
                    if final and row.finish_reason is None:
                        row.finish_reason = "length"
                    if row.finish_reason is not None:
                        if not row.finalized:
                            row.finalize(self.served)
                            if job.stream:
                                updates.append((row, *row.delta(final=True), row.finish_reason))
                    else:
                        done = False
                        if job.stream:
                            text, entries = row.delta(final=False)
                            if text or entries:
                                updates.append((row, text, entries, None))
                if not done:
                    job.publish(updates)
                elif any(row.finish_reason == "cancelled" for row in job.rows) and not job.cancelled:
                    job.resolve(APIError(503, "The server shut down during generation.", code="shutting_down"))
                else:
                    job.publish(updates)
                    job.resolve()

    return RowSampler, RowTracker


# -- the batching worker ------------------------------------------------------------------------------------------


@dataclass
class BatchStats:
    requests: int = 0
    rejected: int = 0
    cancelled: int = 0  # requests whose client disconnected before the reply
    failed: int = 0  # requests answered with a 500 (an error while generating)
    generate_calls: int = 0
    rows: int = 0
    max_rows_per_call: int = 0
    prompt_tokens: int = 0  # once a prompt, as in usage (not once a row)
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
        """Stop: the running batch ends at its next step (its requests get a 503), queued requests get a 503."""
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs (and the server is not shutting down)."""
        return self._thread is not None and self._thread.is_alive() and not self._closing.is_set()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing.is_set() or self._thread is None:
                raise APIError(503, "The server is shutting down.", code="shutting_down")
            if not self._thread.is_alive():
                raise APIError(503, "The server cannot generate (its generation worker stopped).", code="unavailable")
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
            job.arrived = time.monotonic()
            self._queue.append(job)
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        """The client is gone: a queued job leaves the queue, a running one stops at the next step."""
        with self._cond:
            if not job.cancelled and not job.resolved:
                self.stats.cancelled += 1
                try:
                    self._queue.remove(job)
                except ValueError:  # running (or not queued yet)
                    pass
                self._cond.notify_all()
            job.cancelled = True

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
        if any(job.cancelled for job in self._queue):  # (cancel() removes them: this is a safety net)
            self._queue = deque(job for job in self._queue if not job.cancelled)
        if not self._queue:
            return []
        first = self._queue[0]
        batch = [first]
        if not first.alone:
            rows, longest_prompt, longest_reply = len(first.rows), first.max_prompt, first.max_tokens
            for job in list(self._queue)[1:]:
                if job.alone or _bucket(job.max_tokens) != _bucket(first.max_tokens):
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

    def _gathering(self) -> float:
        """Seconds left to wait for company (lock held): a burst of requests is still arriving while they come less
        than batch_wait apart; stop at a quiet gap, a full batch, or 10 x batch_wait after the oldest arrived."""
        queue = self._queue
        if not queue or queue[0].alone or sum(len(j.rows) for j in queue) >= self.max_batch_size:
            return 0.0
        deadline = min(queue[-1].arrived + self.batch_wait, queue[0].arrived + 10 * self.batch_wait)
        return deadline - time.monotonic()

    def _work(self) -> None:
        try:
            while True:
                batch: list[Job] = []
                try:
                    with self._cond:
                        while not self._queue and not self._closing.is_set():
                            self._cond.wait()
                        while not self._closing.is_set() and (left := self._gathering()) > 0:
                            self._cond.wait(left)
                        if self._closing.is_set():
                            return
                        batch = self._pick()
                        self._running = len(batch)
                    if batch:
                        self._run(batch)
                except Exception:  # a bug outside generate: answer the requests at hand, keep the worker alive
                    logger.exception("the generation worker failed (it goes on)")
                    with self._cond:
                        if not batch and self._queue:
                            batch = [self._queue.popleft()]
                    self._fail(batch)
                finally:
                    with self._cond:
                        self._running = 0
        finally:
            with self._cond:
                pending, self._queue = list(self._queue), deque()
            if self._closing.is_set():
                error = {"message": "The server is shutting down.", "code": "shutting_down"}
            else:
                logger.error("the generation worker stopped: the server answers 503 to every request")
                error = {
                    "message": "The server cannot generate (its generation worker stopped).",
                    "code": "unavailable",
                }
            for job in pending:
                job.resolve(APIError(503, **error))

    def _fail(self, jobs: list[Job]) -> None:
        """Answer the jobs not answered yet with a generic 500 (the traceback is in the log, not in the reply)."""
        unresolved = [job for job in jobs if not job.resolved]
        with self._cond:
            self.stats.failed += len(unresolved)
        for job in unresolved:
            job.resolve(APIError(500, _GENERIC_500, code="generation_error"))

    def _run(self, batch: list[Job]) -> None:
        import torch

        served = self.served
        rows = [row for job in batch for row in job.rows]
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                width = max(len(r.prompt_ids) for r in rows)
                input_ids = torch.full((len(rows), width), served.pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, row in enumerate(rows):
                    input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
                    mask[i, width - len(row.prompt_ids) :] = 1
                # a seeded job runs alone: its seed; else any (one generator for the whole batch)
                seed = batch[0].seed if batch[0].alone else random.getrandbits(63)
                generator = torch.Generator().manual_seed(seed % 2**64)
                sampler_class, tracker_class = self._classes
                sampler = sampler_class(rows, served.vocab_size, served.device, generator)
                tracker = tracker_class(rows, sampler, served, self._closing)
                served.model.generate(
                    input_ids=input_ids.to(served.device),
                    attention_mask=mask.to(served.device),
                    max_new_tokens=max(r.max_tokens for r in rows),
                    do_sample=False,
                    logits_processor=[sampler],
                    stopping_criteria=[tracker],
                    pad_token_id=served.pad_id,
                )
                tracker.flush(final=True)
        except Exception:  # a failed batch must not kill the worker: answer its requests with a 500
            logger.exception("generation failed for a batch of %d rows (%d requests)", len(rows), len(batch))
            self._fail(batch)
        finally:
            elapsed = time.perf_counter() - start
            with self._cond:
                s = self.stats
                s.generate_calls += 1
                s.rows += len(rows)
                s.max_rows_per_call = max(s.max_rows_per_call, len(rows))
                s.generate_seconds += elapsed
                s.prompt_tokens += sum(job.prompt_tokens for job in batch)
                s.completion_tokens += sum(r.generated for r in rows)


# -- request parsing ----------------------------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise APIError(
        400,
        f"The request body holds {name}, which is not valid JSON: parameters must be finite numbers.",
        code="invalid_json",
    )


def load_body(raw: bytes) -> Any:
    """The JSON of a request body; ``NaN``, ``Infinity`` and ``-Infinity`` (Python's extensions) are refused."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"The request body is not valid JSON: {e}", code="invalid_json") from None
    except RecursionError:
        raise APIError(400, "The request body is nested too deeply.", code="invalid_json") from None


def _number(body: dict, name: str, default, low=None, high=None, integer=False, low_open=False):
    value = body.get(name)
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise _bad(f"{name} must be {kind}, got {json.dumps(value)}", name, "invalid_type")
    if not math.isfinite(value):  # 1e999 is read as infinity
        raise _bad(f"{name} must be a finite number, got {value}", name)
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


def _is_ids(value: Any) -> bool:
    return (
        isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def _prompt_list(body: dict) -> list[str | list[int]]:
    """The prompts of a completion request (a string, strings, token ids or lists of them), not tokenized yet."""
    prompt = body.get("prompt")
    if prompt is None:
        raise _bad("prompt is required (a string, a list of strings or token ids)", "prompt", "missing")
    if isinstance(prompt, str) or _is_ids(prompt):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt or not all(isinstance(p, str) or _is_ids(p) for p in prompt):
        raise _bad("prompt must be a string, a list of strings or token ids", "prompt", "invalid_type")
    return prompt


def _tokenized(prompt: str | list[int], served: ServedModel) -> tuple[list[int], str]:
    if isinstance(prompt, str):
        return served.encode(prompt), prompt
    if not all(0 <= t < served.vocab_size for t in prompt):
        raise _bad(f"prompt token ids must be in [0, {served.vocab_size})", "prompt")
    return list(prompt), served.decode(prompt)


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


def _reply_context(ids: list[int], served: ServedModel) -> tuple[list[int], str]:
    """The prompt's last tokens a reply is decoded after, and their text (none if it ends inside a character)."""
    context = ids[-CONTEXT_TOKENS:]
    text = served.decode(context)
    return (context, text) if not text.endswith("\ufffd") else ([], "")


def parse_request(body: Any, kind: str, served: ServedModel) -> Job:
    """Validate an OpenAI request body and tokenize its prompts; returns its Job (not attached to an event loop
    yet) or raises ``APIError`` naming the bad parameter. Runs in a worker thread: it may tokenize long texts."""
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
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise _bad("stream_options must be an object", "stream_options", "invalid_type")
    extra: dict[str, Any] = {"echo": False, "include_usage": bool(stream_options.get("include_usage"))}
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
        raw_prompts = _prompt_list(body)
        if n * len(raw_prompts) > MAX_CHOICES:  # before tokenizing them
            raise _bad(f"n x prompts must be at most {MAX_CHOICES}, got {n * len(raw_prompts)}", "n")
        prompts = []
        for p in raw_prompts:
            ids, text = _tokenized(p, served)
            prompts.append((_fit(ids, max_tokens, served, "prompt"), text))
        extra["echo"] = echo
    extra["prompts"] = [text for _, text in prompts]
    extra["prompt_tokens"] = sum(len(ids) for ids, _ in prompts)
    specs = []
    for p, (ids, _) in enumerate(prompts):
        context, context_text = _reply_context(ids, served)
        for j in range(n):
            specs.append(
                {
                    "index": p * n + j,
                    "prompt_ids": ids,
                    "context": context,
                    "context_text": context_text,
                    "temperature": temperature,
                    "top_p": top_p,
                    "max_tokens": max_tokens,
                    "stops": stops,
                    "logprobs": logprobs,
                    "presence_penalty": presence,
                    "frequency_penalty": frequency,
                    "logit_bias": bias,
                }
            )
    return Job(kind, specs, stream=stream, seed=seed, extra=extra)


def parse_body(raw: bytes, kind: str, served: ServedModel) -> Job:
    """``parse_request`` of a raw request body."""
    return parse_request(load_body(raw), kind, served)


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
    prompt = job.prompt_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _fingerprint() -> str:
    from .. import __version__

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


async def stream_events(job: Job, served: ServedModel, request_id: str, created: int, on_close=None):
    """Server-sent events of a streamed request, in OpenAI's chunk format, ending with ``data: [DONE]``.

    With ``stream_options.include_usage`` every chunk has ``"usage": null`` and a last chunk (no choices) the usage,
    as OpenAI. ``on_close(job)`` runs when the stream ends, finished or not (the client may be gone).
    """
    chat = job.kind == "chat"
    n = len(job.rows) // max(1, len(job.extra["prompts"]))
    include_usage = job.extra["include_usage"]

    def chunk(choices: list, usage: dict | None = None) -> str:
        body = {
            "id": request_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": served.name,
            "system_fingerprint": _fingerprint(),
            "choices": choices,
        }
        if include_usage:
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
                    logprobs = _legacy_logprobs(served, entries, 0) if row.logprobs is not None else None
                    choices.append({"index": row.index, "text": text, "logprobs": logprobs, "finish_reason": finish})
            if choices:
                yield chunk(choices)
        if include_usage:
            yield chunk([], usage=_usage(job))
        yield "data: [DONE]\n\n"
    finally:
        if on_close is not None:
            on_close(job)  # nothing left to send: a still running row stops at the next step


# -- the application ----------------------------------------------------------------------------------------------


def _require_serve_dependencies() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"tinystories serve needs FastAPI and uvicorn ({e.name} is missing): {SERVE_EXTRA_HINT}"
        ) from e


async def _disconnected(receive) -> None:
    """Returns when the client of a request whose body was read closes its connection."""
    while True:
        message = await receive()  # (uvicorn: blocks until the client disconnects or the response is sent)
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(0.05)  # (a server that answers at once: poll)


class _RequireAPIKey:
    """ASGI middleware: a ``/v1/...`` request without ``Authorization: Bearer <key>`` gets a 401 (OpenAI's shape)."""

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope["path"] == "/v1" or scope["path"].startswith("/v1/")):
            authorization = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = authorization.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
                from fastapi.responses import JSONResponse

                error = APIError(
                    401,
                    "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' with the key the "
                    "server was started with.",
                    code="invalid_api_key",
                )
                response = JSONResponse(error.body(), status_code=401, headers={"www-authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(model: str | None = None, *, settings: ServeSettings | None = None, **kwargs: Any):
    """The FastAPI application serving ``model`` (a folder or a Hub id); ``kwargs`` are ``ServeSettings`` fields.

    The model loads here; the generation worker starts and stops with the application's lifespan.
    """
    _require_serve_dependencies()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool
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
    if settings.api_key:
        app.add_middleware(_RequireAPIKey, key=settings.api_key)

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        status = error.status_code
        message = {404: f"Unknown endpoint {request.method} {request.url.path}"}.get(status, str(error.detail))
        return JSONResponse(APIError(status, message).body(), status_code=status, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):  # the traceback is logged by the server
        return JSONResponse(APIError(500, "The server had an internal error.").body(), status_code=500)

    def model_card() -> dict[str, Any]:
        return {
            "id": served.name,
            "object": "model",
            "created": served.created,
            "owned_by": "tinystories",
            "root": served.name,  # (never the folder's path)
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
        body = {
            "status": "ok" if scheduler.alive else "unhealthy",
            "model": served.name,
            "context": served.context,
            "max_batch_size": settings.max_batch_size,
            "max_queue": settings.max_queue,
            "stats": scheduler.snapshot(),
        }
        return body if scheduler.alive else JSONResponse(body, status_code=503)

    async def handle(request: Request, kind: str):
        raw = await request.body()
        job = await run_in_threadpool(parse_body, raw, kind, served)  # JSON, checks, tokenization: off the loop
        job.attach(asyncio.get_running_loop())
        request_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        scheduler.submit(job)
        if job.stream:
            return StreamingResponse(
                stream_events(job, served, request_id, created, on_close=scheduler.cancel),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        # Starlette does not cancel a handler whose client left: watch the connection while waiting
        watcher = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            scheduler.cancel(job)
            raise
        finally:
            watcher.cancel()
        if not job.future.done():  # the client is gone: nobody reads the reply
            scheduler.cancel(job)
            logger.info("%s: the client disconnected, request cancelled", request_id)
            return Response(status_code=499)
        job.future.result()  # raises the request's APIError
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(settings: ServeSettings) -> None:
    """Log a warning when the server listens beyond this machine without an API key (the key itself is never
    logged)."""
    if settings.api_key:
        logger.info("Requests to /v1/... need the API key (Authorization: Bearer <key>)")
    elif not _is_loopback(settings.host):
        logger.warning(
            "Listening on %s, which is not a loopback address, without an API key: anyone who can reach this port "
            "can use the model. Set --api_key or the environment variable %s.",
            settings.host,
            API_KEY_ENV,
        )


def parse_args(argv: list[str]) -> ServeSettings:
    defaults = ServeSettings(model="", api_key="")
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
    parser.add_argument(
        "--api_key",
        help=f"Require 'Authorization: Bearer KEY' on /v1/... requests (default: ${API_KEY_ENV}, else no key). "
        f"Prefer the environment variable: a command line is visible to the machine's other users.",
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
    warn_if_exposed(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=5)
