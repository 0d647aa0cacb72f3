"""What requests cost: USD per 1M tokens by model, the cost of a reply's ``usage``, and a pre-run upper estimate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# USD per 1M tokens (input, output). Unknown models cost 0 unless given in LLMConfig.prices.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def price_of(model: str, prices: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float]:
    """``(input, output)`` USD per 1M tokens of ``model``: ``prices`` first, then the built-in table; a dated
    snapshot ("gpt-4o-2024-08-06") costs what its family does (the longest matching name); unknown models 0."""
    table = {**DEFAULT_PRICES, **(prices or {})}
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else (0.0, 0.0)


def cost_of(usage: Mapping[str, int], price: tuple[float, float]) -> float:
    """USD of one reply's ``usage`` (``prompt_tokens``, ``completion_tokens``)."""
    return (usage.get("prompt_tokens", 0) * price[0] + usage.get("completion_tokens", 0) * price[1]) / 1e6


def estimate_cost(requests: Sequence[Sequence[dict[str, Any]]], max_tokens: int, price: tuple[float, float]) -> float:
    """Upper estimate before a run: ~4 characters a prompt token, every reply ``max_tokens`` long."""
    prompt_tokens = sum(len(m.get("content") or "") for messages in requests for m in messages) / 4
    return (prompt_tokens * price[0] + len(requests) * max_tokens * price[1]) / 1e6
