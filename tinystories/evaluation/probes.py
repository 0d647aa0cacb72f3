"""The paper's probes of factual knowledge, reasoning and context tracking: greedy completions checked for an
expected keyword (free: no judge)."""

from __future__ import annotations

from typing import Any

from .eval_sets import PROBE_CATEGORIES, load_probes, probe_passed


def run_probes(args, model, tokenizer) -> tuple[dict[str, Any], list[dict]]:
    """Greedy completions of the probe prompts, checked for the expected keyword among their first words."""
    from .sampling import SamplingSettings, sample_completions

    probes = load_probes(args.probes_file)
    settings = SamplingSettings(num_completions=1, temperature=0.0, max_new_tokens=20, batch_size=args.batch_size)
    outputs = sample_completions(
        model, tokenizer, [p["prompt"] for p in probes], settings, progress=args.progress, desc="probes"
    )
    records = []
    for probe, (completion,) in zip(probes, outputs):
        records.append({**probe, "completion": completion, "passed": probe_passed(completion, probe["answer"])})
    summary: dict[str, Any] = {}
    for category in PROBE_CATEGORIES:
        rows = [r for r in records if r["category"] == category]
        if rows:
            passed = sum(r["passed"] for r in rows)
            summary[category] = {"passed": passed, "total": len(rows), "accuracy": passed / len(rows)}
    return summary, records
