"""What the engine hands back and counts: ``Result`` (with the ``Rejection``s of a request), the failures of an
attempt (``RetryableFailure``, ``ContentFailure``, ``PermanentFailure``) and ``EngineStats``, the run's counts
with the failure reasons and their cost (docs/llm.md)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .failures import ReasonStats, failure_table, reason_of


class Rejection(NamedTuple):
    """A reply that came back but was refused: its short ``reason``, the full ``error``, its ``text``, the
    ``response`` (a dict as the server sent it) and whether it came from the request ``cache``."""

    reason: str
    error: str
    text: str
    response: dict[str, Any]
    cached: bool = False


@dataclass
class Result:
    """The outcome of one request: ``text`` when ``ok``, else the ``error`` that made it fail (``reason`` is its
    short form). ``rejected`` lists every refused reply of this request, oldest first, cached ones included: a caller
    that keeps a story despite a missing word takes ``rejected[-1].text``."""

    key: str
    ok: bool
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    response: dict[str, Any] | None = None
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        return None if self.ok else reason_of(self.error)


class RetryableFailure(Exception):
    """A failed attempt worth retrying (429, 5xx, timeout, truncated or malformed reply), with its reason."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ContentFailure(RetryableFailure):
    """A reply that came back but cannot be used (cut at max_tokens, empty, refused by ``validate``): re-asked at
    once, up to ``max_content_retries``; ``reason`` is the full message, ``short`` its reason."""

    @property
    def short(self) -> str:
        return reason_of(self.reason)


class PermanentFailure(Exception):
    """A failed attempt that retrying cannot fix (4xx other than 408/409/429)."""


@dataclass
class EngineStats:
    """Counts of a run. ``failures``: requests that ended without a result, by reason; ``reasons``: every failed
    or rejected attempt, by reason, with the USD its reply cost; ``retries``: every re-send (``content_retries`` of
    them after a refused reply)."""

    sent: int = 0
    cached: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    content_retries: int = 0
    reused_rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    backoff_s: float = 0.0
    failures: Counter = field(default_factory=Counter)
    reasons: dict[str, ReasonStats] = field(default_factory=dict)
    budget_stopped: bool = False
    timeouts_stopped: bool = False
    concurrency: dict[str, Any] = field(default_factory=dict)

    def count(self, reason: str, cost: float = 0.0) -> None:
        entry = self.reasons.setdefault(reason, ReasonStats())
        entry.count += 1
        entry.cost_usd += cost

    def top_reason(self) -> str | None:
        if not self.reasons:
            return None
        name, entry = max(self.reasons.items(), key=lambda item: item[1].count)
        return f"{name[:28]} {entry.count}"

    def as_dict(self) -> dict[str, Any]:
        """The statistics as plain JSON values (costs rounded to a millionth of a dollar)."""
        return {
            "sent": self.sent,
            "cached": self.cached,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retries": self.retries,
            "content_retries": self.content_retries,
            "reused_rejected": self.reused_rejected,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "failures": dict(self.failures),
            "reasons": {name: entry.as_dict() for name, entry in self.reasons.items()},
            "budget_stopped": self.budget_stopped,
            "timeouts_stopped": self.timeouts_stopped,
            "concurrency": dict(self.concurrency),
        }

    def table(self, name: str = "requests") -> str:
        """The failure reasons as text (``failures.failure_table``), for an end-of-run summary."""
        return failure_table({name: self.as_dict()})
