"""OpenAI's protocol: every kind of reply (completions, chat, ``n``, logprobs, ``echo``, streamed chunks with usage,
error bodies) validated against strict models of OpenAI's published schema (openai_schema.py); ``echo`` with
logprobs as lm-evaluation-harness's ``local-completions`` asks for it, checked against the model's own
``log_softmax``; and FastAPI's own validation errors in OpenAI's shape."""

import json
import math
import urllib.error

import pytest
import torch
from openai_schema import (
    CompletionStreamChunk,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    CreateCompletionResponse,
    ErrorResponse,
)
from pydantic import ValidationError
from serve_helpers import get_json, post_raw, post_stream
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinystories.serving import ServerThread, build_app

CHAT = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def base_url(tiny_model):
    app = build_app(tiny_model)

    @app.get("/v1/test/typed")  # a route with a typed query parameter: FastAPI validates it, not this package
    async def typed(count: int):
        return {"count": count}

    with ServerThread(app) as url:
        yield url


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def reference(tiny_model):
    """The stock transformers model (eager attention, not this package's loading): ``ids -> log_softmax``."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="eager").eval()

    def logprobs(ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)

    return logprobs


def post(base_url: str, path: str, body: dict) -> dict:
    status, reply = post_raw(f"{base_url}/{path}", json.dumps(body).encode())
    assert status == 200, reply
    return reply


COMPLETIONS = [
    {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0},
    {"prompt": "Once upon a time", "max_tokens": 6, "n": 2, "seed": 1},
    {"prompt": ["Lily", "Tom saw"], "max_tokens": 4, "logprobs": 2},
    {"prompt": "Once upon a time", "max_tokens": 4, "echo": True},
    {"prompt": [[5, 6, 7], [8, 9]], "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0},
]
CHATS = [
    {"messages": CHAT, "max_tokens": 6, "temperature": 0},
    {"messages": CHAT, "max_tokens": 6, "n": 2},
    {"messages": CHAT, "max_tokens": 6, "logprobs": True, "top_logprobs": 3},
]


@pytest.mark.parametrize("body", COMPLETIONS, ids=lambda b: ",".join(sorted(b)))
def test_completion_replies_follow_openais_schema(base_url, body):
    reply = CreateCompletionResponse.model_validate(post(base_url, "completions", body))
    rows = len(body["prompt"]) if isinstance(body["prompt"], list) else 1
    assert len(reply.choices) == rows * body.get("n", 1) and reply.usage is not None
    assert all((c.logprobs is not None) == ("logprobs" in body) for c in reply.choices)


@pytest.mark.parametrize("body", CHATS, ids=lambda b: ",".join(sorted(b)))
def test_chat_replies_follow_openais_schema_with_their_refusal_fields(base_url, body):
    raw = post(base_url, "chat/completions", body)
    reply = CreateChatCompletionResponse.model_validate(raw)
    assert len(reply.choices) == body.get("n", 1)
    for choice in raw["choices"]:
        assert choice["message"]["refusal"] is None  # sent, as OpenAI does
        if body.get("logprobs"):
            assert choice["logprobs"]["refusal"] is None and len(choice["logprobs"]["content"]) >= 1
        else:
            assert choice["logprobs"] is None


def test_streamed_chunks_follow_openais_schema(base_url):
    body = {"prompt": "Once", "max_tokens": 6, "n": 2, "logprobs": 1, "stream": True}
    events = post_stream(f"{base_url}/completions", {**body, "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    chunks = [CompletionStreamChunk.model_validate(e) for e in events[:-1]]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == sum(
        len(c.logprobs.tokens) for chunk in chunks for c in chunk.choices
    )
    assert sorted(c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason) == ["length"] * 2

    body = {"messages": CHAT, "max_tokens": 6, "logprobs": True, "top_logprobs": 2, "stream": True}
    events = post_stream(f"{base_url}/chat/completions", {**body, "stream_options": {"include_usage": True}})
    chunks = [CreateChatCompletionStreamResponse.model_validate(e) for e in events[:-1]]
    first = events[0]["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": "", "refusal": None} and first["finish_reason"] is None
    content = [c for chunk in events[1:-2] for c in chunk["choices"]]
    assert content and all(c["logprobs"]["refusal"] is None for c in content if c["logprobs"] is not None)
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens


def test_error_bodies_follow_openais_schema(base_url):
    cases = [
        (b'{"prompt": "Hi", "temperature": 3}', "completions", 400, "temperature"),
        (b'{"prompt": "Hi", "model": "gpt-4"}', "completions", 404, "model"),
        (b'{"prompt": "Hi", "top_p": NaN}', "completions", 400, None),
        (b'{"messages": [{"role": "bot", "content": "x"}]}', "chat/completions", 400, "messages"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
            "chat/completions",
            400,
            "tools",
        ),  # fmt: skip
        (b"{}", "embeddings", 404, None),
    ]
    for data, path, status, param in cases:
        got, body = post_raw(f"{base_url}/{path}", data)
        error = ErrorResponse.model_validate(body).error
        assert (got, error.param) == (status, param), body
        assert error.type == "invalid_request_error" and (error.code or path == "embeddings"), body


def test_the_schema_models_refuse_a_reply_missing_a_required_field(base_url):
    """The checks above can fail: drop one required (nullable) field and the strict models refuse the reply."""
    chat = post(base_url, "chat/completions", CHATS[2])
    for path in (("message", "refusal"), ("logprobs", "refusal"), ("logprobs",), ("finish_reason",)):
        broken = json.loads(json.dumps(chat))
        target = broken["choices"][0]
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        with pytest.raises(ValidationError):
            CreateChatCompletionResponse.model_validate(broken)
    completion = post(base_url, "completions", COMPLETIONS[2])
    del completion["choices"][0]["logprobs"]
    with pytest.raises(ValidationError):
        CreateCompletionResponse.model_validate(completion)
    _, error = post_raw(f"{base_url}/completions", b'{"prompt": 5}')
    del error["error"]["code"]
    with pytest.raises(ValidationError):
        ErrorResponse.model_validate(error)


def test_echo_logprobs_are_the_models_log_softmax_as_lm_eval_reads_them(base_url, tokenizer, reference):
    """lm-evaluation-harness ``local-completions``: token-id prompts, ``echo``, ``logprobs: 1``, ``max_tokens: 1``,
    greedy; it sums ``token_logprobs[ctxlen:-1]`` and checks greediness with ``top_logprobs[ctxlen:-1]``."""
    context = tokenizer("Once upon a time, Lily went to", add_special_tokens=False).input_ids
    continuations = [" the park.", " a big tree and"]
    prompts = [context + tokenizer(c, add_special_tokens=False).input_ids for c in continuations]
    body = {"model": "model", "prompt": prompts, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0}
    reply = CreateCompletionResponse.model_validate(post(base_url, "completions", {**body, "seed": 1234}))
    for ids, choice in zip(prompts, reply.choices):
        lp, ref = choice.logprobs, reference(ids)
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(ids) + 1
        assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None  # nothing predicts the first token
        for i in range(1, len(ids)):
            assert lp.token_logprobs[i] == pytest.approx(ref[i - 1, ids[i]].item(), abs=1e-5)
            [(token, value)] = lp.top_logprobs[i].items()  # logprobs: 1
            assert token == tokenizer.decode([ref[i - 1].argmax().item()])
            assert value == pytest.approx(ref[i - 1].max().item(), abs=1e-5)
        greedy = ref[-1].argmax().item()  # the one generated token: greedy, with the same distribution
        assert lp.tokens[-1] == tokenizer.decode([greedy])
        assert lp.token_logprobs[-1] == pytest.approx(ref[-1, greedy].item(), abs=1e-5)
        prompt_text = tokenizer.decode(ids)
        assert choice.text == prompt_text + tokenizer.decode([greedy])
        assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(ids) + 1)]  # ASCII
        ctxlen = len(context)  # what lm-eval computes
        expected = sum(ref[i - 1, ids[i]].item() for i in range(ctxlen, len(ids)))
        assert math.fsum(lp.token_logprobs[ctxlen:-1]) == pytest.approx(expected, abs=1e-4)
        is_greedy = all(
            t == max(top.values()) for t, top in zip(lp.token_logprobs[ctxlen:-1], lp.top_logprobs[ctxlen:-1])
        )
        assert is_greedy == all(ref[i - 1].argmax().item() == ids[i] for i in range(ctxlen, len(ids)))


def test_echo_of_a_text_prompt_puts_the_prompt_first_for_every_choice(base_url):
    prompt = "Tom had a red ball."
    body = {"prompt": prompt, "echo": True, "logprobs": 2, "max_tokens": 5, "n": 2, "seed": 3}
    reply = CreateCompletionResponse.model_validate(post(base_url, "completions", body))
    plain = post(base_url, "completions", {**body, "echo": False})["choices"]
    for choice, alone in zip(reply.choices, plain):
        lp = choice.logprobs
        assert choice.text == prompt + alone["text"]  # the same seed: the same reply
        prompt_tokens = len(lp.tokens) - len(alone["logprobs"]["tokens"])
        assert "".join(lp.tokens[:prompt_tokens]) == prompt and lp.token_logprobs[0] is None
        assert lp.text_offset[prompt_tokens:] == [len(prompt) + o for o in alone["logprobs"]["text_offset"]]
        assert lp.token_logprobs[prompt_tokens:] == alone["logprobs"]["token_logprobs"]
        assert all(len(top) == 2 for top in lp.top_logprobs[1:])
    assert reply.choices[0].logprobs.token_logprobs[:5] == reply.choices[1].logprobs.token_logprobs[:5]


def test_a_stream_with_echo_sends_the_prompt_and_its_logprobs_first(base_url):
    body = {"prompt": "Lily saw a cat", "echo": True, "logprobs": 1, "max_tokens": 6, "temperature": 0}
    whole = CreateCompletionResponse.model_validate(post(base_url, "completions", body)).choices[0]
    events = post_stream(f"{base_url}/completions", {**body, "stream": True})
    chunks = [CompletionStreamChunk.model_validate(e).choices[0] for e in events[:-1]]
    assert chunks[0].text == "Lily saw a cat" and chunks[0].logprobs.token_logprobs[0] is None
    assert "".join(chunks[0].logprobs.tokens) == "Lily saw a cat" and chunks[0].finish_reason is None
    assert "".join(c.text for c in chunks) == whole.text
    for name in ("tokens", "token_logprobs", "text_offset"):
        assert [v for c in chunks for v in getattr(c.logprobs, name)] == getattr(whole.logprobs, name), name
    # without logprobs the first chunk is the prompt alone
    events = post_stream(f"{base_url}/completions", {**body, "logprobs": None, "stream": True})
    assert events[0]["choices"][0]["text"] == "Lily saw a cat" and events[0]["choices"][0]["logprobs"] is None


def test_fastapi_validation_errors_are_openai_400s(base_url):
    assert get_json(f"{base_url}/test/typed?count=3") == {"count": 3}
    with pytest.raises(urllib.error.HTTPError) as e:
        get_json(f"{base_url}/test/typed?count=three")
    body = json.load(e.value)
    assert e.value.code == 400, body  # OpenAI's status for a bad parameter, not FastAPI's 422
    error = ErrorResponse.model_validate(body).error
    assert error.param == "count" and "count" in error.message and error.code == "invalid_type"
