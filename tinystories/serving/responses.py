"""Replies: the body of a finished job (a completion or a chat completion), and the server-sent events of a streamed
one, in OpenAI's chunk format ending with ``data: [DONE]``."""

import json
from collections.abc import AsyncIterator, Callable

from .. import __version__
from .api_errors import APIError
from .logprobs import TokenLogprob
from .protocol import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatDelta,
    ChatLogprobs,
    ChatMessageOut,
    ChatStreamChoice,
    ChatTokenLogprob,
    CompletionChoice,
    CompletionLogprobs,
    CompletionResponse,
    TopLogprob,
    Usage,
)
from .rows import ChoiceDelta, Job
from .served_model import ServedModel

FINGERPRINT = f"tinystories-{__version__}"


def legacy_logprobs(served: ServedModel, entries: list[TokenLogprob], base: int = 0) -> CompletionLogprobs:
    """Completions' logprobs: token texts, their logprobs, the top alternatives by text, where each token starts."""
    text = served.token_text
    return CompletionLogprobs(
        tokens=[text(e.token_id) for e in entries],
        token_logprobs=[e.logprob for e in entries],
        top_logprobs=[None if e.top is None else {text(t): lp for t, lp in e.top.items()} for e in entries],
        text_offset=[base + e.offset for e in entries],
    )


def chat_logprobs(served: ServedModel, entries: list[TokenLogprob]) -> ChatLogprobs:
    """Chat logprobs: ``content[j] = {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}``."""

    def top(token_id: int, logprob: float) -> TopLogprob:
        return TopLogprob(token=served.token_text(token_id), logprob=logprob, bytes=served.token_bytes(token_id))

    content = [
        ChatTokenLogprob(
            token=served.token_text(e.token_id),
            logprob=e.logprob,
            bytes=served.token_bytes(e.token_id),
            top_logprobs=[top(t, lp) for t, lp in (e.top or {}).items()],
        )
        for e in entries
    ]
    return ChatLogprobs(content=content, refusal=None)


def usage(job: Job) -> Usage:
    prompt, completion = job.prompt_tokens, job.completion_tokens
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def completion_body(job: Job, served: ServedModel, request_id: str, created: int):
    """The reply to a finished, non-streamed job."""
    common = {"id": request_id, "created": created, "model": served.name, "system_fingerprint": FINGERPRINT}
    if job.kind == "chat":
        choices = [
            ChatChoice(
                index=row.index,
                message=ChatMessageOut(content=row.text, refusal=None),
                logprobs=chat_logprobs(served, row.entries) if row.params.logprobs is not None else None,
                finish_reason=row.finish_reason,
            )
            for row in job.rows
        ]
        return ChatCompletionResponse(**common, choices=choices, usage=usage(job))
    choices = []
    for row in job.rows:
        logprobs = None
        if row.params.logprobs is not None:
            entries = (row.prompt.logprobs or []) if job.echo else []
            logprobs = legacy_logprobs(served, entries)
            generated = legacy_logprobs(served, row.entries, row.offset_base)
            for name in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
                getattr(logprobs, name).extend(getattr(generated, name))
        text = row.prompt.text + row.text if job.echo else row.text
        choices.append(
            CompletionChoice(index=row.index, text=text, logprobs=logprobs, finish_reason=row.finish_reason)
        )
    return CompletionResponse(**common, choices=choices, usage=usage(job))


def _chunk_choice(job: Job, served: ServedModel, delta: ChoiceDelta):
    if job.kind == "chat":
        logprobs = chat_logprobs(served, delta.logprobs) if delta.logprobs is not None else None
        message = ChatDelta(content=delta.text) if delta.text or delta.finish_reason is None else ChatDelta()
        return ChatStreamChoice(index=delta.index, delta=message, logprobs=logprobs, finish_reason=delta.finish_reason)
    logprobs = legacy_logprobs(served, delta.logprobs, delta.offset_base) if delta.logprobs is not None else None
    return CompletionChoice(index=delta.index, text=delta.text, logprobs=logprobs, finish_reason=delta.finish_reason)


async def stream_events(
    job: Job, served: ServedModel, request_id: str, created: int, on_close: Callable[[Job], None] | None = None
) -> AsyncIterator[str]:
    """Server-sent events of a streamed job.

    Chat starts with a chunk of ``{"role": "assistant", "content": "", "refusal": null}`` deltas; ``echo`` sends the
    prompt (and its logprobs) first. With ``stream_options.include_usage`` every chunk has ``"usage": null`` and a
    last chunk (no choices) the usage, as OpenAI. ``on_close(job)`` runs when the stream ends, finished or not
    (the client may be gone).
    """
    chunk_class = ChatCompletionChunk if job.kind == "chat" else CompletionResponse
    exclude = None if job.include_usage else {"usage"}

    def event(choices: list, usage_: Usage | None = None) -> str:
        chunk = chunk_class(
            id=request_id,
            created=created,
            model=served.name,
            system_fingerprint=FINGERPRINT,
            choices=choices,
            usage=usage_,
        )
        return f"data: {chunk.model_dump_json(exclude=exclude)}\n\n"

    try:
        if job.kind == "chat":
            first = ChatDelta(role="assistant", content="", refusal=None)
            yield event([ChatStreamChoice(index=row.index, delta=first) for row in job.rows])
        while True:
            deltas = await job.events.get()
            if deltas is None:
                break
            if isinstance(deltas, APIError):
                yield f"data: {json.dumps(deltas.body())}\n\n"
                break
            yield event([_chunk_choice(job, served, delta) for delta in deltas])
        if job.include_usage:
            yield event([], usage(job))
        yield "data: [DONE]\n\n"
    finally:
        if on_close is not None:
            on_close(job)  # nothing left to send: a still running row stops at the next step
