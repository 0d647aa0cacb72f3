"""What the worker runs: a ``Job`` is one HTTP request, a ``Row`` one of its choices (``n`` choices of every
prompt), with its sampling parameters and its decoding state; ``ChoiceDelta`` is what a stream sends of a row."""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from .api_errors import APIError
from .detokenizer import Detokenizer
from .logprobs import TokenLogprob


@dataclass(frozen=True)
class SamplingParams:
    """A row's parameters; ``logprobs``: top alternatives to return a token (0: only the chosen token's logprob),
    None: no logprobs."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stops: tuple[str, ...] = ()
    logprobs: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)


@dataclass(eq=False)
class Prompt:
    """A prompt as it runs: its token ids, its text (what ``echo`` returns) and, for ``echo`` with ``logprobs``, the
    logprobs of its tokens (set by the worker before generating)."""

    ids: list[int]
    text: str
    logprobs: list[TokenLogprob] | None = None


@dataclass(eq=False)
class ChoiceDelta:
    """New text of a choice for a stream chunk, with its logprob entries (offsets: add ``offset_base``)."""

    index: int
    text: str
    logprobs: list[TokenLogprob] | None  # None: the request asked for no logprobs
    finish_reason: str | None
    offset_base: int = 0


class Row:
    """One choice being generated: what it has produced so far, its text, its logprob entries.

    Text is decoded incrementally (a short window of tokens each step) only when it is needed while generating:
    for a streamed request or a stop string. Other rows are decoded once, when they finish. State is written by the
    worker thread only.
    """

    def __init__(
        self, job: "Job", index: int, prompt: Prompt, params: SamplingParams, detokenizer: Detokenizer, eos_ids
    ):
        self.job, self.index, self.prompt, self.params = job, index, prompt, params
        self.detokenizer, self.eos_ids = detokenizer, eos_ids
        self.entries: list[TokenLogprob] = []  # one a generated token, a final EOS too
        self.generated = 0  # generated tokens, a final EOS included (what completion_tokens counts)
        self.finish_reason: str | None = None
        self.text = ""
        self.cut: int | None = None  # the text ends here (a stop string starts here)
        self.finalized = False
        self.sent_chars = self.sent_entries = 0
        self.incremental = job.stream or bool(params.stops)
        self._longest_stop = max((len(s) for s in params.stops), default=0)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def offset_base(self) -> int:
        """Where the reply starts in the choice's text: after the prompt with ``echo``."""
        return len(self.prompt.text) if self.job.echo else 0

    def add(self, token_id: int, entry: TokenLogprob | None) -> None:
        """Append a generated token; sets ``finish_reason`` at EOS, at a stop string or at ``max_tokens``."""
        self.generated += 1
        if entry is not None:
            entry.offset = len(self.text)
            self.entries.append(entry)
        if token_id in self.eos_ids:
            self.finish_reason = "stop"
            return
        start = len(self.detokenizer.text)
        self.detokenizer.append(token_id, decode=self.incremental)
        if self.incremental:
            self.text = self.detokenizer.text
            if self.params.stops and len(self.text) > start:
                since = max(0, start - self._longest_stop + 1)
                found = [i for i in (self.text.find(s, since) for s in self.params.stops) if i >= 0]
                if found:
                    self.cut = min(found)
                    self.finish_reason = "stop"
                    return
        if self.generated >= self.params.max_tokens:
            self.finish_reason = "length"

    def finalize(self) -> None:
        """The final text (cut before a stop string, or decoded whole) and the entries' offsets in it."""
        self.finalized = True
        if self.cut is not None:
            self.text = self.text[: self.cut]
        else:
            offsets = self.detokenizer.offsets() if self.entries and not self.incremental else None
            self.text = self.detokenizer.final_text()
            if offsets is not None:
                offsets.append(len(self.text))  # a final EOS: at the end
                for k, entry in enumerate(self.entries):
                    entry.offset = offsets[min(k, len(offsets) - 1)]
        end = len(self.text)
        for entry in self.entries:
            entry.offset = min(entry.offset, end)

    def delta(self, final: bool) -> ChoiceDelta:
        """Text and logprob entries not yet streamed; short of a possible stop string's start unless ``final``."""
        limit = len(self.text)
        if not final and self.params.stops:
            limit = max(self.sent_chars, limit - self._longest_stop + 1)
        text = self.text[self.sent_chars : limit]
        upto = self.sent_entries
        if final:
            upto = len(self.entries)
        else:
            while upto < len(self.entries) and self.entries[upto].offset < limit:
                upto += 1
        entries = self.entries[self.sent_entries : upto]
        self.sent_chars, self.sent_entries = max(self.sent_chars, limit), upto
        logprobs = entries if self.params.logprobs is not None else None
        finish = self.finish_reason if final else None
        return ChoiceDelta(self.index, text, logprobs, finish, self.offset_base)

    def echo_delta(self) -> ChoiceDelta:
        """A stream's first chunk with ``echo``: the prompt, and its logprobs if asked for."""
        logprobs = (self.prompt.logprobs or []) if self.params.logprobs is not None else None
        return ChoiceDelta(self.index, self.prompt.text, logprobs, None, 0)


class Job:
    """One HTTP request: its rows, and how results reach the event loop (a future, or an event queue to stream).

    Built in a worker thread of the event loop's pool (``jobs.build_job``); ``attach`` (on the event loop)
    creates its future or queue.
    """

    def __init__(self, kind: str, stream: bool, seed: int | None, echo: bool = False, include_usage: bool = False):
        self.kind = kind  # "completion" or "chat"
        self.stream, self.seed, self.echo, self.include_usage = stream, seed, echo, include_usage
        self.alone = seed is not None
        self.rows: list[Row] = []
        self.prompts: list[Prompt] = []
        self.cancelled = False  # the client is gone: stop at the next step
        self.resolved = False  # answered (set by the worker thread)
        self.arrived = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future | None = None
        self.events: asyncio.Queue | None = None

    @cached_property
    def max_tokens(self) -> int:
        return max(r.params.max_tokens for r in self.rows)

    @cached_property
    def max_prompt(self) -> int:
        return max(len(r.prompt.ids) for r in self.rows)

    @property
    def prompt_tokens(self) -> int:
        """Once a prompt, as in usage (not once a row)."""
        return sum(len(p.ids) for p in self.prompts)

    @property
    def completion_tokens(self) -> int:
        return sum(r.generated for r in self.rows)

    @property
    def wants_prompt_logprobs(self) -> bool:
        return self.echo and any(r.params.logprobs is not None for r in self.rows)

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

    def publish(self, deltas: list[ChoiceDelta]) -> None:
        if self.stream and deltas:
            self._call(self.events.put_nowait, deltas)

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
