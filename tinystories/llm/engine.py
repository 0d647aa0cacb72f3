"""An LLM engine for paid, long-running batches of chat requests (story generation and GPT-Eval grading): a request
cache that never pays twice (rejected replies included), transport retries with backoff, content re-asks without,
a hard budget, adaptive concurrency per endpoint, failure reasons with their cost, a progress bar (docs/llm.md: the
design goals and how each is met). The API key comes from the environment only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from .concurrency import ConcurrencyPool
from .config import LLMConfig
from .failures import BUDGET, CUT, EMPTY, TIMEOUT, reason_of
from .outcomes import ContentFailure, EngineStats, PermanentFailure, Rejection, Result, RetryableFailure
from .pricing import cost_of, estimate_cost, price_of
from .request_cache import RequestCache, request_key
from .transport import chat_client, send_chat

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


class LLMEngine:
    """Runs many chat requests against OpenAI-compatible endpoints, with cache, retries, budget and progress.

    >>> engine = LLMEngine(LLMConfig(model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1", cache_dir="cache"))
    >>> results = engine.run([[{"role": "user", "content": "Write a story."}]], temperature=1.0, max_tokens=400)
    """

    #: Seconds without a reply (with requests in flight) after which the run says so, once.
    stall_warning_s = 60.0
    #: Seconds between updates of the progress bar's counters while requests succeed.
    postfix_interval = 0.5

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
        self._spent_before_usd = 0.0  # what earlier statistics (handed out by take_stats) paid: the budget counts it
        self.pool: ConcurrencyPool | None = None  # made at the first run; kept by later runs (chunked callers)
        self._warned = False
        self._last_reply: float | None = None
        self._timeouts_since_reply = 0
        self._postfix_at = float("-inf")

    # -- accounting -------------------------------------------------------------------------------------------
    def cost_of(self, usage: dict[str, int]) -> float:
        return cost_of(usage, self.price)

    def estimate_cost(self, requests: Sequence[Sequence[dict[str, Any]]], max_tokens: int) -> float:
        """Upper estimate before a run: ~4 characters a prompt token, every reply ``max_tokens`` long."""
        return estimate_cost(requests, max_tokens, self.price)

    def spent_usd(self) -> float:
        """Everything this engine has paid, over all its runs (what ``budget_usd`` caps)."""
        return self._spent_before_usd + self.stats.cost_usd

    def take_stats(self) -> EngineStats:
        """The statistics so far, and a fresh count from here on (a caller that reports its work in parts, e.g.
        chunk by chunk); the budget, the cache and the learned concurrency stay the engine's."""
        stats, self.stats = self.stats, EngineStats()
        self._spent_before_usd += stats.cost_usd
        return stats

    def _over_budget(self) -> bool:
        return self.config.budget_usd is not None and self.spent_usd() >= self.config.budget_usd

    # -- one attempt --------------------------------------------------------------------------------------------
    def _client(self, base_url: str | None):
        return chat_client(self.config, base_url)

    async def _send(self, url, messages, params) -> tuple[dict[str, Any], str]:
        return await send_chat(self._clients[url], self.config.model, messages, params)

    def check_reply(self, response: dict[str, Any], index: int, validate: bool = True) -> tuple[str, str]:
        """``(text, finish_reason)`` of a usable reply to request ``index``; raises ``ContentFailure`` for a cut,
        empty or refused one, ``RetryableFailure`` for a malformed one (no choices, no text)."""
        choices = response.get("choices") or []
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            raise RetryableFailure("malformed reply: no choices")
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(content, (str, type(None))):
            raise RetryableFailure("malformed reply: the message has no text content")
        text = content or ""
        finish = choice.get("finish_reason")
        if finish == "length":
            raise ContentFailure(CUT)
        if not text.strip():
            raise ContentFailure(EMPTY)
        if validate and self.validate is not None:
            problem = self.validate(text, index)
            if problem:
                raise ContentFailure(problem)
        return text, finish

    def _rejection(self, error: ContentFailure, response: dict[str, Any], cached: bool) -> Rejection:
        text = ((response.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        return Rejection(error.short, error.reason, text, response, cached)

    # -- one request --------------------------------------------------------------------------------------------
    def _from_cache(self, key: str, index: int, rejected: list[Rejection]) -> Result | None:
        """The cached reply of ``key`` the current validator accepts: the accepted one, else a rejected one that now
        passes; every refused candidate is appended to ``rejected``."""
        if self.cache is None:
            return None
        accepted = self.cache.get(key)
        candidates = ([(None, accepted)] if accepted is not None else []) + self.cache.rejected(key)
        for stored_reason, response in candidates:
            try:
                text, finish = self.check_reply(response, index)
            except ContentFailure as e:
                rejected.append(self._rejection(e, response, cached=True))
                if stored_reason is None:  # a stricter validator than when it was paid for: keep it as rejected
                    self.cache.demote(key, e.short)
                continue
            except RetryableFailure:
                continue
            self.stats.cached += 1
            self.stats.reused_rejected += stored_reason is not None
            usage = response.get("usage", {})
            return Result(key, True, text, finish, usage, cached=True, response=response, rejected=list(rejected))
        return None

    def _fail(self, key: str, error: str, attempts: int, rejected: list[Rejection], progress) -> Result:
        self.stats.failed += 1
        self.stats.failures[reason_of(error)] += 1
        progress.update(1)
        self._postfix(progress, force=True)
        cached = attempts == 0 and bool(rejected)  # decided by the cached rejected replies alone
        return Result(key, False, attempts=attempts, error=error, cached=cached, rejected=rejected)

    async def _one(self, index: int, key: str, messages, params, progress, stored: bool) -> Result:
        """Request ``index`` (``key``; ``stored``: the cache holds replies of it) to a usable reply or a failure."""
        config = self.config
        rejected: list[Rejection] = []
        hit = self._from_cache(key, index, rejected) if stored else None
        if hit is not None:
            progress.update(1)
            return hit
        attempts = transport_failures = 0
        while True:
            if len(rejected) > config.max_content_retries:
                return self._fail(key, rejected[-1].error, attempts, rejected, progress)
            if self._over_budget():
                self.stats.budget_stopped = True
                return self._fail(key, f"{BUDGET}: budget_usd reached, request not sent", attempts, rejected, progress)
            ticket = await self.pool.acquire()
            if ticket is None or self._over_budget():
                if ticket is not None:
                    self.pool.release(ticket)
                    continue  # the budget check above says so
                self.stats.timeouts_stopped = True
                return self._fail(key, self._hopeless_error(), attempts, rejected, progress)
            attempts += 1
            self.stats.sent += 1
            self.stats.retries += attempts > 1
            try:
                response, raw = await self._send(self.pool.url_of(ticket), messages, params)
            except (RetryableFailure, PermanentFailure) as e:
                error = e.reason if isinstance(e, RetryableFailure) else str(e)
                self.pool.release(ticket, reason_of(error))
                self.stats.count(reason_of(error))
                if reason_of(error) == TIMEOUT:
                    self._note_timeout()
                transport_failures += 1
                self._postfix(progress, force=True)
                if isinstance(e, PermanentFailure) or transport_failures > config.max_retries:
                    return self._fail(key, error, attempts, rejected, progress)
                await self._backoff(transport_failures, e.retry_after)
                continue
            except BaseException:
                self.pool.release(ticket)
                raise
            self.pool.release(ticket, replied=True)
            self._last_reply, self._timeouts_since_reply = time.monotonic(), 0
            usage = response.get("usage") or {}
            cost = self.cost_of(usage)
            self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
            self.stats.completion_tokens += usage.get("completion_tokens", 0)
            self.stats.cost_usd += cost  # paid, whatever the reply is worth
            try:
                text, finish = self.check_reply(response, index)
            except ContentFailure as e:  # paid for: kept, and asked again at once (no backoff)
                self.stats.count(e.short, cost)
                if self.cache is not None:
                    self.cache.put_rejected(key, config.model, response, e.short)
                rejected.append(self._rejection(e, response, cached=False))
                self.stats.content_retries += len(rejected) <= config.max_content_retries
                self._postfix(progress, force=True)
                continue
            except RetryableFailure as e:  # no choices at all: like a transport failure
                self.stats.count(reason_of(e.reason), cost)
                transport_failures += 1
                if transport_failures > config.max_retries:
                    return self._fail(key, e.reason, attempts, rejected, progress)
                await self._backoff(transport_failures, None)
                continue
            if self.cache is not None:
                self.cache.put(key, config.model, response, raw=raw)  # before anyone can lose it
            self.stats.succeeded += 1
            progress.update(1)
            self._postfix(progress)
            return Result(key, True, text, finish, usage, attempts=attempts, response=response, rejected=rejected)

    async def _backoff(self, failures: int, retry_after: float | None) -> None:
        delay = min(self.config.backoff_max, self.config.backoff_base * 2 ** (failures - 1))
        delay = random.uniform(0.5 * delay, delay)  # jitter: retries of many requests do not align
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.max_retry_after))
        self.stats.backoff_s += delay
        await asyncio.sleep(delay)

    # -- saying what goes wrong, once -----------------------------------------------------------------------------
    def _fix(self) -> str:
        timeout, limit = self.config.request_timeout, self.config.max_concurrency
        return (
            f"raise request_timeout (now {timeout:g} s, e.g. --request_timeout {2 * timeout:g}) or lower "
            f"max_concurrency (now {limit})"
        )

    def _hopeless_error(self) -> str:
        return f"{TIMEOUT}: every attempt timed out, even one request at a time; not sent: {self._fix()}"

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s", message)

    def _note_timeout(self) -> None:
        self._timeouts_since_reply += 1
        quiet = self._last_reply is None or time.monotonic() - self._last_reply >= self.stall_warning_s
        if quiet and self._timeouts_since_reply >= min(3, sum(e.maximum for e in self.pool.limits)):
            since = "in this run" if self._last_reply is None else f"in the last {self.stall_warning_s:g} s"
            self._warn_once(
                f"Every request to {self.config.model} timed out {since} ({self._timeouts_since_reply} timeouts, "
                f"no reply): the server is slower than request_timeout at this concurrency. The engine lowers the "
                f"concurrency (now {self.pool.describe()}) and gives up once even one request at a time times out. "
                f"Fix: {self._fix()}."
            )

    async def _watchdog(self, started: float) -> None:
        """Says so once when ``stall_warning_s`` pass without a reply while requests are in flight."""
        while not self._warned:
            await asyncio.sleep(min(5.0, self.stall_warning_s / 4))
            last = max(started, self._last_reply or started)
            if self.pool.in_flight and time.monotonic() - last >= self.stall_warning_s:
                self._warn_once(
                    f"No reply from {self.config.model} in {self.stall_warning_s:g} s with {self.pool.in_flight} "
                    f"request(s) in flight (concurrency {self.pool.describe()}, request_timeout "
                    f"{self.config.request_timeout:g} s). If they time out: {self._fix()}."
                )

    def _postfix(self, progress, force: bool = False) -> None:
        """The bar's counters (concurrency, cost, failures, retries, top reason), refreshed at most every
        ``postfix_interval`` seconds on success (the bar redraws less often than that) and at once on a failure."""
        if progress.disable:
            return
        now = time.monotonic()
        if not force and now - self._postfix_at < self.postfix_interval:
            return
        self._postfix_at = now
        stats = self.stats
        postfix = {"conc": self.pool.describe(), "cost": f"${stats.cost_usd:.4f}", "failed": stats.failed}
        postfix["retries"] = stats.retries
        if (top := self.stats.top_reason()) is not None:
            postfix["top"] = top
        progress.set_postfix(postfix, refresh=False)

    # -- many requests ------------------------------------------------------------------------------------------
    async def arun(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[Result]:
        """Results in the order of ``requests`` (lists of chat messages); ``params`` are sampling parameters."""
        from tqdm.auto import tqdm

        unknown = [k for k in params if k not in SAMPLING_KEYS]
        if unknown:
            raise ValueError(f"Unknown sampling parameters {unknown}; known: {', '.join(SAMPLING_KEYS)}")
        config = self.config
        urls = config.endpoints()
        if self.pool is None or self.pool.urls != urls:
            self.pool = ConcurrencyPool(
                urls, config.max_concurrency, config.adaptive_concurrency, config.request_timeout
            )
        self.pool.start_run()
        self._clients = {url: self._client(url) for url in urls}
        keys = [request_key(config.model, messages, params) for messages in requests]
        stored = self.cache.known(keys) if self.cache is not None else set()
        progress = tqdm(total=len(requests), desc=f"{config.model}", unit="req", disable=not self.progress)
        watchdog = asyncio.ensure_future(self._watchdog(time.monotonic()))
        try:
            results = await asyncio.gather(
                *(
                    self._one(i, key, messages, params, progress, key in stored)
                    for i, (key, messages) in enumerate(zip(keys, requests))
                )
            )
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self._postfix(progress, force=True)
            progress.close()
            for client in self._clients.values():
                await client.close()
            self.stats.concurrency = {
                "max": config.max_concurrency,
                "adaptive": config.adaptive_concurrency,
                "final": [e.limit for e in self.pool.limits],
                "lowest": [e.lowest for e in self.pool.limits],
                "decreases": sum(e.decreases for e in self.pool.limits),
                "increases": sum(e.increases for e in self.pool.limits),
            }
        self._report_stops()
        return list(results)

    def _report_stops(self) -> None:
        if self.stats.budget_stopped:
            logger.warning(
                "Budget of $%.2f reached: spent $%.4f; %d request(s) were not sent. Raise budget_usd and run again: "
                "the %d paid replies are cached and will not be paid again.",
                self.config.budget_usd,
                self.spent_usd(),
                self.stats.failures.get(BUDGET, 0),
                self.stats.succeeded,
            )
        if self.stats.timeouts_stopped:
            logger.warning(
                "Stopped sending to %s: even one request at a time timed out after %g s; %d request(s) failed with "
                "reason 'timeout'. %s and run again: the %d replies received are cached.",
                self.config.model,
                self.config.request_timeout,
                self.stats.failures.get(TIMEOUT, 0),
                self._fix()[0].upper() + self._fix()[1:],
                self.stats.succeeded,
            )

    def run(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[Result]:
        return asyncio.run(self.arun(requests, **params))
