"""One attempt of a chat request: the client, the HTTP call, and the client's errors as the engine's failures
(retryable: 429, 5xx, 408/409, timeouts, lost connections, malformed replies; permanent: other 4xx)."""

from __future__ import annotations

import json
from typing import Any

from .config import LLMConfig
from .failures import TIMEOUT
from .outcomes import PermanentFailure, RetryableFailure


def _retry_after(error: Exception) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms`` or ``retry-after``), if it said."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name.endswith("-ms") else seconds
    return None


def chat_client(config: LLMConfig, base_url: str | None):
    """An ``AsyncOpenAI`` client for one endpoint: no retries of its own (the engine retries), the run's timeout,
    the key from the environment."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        base_url=base_url,
        api_key=config.api_key(base_url),
        max_retries=0,
        timeout=config.request_timeout,
    )


async def send_chat(client, model: str, messages, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The reply as a plain dict, and its JSON as the server sent it (what the cache stores).

    The body goes out exactly as the engine built it (what the cache key hashes) through the client's ``post``
    (its documented way to raw endpoints: same auth, headers, timeout and errors as ``chat.completions.create``),
    and the reply is read with ``json.loads``. The typed ``create`` would walk the parameters to transform them
    and build a pydantic model of the reply: more client CPU per request, against a fast server, than the
    engine's cache, retries and accounting together (benchmarks/generation_scale.py)."""
    import openai

    try:
        text = await client.post(
            "/chat/completions",
            body={"model": model, "messages": list(messages), **params},
            cast_to=str,
        )
        response = json.loads(text)
    except openai.RateLimitError as e:
        raise RetryableFailure("HTTP 429", _retry_after(e)) from e
    except openai.APITimeoutError as e:
        raise RetryableFailure(TIMEOUT) from e
    except openai.APIConnectionError as e:
        raise RetryableFailure(f"connection: {e.__cause__ or e}") from e
    except openai.APIStatusError as e:
        if e.status_code >= 500 or e.status_code in (408, 409):
            raise RetryableFailure(f"HTTP {e.status_code}", _retry_after(e)) from e
        raise PermanentFailure(f"HTTP {e.status_code}: {e.message}") from e
    except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError) as e:
        raise RetryableFailure(f"malformed reply: {type(e).__name__}") from e
    if not isinstance(response, dict):
        raise RetryableFailure(f"malformed reply: a JSON {type(response).__name__}, not an object")
    return response, text
