"""Strict test-side models of OpenAI's replies, written to the published OpenAPI schema (openai/openai-openapi,
``openapi.yaml``, ``components.schemas``): a field the schema lists as required has no default here, so a reply
that leaves it out fails validation, even when it is nullable (then it is typed ``X | None`` and still required).
Extra fields are allowed, as in the schema. The openai SDK's own types are too lenient for this (they default
``refusal`` to None, for one).

Components followed:
- ``CreateCompletionResponse``: required id, object, created, model, choices; a choice requires finish_reason,
  index, logprobs (nullable), text. The logprobs object lists no required fields; these models require its four
  lists (tokens, token_logprobs, top_logprobs, text_offset), which lm-evaluation-harness reads. A stream of
  completions sends this same shape, with ``finish_reason`` null before a choice's last chunk (typed so here).
- ``CreateChatCompletionResponse``: required choices, created, id, model, object; a choice requires
  finish_reason, index, message, logprobs (nullable); the logprobs object requires content and refusal (both
  nullable).
- ``ChatCompletionResponseMessage``: required role, content, refusal (content and refusal nullable).
- ``ChatCompletionTokenLogprob``: required token, logprob, bytes (nullable), top_logprobs, whose items require
  token, logprob, bytes.
- ``CreateChatCompletionStreamResponse``: required choices, created, id, model, object; a choice requires delta,
  finish_reason (nullable), index; its optional logprobs, when an object, requires content and refusal; ``usage``
  is a nullable ``CompletionUsage``. ``ChatCompletionStreamResponseDelta`` requires nothing.
- ``CompletionUsage``: required prompt_tokens, completion_tokens, total_tokens.
- ``ErrorResponse``: required error, an ``Error``: required type, message, param (nullable), code (nullable).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class CompletionUsage(_Strict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionLogprobs(_Strict):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(_Strict):
    finish_reason: Literal["stop", "length", "content_filter"]
    index: int
    logprobs: CompletionLogprobs | None
    text: str


class CreateCompletionResponse(_Strict):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None  # not required by the schema (this server always sends it)


class CompletionStreamChoice(CompletionChoice):
    finish_reason: Literal["stop", "length", "content_filter"] | None


class CompletionStreamChunk(CreateCompletionResponse):
    choices: list[CompletionStreamChoice]


class TopLogprob(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatCompletionTokenLogprob(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChatChoiceLogprobs(_Strict):
    content: list[ChatCompletionTokenLogprob] | None
    refusal: list[ChatCompletionTokenLogprob] | None


class ChatCompletionResponseMessage(_Strict):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None


class ChatChoice(_Strict):
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
    index: int
    message: ChatCompletionResponseMessage
    logprobs: ChatChoiceLogprobs | None


class CreateChatCompletionResponse(_Strict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage | None = None


class ChatCompletionStreamResponseDelta(_Strict):
    content: str | None = None
    refusal: str | None = None
    role: Literal["developer", "system", "user", "assistant", "tool"] | None = None


class ChatStreamChoice(_Strict):
    delta: ChatCompletionStreamResponseDelta
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None
    index: int
    logprobs: ChatChoiceLogprobs | None = None


class CreateChatCompletionStreamResponse(_Strict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatStreamChoice]
    usage: CompletionUsage | None = None


class Error(_Strict):
    type: str
    message: str
    param: str | None
    code: str | None


class ErrorResponse(_Strict):
    error: Error
