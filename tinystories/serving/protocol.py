"""OpenAI's API as pydantic models: the requests this server accepts (validated: types, ranges, unsupported
parameters) and the replies it sends (completions, chat completions, their stream chunks, models, errors).

Field names, nesting and nullability follow OpenAI's published OpenAPI schema (``CreateCompletionRequest``,
``CreateChatCompletionResponse``, ...). Requests ignore parameters they do not know (SDKs send ``user``,
``metadata``, ...); numbers are strict (``"1.5"`` and ``true`` are not numbers) and finite.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    WrapValidator,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_LOGPROBS = 20  # top logprobs a token, as OpenAI
MAX_CHOICES = 128  # rows (n x prompts) a request
MAX_STOPS = 16
#: The message roles a chat request may use (``ServedModel.chat_prompt`` formats each of them).
Role = Literal["system", "developer", "user", "assistant", "tool"]


def _number(low: float | None = None, high: float | None = None, gt: float | None = None):
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high, gt=gt)]


def _integer(low: int | None = None, high: int | None = None):
    return Annotated[int, Field(strict=True, ge=low, le=high)]


def _one_message(message: str, code: str = "invalid_type") -> WrapValidator:
    """One clear error for a union field instead of pydantic's one error per member of the union."""

    def validate(value, handler):
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(code, message) from None

    return WrapValidator(validate)


def _unsupported(name: str, message: str | None = None) -> PydanticCustomError:
    return PydanticCustomError(
        "unsupported_parameter", message or "{param} is not supported by this server", {"param": name}
    )


TokenIds = Annotated[list[StrictInt], Field(min_length=1)]
Prompt = Annotated[
    StrictStr | TokenIds | Annotated[list[StrictStr | TokenIds], Field(min_length=1)],
    _one_message("must be a string, a list of strings, token ids (a list of integers) or a list of them"),
]
Stop = Annotated[StrictStr | list[StrictStr], _one_message("must be a string or a list of strings")]


class StreamOptions(BaseModel):
    include_usage: StrictBool | None = None


class _Request(BaseModel):
    """What completions and chat completions share: sampling parameters, streaming, the model's name."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    n: _integer(1, MAX_CHOICES) | None = None
    best_of: _integer(1, MAX_CHOICES) | None = None
    temperature: _number(0, 2) | None = None
    top_p: _number(high=1, gt=0) | None = None
    presence_penalty: _number(-2, 2) | None = None
    frequency_penalty: _number(-2, 2) | None = None
    seed: _integer(-(2**63), 2**64 - 1) | None = None
    stop: Stop | None = None
    logit_bias: dict[str, _number(-100, 100)] | None = None
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop):
        stops = [s for s in ([stop] if isinstance(stop, str) else stop or []) if s]
        if len(stops) > MAX_STOPS:
            raise PydanticCustomError(
                "invalid_value",
                "may hold at most {limit} strings, got {count}",
                {"limit": MAX_STOPS, "count": len(stops)},
            )
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, bias):
        for key in bias or {}:
            if not key.lstrip("-").isdigit():
                raise PydanticCustomError("invalid_value", "keys must be token ids, got '{key}'", {"key": key})
        return bias

    @model_validator(mode="after")
    def _best_of_is_n(self):
        if self.best_of is not None and self.best_of != (self.n or 1):
            raise _unsupported("best_of", "best_of other than n is not supported by this server")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Request):
    """``POST /v1/completions`` (OpenAI's ``CreateCompletionRequest``)."""

    prompt: Prompt
    max_tokens: _integer(1) | None = None
    logprobs: _integer(0, MAX_LOGPROBS) | None = None
    echo: StrictBool | None = None
    suffix: Any = None

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value):
        if value is not None:
            raise _unsupported("suffix")
        return value

    @property
    def prompts(self) -> list[str | list[int]]:
        """The prompts, one a row group: a string or token ids each."""
        prompt = self.prompt
        if isinstance(prompt, str) or isinstance(prompt[0], int):
            return [prompt]
        return list(prompt)

    @model_validator(mode="after")
    def _rows_fit(self):
        rows = (self.n or 1) * len(self.prompts)
        if rows > MAX_CHOICES:  # before the prompts are tokenized
            raise PydanticCustomError(
                "invalid_value",
                "n x prompts must be at most {limit}, got {rows}",
                {"param": "n", "limit": MAX_CHOICES, "rows": rows},
            )
        return self


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


MessageContent = Annotated[
    StrictStr | list[TextPart], _one_message("must be a string or a list of text parts (only text is supported)")
]


class ChatMessage(BaseModel):
    role: Role
    content: MessageContent | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(_Request):
    """``POST /v1/chat/completions`` (OpenAI's ``CreateChatCompletionRequest``)."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: _integer(1) | None = None
    max_completion_tokens: _integer(1) | None = None
    logprobs: StrictBool | None = None
    top_logprobs: _integer(0, MAX_LOGPROBS) | None = None
    tools: Any = None
    functions: Any = None
    tool_choice: Any = None
    response_format: Any = None

    @field_validator("tools", "functions", "tool_choice", "response_format")
    @classmethod
    def _unsupported_features(cls, value, info):
        fine = {"tools": [], "functions": [], "tool_choice": "none", "response_format": {"type": "text"}}
        if value is not None and value != fine[info.field_name]:
            if info.field_name == "response_format":
                raise _unsupported(info.field_name, "only {'type': 'text'} is supported by this server")
            raise _unsupported(info.field_name)
        return value

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self):
        if self.top_logprobs is not None and not self.logprobs:
            raise PydanticCustomError(
                "invalid_value", "top_logprobs requires logprobs: true", {"param": "top_logprobs"}
            )
        return self

    @property
    def reply_limit(self) -> int | None:
        """``max_tokens`` (the older name wins, as before), else ``max_completion_tokens``."""
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens


# -- replies -------------------------------------------------------------------------------------------------------

FinishReason = Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionLogprobs(BaseModel):
    """The legacy logprobs of a completion choice; with ``echo`` the first prompt token has ``null`` entries."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: FinishReason | None  # null in a stream chunk before the choice's last


class CompletionResponse(BaseModel):
    """A completion (``CreateCompletionResponse``); a stream chunk has the same shape."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[ChatTokenLogprob] | None
    refusal: list[ChatTokenLogprob] | None = None


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: ChatLogprobs | None
    finish_reason: FinishReason


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    """A stream chunk's delta: only the fields given are sent (``{}`` in a choice's last chunk)."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class ChatStreamChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatStreamChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "tinystories"
    root: str
    max_model_len: int


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
