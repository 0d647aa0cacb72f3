"""An LLM engine for paid, long-running batches of chat requests (story generation and GPT-Eval grading): a request
cache that never pays twice, retries with backoff, a hard budget, bounded concurrency over one or several endpoints,
a progress bar (docs/llm.md: the design goals and how each is met). The API key comes from the environment only."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import LLMConfig
from .pricing import cost_of, estimate_cost, price_of
from .request_cache import RequestCache, request_key

logger = logging.getLogger(__name__)

SAMPLING_KEYS = (
    "temperature",
    "top_p",
    "max_tokens",
    "n",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "response_format",
)


@dataclass
class Result:
    """The outcome of one request: ``text`` when ``ok``, else the ``error`` that made it fail."""

    key: str
    ok: bool
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    response: dict[str, Any] | None = None


class RetryableFailure(Exception):
    """A failed attempt worth retrying (429, 5xx, timeout, truncated/cut/empty/invalid reply), with its reason."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """A failed attempt that retrying cannot fix (4xx other than 408/409/429)."""


def _retry_after(error: Exception) -> float | None:
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


@dataclass
class EngineStats:
    sent: int = 0
    cached: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failures: Counter = field(default_factory=Counter)
    budget_stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The statistics as plain JSON values (cost rounded to a millionth of a dollar)."""
        return {
            "sent": self.sent,
            "cached": self.cached,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "failures": dict(self.failures),
            "budget_stopped": self.budget_stopped,
        }


class LLMEngine:
    """Runs many chat requests against OpenAI-compatible endpoints, with cache, retries, budget and progress.

    >>> engine = LLMEngine(LLMConfig(model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1", cache_dir="cache"))
    >>> results = engine.run([[{"role": "user", "content": "Write a story."}]], temperature=1.0, max_tokens=400)
    """

    def __init__(
        self,
        config: LLMConfig,
        validate: Callable[[str, int], str | None] | None = None,
        progress: bool = True,
    ):
        self.config = config
        self.validate = validate
        self.progress = progress
        self.cache = RequestCache.in_folder(config.cache_dir) if config.cache_dir else None
        self.price = price_of(config.model, config.prices)
        self.stats = EngineStats()
        self._in_flight: dict[str | None, int] = {}

    # -- accounting -------------------------------------------------------------------------------------------
    def cost_of(self, usage: dict[str, int]) -> float:
        return cost_of(usage, self.price)

    def estimate_cost(self, requests: Sequence[Sequence[dict[str, Any]]], max_tokens: int) -> float:
        """Upper estimate before a run: ~4 characters a prompt token, every reply ``max_tokens`` long."""
        return estimate_cost(requests, max_tokens, self.price)

    def _over_budget(self) -> bool:
        return self.config.budget_usd is not None and self.stats.cost_usd >= self.config.budget_usd

    # -- one request --------------------------------------------------------------------------------------------
    def _client(self, base_url: str | None):
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=base_url,
            api_key=self.config.api_key(base_url),
            max_retries=0,
            timeout=self.config.request_timeout,
        )

    def _pick_endpoint(self) -> str | None:
        return min(self._clients, key=lambda url: self._in_flight.get(url, 0))

    async def _send(self, messages, params) -> dict[str, Any]:
        import openai

        url = self._pick_endpoint()
        self._in_flight[url] = self._in_flight.get(url, 0) + 1
        try:
            response = await self._clients[url].chat.completions.create(
                model=self.config.model, messages=list(messages), **params
            )
        except openai.RateLimitError as e:
            raise RetryableFailure("HTTP 429", _retry_after(e)) from e
        except openai.APITimeoutError as e:
            raise RetryableFailure("timeout") from e
        except openai.APIConnectionError as e:
            raise RetryableFailure(f"connection: {e.__cause__ or e}") from e
        except openai.APIStatusError as e:
            if e.status_code >= 500 or e.status_code in (408, 409):
                raise RetryableFailure(f"HTTP {e.status_code}", _retry_after(e)) from e
            raise PermanentFailure(f"HTTP {e.status_code}: {e.message}") from e
        except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError) as e:
            raise RetryableFailure(f"malformed reply: {type(e).__name__}") from e
        finally:
            self._in_flight[url] -= 1
        return response.model_dump(exclude_none=True)

    def check_reply(self, response: dict[str, Any], index: int, validate: bool = True) -> tuple[str, str]:
        """``(text, finish_reason)`` of a usable reply to request ``index``; raises ``RetryableFailure`` otherwise."""
        choices = response.get("choices") or []
        if not choices:
            raise RetryableFailure("malformed reply: no choices")
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        if finish == "length":
            raise RetryableFailure("finish_reason=length (reply cut at max_tokens)")
        if not text.strip():
            raise RetryableFailure("empty reply")
        if validate and self.validate is not None:
            problem = self.validate(text, index)
            if problem:
                raise RetryableFailure(f"invalid reply: {problem}")
        return text, finish

    async def _one(self, index: int, messages, params, semaphore, progress) -> Result:
        key = request_key(self.config.model, messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            progress.update(1)
            try:
                text, finish = self.check_reply(hit, index)
            except RetryableFailure as e:  # a stricter validator than when it was paid for: report, never re-buy
                self.stats.failed += 1
                self.stats.failures["cached reply rejected"] += 1
                return Result(key, False, cached=True, error=f"cached reply rejected: {e.reason}", response=hit)
            self.stats.cached += 1
            return Result(key, True, text, finish, hit.get("usage", {}), cached=True, response=hit)
        attempts, last_error = 0, None
        async with semaphore:
            while attempts <= self.config.max_retries:
                if self._over_budget():
                    self.stats.budget_stopped = True
                    last_error = "budget: budget_usd reached, request not sent"
                    break
                attempts += 1
                self.stats.sent += 1
                try:
                    response = await self._send(messages, params)
                    usage = response.get("usage") or {}
                    self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
                    self.stats.completion_tokens += usage.get("completion_tokens", 0)
                    self.stats.cost_usd += self.cost_of(usage)  # paid, whatever the reply is worth
                    text, finish = self.check_reply(response, index)
                except PermanentFailure as e:
                    last_error = str(e)
                    break
                except RetryableFailure as e:
                    last_error = e.reason
                    if attempts > self.config.max_retries:
                        break
                    self.stats.retries += 1
                    delay = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempts - 1))
                    delay = random.uniform(0.5 * delay, delay)  # jitter: retries of many requests do not align
                    if e.retry_after is not None:
                        delay = max(delay, min(e.retry_after, self.config.max_retry_after))
                    await asyncio.sleep(delay)
                    continue
                if self.cache is not None:
                    self.cache.put(key, self.config.model, response)  # before anyone can lose it
                self.stats.succeeded += 1
                progress.update(1)
                self._postfix(progress)
                return Result(key, True, text, finish, usage, attempts=attempts, response=response)
        self.stats.failed += 1
        self.stats.failures[last_error.split(":")[0] if last_error else "unknown"] += 1
        progress.update(1)
        self._postfix(progress)
        return Result(key, False, attempts=attempts, error=last_error)

    def _postfix(self, progress) -> None:
        progress.set_postfix(
            cost=f"${self.stats.cost_usd:.4f}", failed=self.stats.failed, retries=self.stats.retries, refresh=False
        )

    # -- many requests ------------------------------------------------------------------------------------------
    async def arun(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[Result]:
        """Results in the order of ``requests`` (lists of chat messages); ``params`` are sampling parameters."""
        from tqdm.auto import tqdm

        unknown = [k for k in params if k not in SAMPLING_KEYS]
        if unknown:
            raise ValueError(f"Unknown sampling parameters {unknown}; known: {', '.join(SAMPLING_KEYS)}")
        self._clients = {url: self._client(url) for url in self.config.endpoints()}
        semaphore = asyncio.Semaphore(self.config.max_concurrency)
        progress = tqdm(total=len(requests), desc=f"{self.config.model}", unit="req", disable=not self.progress)
        try:
            results = await asyncio.gather(
                *(self._one(i, messages, params, semaphore, progress) for i, messages in enumerate(requests))
            )
        finally:
            progress.close()
            for client in self._clients.values():
                await client.close()
        if self.stats.budget_stopped:
            logger.warning(
                "Budget of $%.2f reached: spent $%.4f; %d request(s) were not sent. Raise budget_usd and run again: "
                "the %d paid replies are cached and will not be paid again.",
                self.config.budget_usd,
                self.stats.cost_usd,
                self.stats.failures.get("budget", 0),
                self.stats.succeeded,
            )
        return list(results)

    def run(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[Result]:
        return asyncio.run(self.arun(requests, **params))
