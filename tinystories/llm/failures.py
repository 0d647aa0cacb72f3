"""Why requests fail: the short reasons the engine counts (with what the failed replies cost), and the table of them
printed at the end of a run and shown on a dataset card (docs/llm.md, "Failure reasons")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A request that got no reply within ``request_timeout`` (waiting in the server's queue counts).
TIMEOUT = "timeout"
#: A reply cut by ``max_tokens`` (``finish_reason == "length"``).
CUT = "finish_reason=length (reply cut at max_tokens)"
#: A reply with no text.
EMPTY = "empty reply"
#: A request not sent because ``budget_usd`` was reached.
BUDGET = "budget"
#: Failures that mean "the endpoint is overloaded": the adaptive concurrency lowers its limit on them.
OVERLOAD = (TIMEOUT, "HTTP 429", "HTTP 503")
#: Longest reason kept; a longer prefix is cut (a validator that puts details before its colon).
MAX_REASON_CHARS = 60


def reason_of(message: str | None) -> str:
    """The short reason of a failure message written ``"reason: detail"``: the part before the first colon (all of
    it when there is none), at most ``MAX_REASON_CHARS`` characters. ``validate`` callbacks should return their
    messages that way (``"misses required word(s): dog, red"``) so that the table groups them."""
    if not message:
        return "unknown"
    reason = message.split(":", 1)[0].strip() or "unknown"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


@dataclass
class ReasonStats:
    """Failed or rejected attempts of one reason, and the USD paid for their replies (0 for a timeout or a 429)."""

    count: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "cost_usd": round(self.cost_usd, 6)}


def failure_rows(stats: Mapping[str, Any]) -> list[tuple[str, int | None, float | None, int]]:
    """``(reason, failed attempts, cost USD, requests lost)`` of one engine's ``as_dict()``, most attempts first.

    Attempts count every failed or rejected reply of the run (a request re-asked twice after two cut replies counts
    two), cost what those replies cost; requests lost count the requests that ended without a result, by the reason
    of their last failure (``failures``). A summary written before reasons were recorded gives ``None`` for the
    attempts and the cost."""
    reasons = stats.get("reasons")
    lost = stats.get("failures") or {}
    rows = []
    for name in dict.fromkeys([*(reasons or {}), *lost]):
        entry = (reasons or {}).get(name) or {}
        known = reasons is not None
        attempts = int(entry.get("count", 0)) if known else None
        cost = float(entry.get("cost_usd", 0.0)) if known else None
        rows.append((name, attempts, cost, int(lost.get(name, 0))))
    return sorted(rows, key=lambda row: (-(row[1] or 0), -row[3], row[0]))


def failure_table(sections: Mapping[str, Mapping[str, Any]], markdown: bool = False) -> str:
    """The reasons of failed and rejected replies of one or several engines, as aligned text (the end-of-run
    summary) or a Markdown table (a card): ``sections`` maps a name (``"stories"``, ``"summaries"``) to an engine's
    ``stats.as_dict()``. One line when nothing failed."""
    header = ("requests", "reason", "failed attempts", "cost USD", "requests lost")
    rows = [
        (section, reason, "?" if count is None else str(count), "?" if cost is None else f"{cost:.6f}", str(lost))
        for section, stats in sections.items()
        for reason, count, cost, lost in failure_rows(stats)
    ]
    if not rows:
        return "No failed or rejected replies."
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| --- | --- | ---: | ---: | ---: |"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = (False, False, True, True, True)

    def line(row) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    return "\n".join([line(header)] + [line(row) for row in rows])


__all__ = [
    "BUDGET",
    "CUT",
    "EMPTY",
    "OVERLOAD",
    "TIMEOUT",
    "ReasonStats",
    "failure_rows",
    "failure_table",
    "reason_of",
]
