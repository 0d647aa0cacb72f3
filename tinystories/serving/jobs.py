"""From a request body to a ``Job``: strict JSON, the protocol's validation, then what needs the model (its name,
the vocabulary, the context length, tokenizing the prompts). Runs in a worker thread of the event loop's pool: a long
prompt never holds up other clients."""

from pydantic import ValidationError

from .api_errors import APIError, bad_request, from_validation_errors, read_json
from .detokenizer import Detokenizer, reply_context
from .protocol import ChatCompletionRequest, CompletionRequest
from .rows import Job, Prompt, Row, SamplingParams
from .served_model import ServedModel

DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default max_tokens for completions


def _fit(ids: list[int], max_tokens: int, served: ServedModel, param: str) -> list[int]:
    """The prompt's ids within the context with room for ``max_tokens`` (truncated from the left if allowed)."""
    context = served.context
    if max_tokens >= context:
        raise bad_request(
            f"max_tokens={max_tokens} leaves no room for the prompt: this model's context is {context} tokens",
            "max_tokens",
        )
    if len(ids) + max_tokens > context:
        if served.settings.truncate_prompts:
            return ids[len(ids) + max_tokens - context :]
        raise bad_request(
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{len(ids) + max_tokens} tokens ({len(ids)} in the {param}, {max_tokens} in the completion). "
            f"Please reduce the length of the {param} or max_tokens.",
            param,
            "context_length_exceeded",
        )
    return ids


def _logit_bias(bias: dict[str, float] | None, vocab_size: int) -> dict[int, float]:
    out = {}
    for key, value in (bias or {}).items():
        token = int(key)
        if not 0 <= token < vocab_size:
            raise bad_request(f"logit_bias token id {token} is outside the vocabulary [0, {vocab_size})", "logit_bias")
        out[token] = value
    return out


def _params(request, served: ServedModel, max_tokens: int, logprobs: int | None, stops: list[str]) -> SamplingParams:
    return SamplingParams(
        temperature=request.temperature if request.temperature is not None else 1.0,
        top_p=request.top_p if request.top_p is not None else 1.0,
        max_tokens=max_tokens,
        stops=tuple(stops),
        logprobs=logprobs,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        logit_bias=_logit_bias(request.logit_bias, served.vocab_size),
    )


def _completion_prompt(prompt: str | list[int], max_tokens: int, served: ServedModel) -> Prompt:
    if isinstance(prompt, str):
        ids, text = served.encode(prompt), prompt
    else:
        if not all(0 <= t < served.vocab_size for t in prompt):
            raise bad_request(f"prompt token ids must be in [0, {served.vocab_size})", "prompt")
        ids, text = list(prompt), None
    fitted = _fit(ids, max_tokens, served, "prompt")
    if text is None or len(fitted) < len(ids):  # token ids, or a truncated prompt: the text of what runs
        text = served.decode(fitted)
    return Prompt(fitted, text)


def _job(kind: str, request, prompts: list[Prompt], params: SamplingParams, served: ServedModel, echo=False) -> Job:
    job = Job(kind, stream=bool(request.stream), seed=request.seed, echo=echo, include_usage=request.include_usage)
    job.prompts = prompts
    n = request.n or 1
    for p, prompt in enumerate(prompts):
        context, context_text = reply_context(prompt.ids, served.decode)
        for j in range(n):
            detokenizer = Detokenizer(served.decode, context, context_text)
            job.rows.append(Row(job, p * n + j, prompt, params, detokenizer, served.eos_ids))
    return job


def completion_job(request: CompletionRequest, served: ServedModel) -> Job:
    max_tokens = request.max_tokens or DEFAULT_COMPLETION_TOKENS
    params = _params(request, served, max_tokens, request.logprobs, request.stop or [])
    prompts = [_completion_prompt(p, max_tokens, served) for p in request.prompts]
    return _job("completion", request, prompts, params, served, echo=bool(request.echo))


def chat_job(request: ChatCompletionRequest, served: ServedModel) -> Job:
    messages = [{"role": m.role, "content": m.text()} for m in request.messages]
    ids, format_stops = served.chat_prompt(messages)
    stops = list(request.stop or [])
    stops += [s for s in format_stops if s not in stops]
    max_tokens = request.reply_limit
    if max_tokens is None:
        max_tokens = served.context - len(ids)
        if max_tokens < 1:
            raise bad_request(
                f"The messages ({len(ids)} tokens) fill this model's context of {served.context} tokens",
                "messages",
                "context_length_exceeded",
            )
    logprobs = (request.top_logprobs or 0) if request.logprobs else None
    params = _params(request, served, max_tokens, logprobs, stops)
    prompt = Prompt(_fit(ids, max_tokens, served, "messages"), "")
    return _job("chat", request, [prompt], params, served)


REQUESTS = {"completion": (CompletionRequest, completion_job), "chat": (ChatCompletionRequest, chat_job)}


def build_job(raw: bytes, kind: str, served: ServedModel) -> Job:
    """The ``Job`` of a raw request body (not attached to an event loop yet), or an ``APIError``: a 400 naming the
    bad parameter, a 404 for another model's name."""
    model_class, make = REQUESTS[kind]
    body = read_json(raw)
    if isinstance(body, dict) and isinstance(body.get("model"), str) and not served.serves(body["model"]):
        model = body["model"]
        raise APIError(404, f"The model `{model}` does not exist. This server serves `{served.name}`.", "model",
                       "model_not_found")  # fmt: skip
    try:
        request = model_class.model_validate(body)
    except ValidationError as e:
        raise from_validation_errors(e.errors(include_url=False)) from None
    return make(request, served)
