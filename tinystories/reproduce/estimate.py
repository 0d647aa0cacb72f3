"""The estimate printed before a run: GPU-hours from 6 N D training FLOPs at an assumed sustained throughput, and
the judge's cost from ``tinystories.llm.pricing`` x requests x assumed tokens per request."""

from __future__ import annotations

from typing import Any

#: Assumed prompt tokens of the judge's two templates (the exercise text and the grade turn), without the story.
ASSESSMENT_TEMPLATE_TOKENS = 150
GRADE_TURN_TOKENS = 110
#: Assumed tokens of the graded beginning (the bundled beginnings are about 30-60 tokens).
BEGINNING_TOKENS = 45
GRADE_REPLY_TOKENS = 30


def training_estimate(models: list[dict[str, Any]], gpu_flops: float) -> dict[str, Any]:
    """``models``: rows with ``num_parameters`` and ``tokens`` (None when only a time limit bounds training)."""
    rows = []
    for model in models:
        flops = 6 * model["num_parameters"] * model["tokens"] if model.get("tokens") else None
        rows.append({**model, "flops": flops, "gpu_hours": flops / gpu_flops / 3600 if flops else None})
    known = [r["gpu_hours"] for r in rows if r["gpu_hours"] is not None]
    return {"models": rows, "gpu_hours": sum(known), "gpu_flops": gpu_flops, "unbounded": len(rows) - len(known)}


def judge_estimate(
    judge_model: str,
    prices: dict | None,
    num_models: int,
    num_prompts: int,
    num_completions: int,
    max_new_tokens: int,
    reply_tokens: int,
) -> dict[str, Any]:
    """Two requests a graded completion (assessment, then grades); prompt and reply lengths as assumed above."""
    from ..llm import price_of

    completions = num_models * num_prompts * num_completions
    turn1_in = ASSESSMENT_TEMPLATE_TOKENS + BEGINNING_TOKENS + max_new_tokens
    turn2_in = turn1_in + reply_tokens + GRADE_TURN_TOKENS
    prompt_tokens = completions * (turn1_in + turn2_in)
    completion_tokens = completions * (reply_tokens + GRADE_REPLY_TOKENS)
    price = price_of(judge_model, prices)
    return {
        "judge_model": judge_model,
        "price_per_million": list(price),
        "requests": 2 * completions,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "usd": (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6,
    }


def format_estimate(training: dict[str, Any], judges: list[dict[str, Any]]) -> str:
    lines = [
        f"Estimate: {len(training['models'])} models to train, {training['gpu_hours']:.3g} GPU-hours at an assumed "
        f"{training['gpu_flops'] / 1e12:.0f} TFLOP/s sustained (6 x parameters x tokens FLOPs)"
        + (f"; {training['unbounded']} bounded only by time" if training["unbounded"] else "")
    ]
    for row in training["models"]:
        tokens = f"{row['tokens']:,} tokens" if row.get("tokens") else "tokens: time-limited"
        hours = f"{row['gpu_hours']:.3g} GPU-h" if row["gpu_hours"] is not None else "?"
        lines.append(f"  {row['name']}: {row['num_parameters']:,} parameters, {tokens}, {hours}")
    for judge in judges:
        price = judge["price_per_million"]
        lines.append(
            f"Judge {judge['judge_model']} ({judge['config']}): {judge['requests']:,} requests, ~"
            f"{judge['prompt_tokens']:,} prompt + {judge['completion_tokens']:,} completion tokens at "
            f"${price[0]:.2f}/${price[1]:.2f} per 1M: ~${judge['usd']:.2f} (before the request cache)"
        )
    return "\n".join(lines)
