"""Several models side by side: a markdown table by size, ``comparison.json`` and the paper's scores-by-size plot."""

from __future__ import annotations

import json
import os
from typing import Any


def comparison_table(all_results: list[dict[str, Any]]) -> str:
    """A markdown table: one row per model, sorted by size, with each axis' mean and 95% interval."""
    # the axes every model has (the default config's plot is reported only where the judge gave it)
    axes = [a for a in ("grammar", "creativity", "consistency", "plot") if all(a in r["scores"] for r in all_results)]
    header = ["model", "parameters", *axes, "graded", "cost (USD)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in sorted(all_results, key=lambda r: r["num_parameters"]):
        s = r["scores"]
        cells = [f"`{r['model_name_or_path']}`", f"{r['num_parameters'] / 1e6:.2f}M"]
        cells += [f"{s[a]:.2f} [{s[a + '_ci'][0]:.2f}, {s[a + '_ci'][1]:.2f}]" for a in axes]
        cells += [f"{s['num_graded']}/{s['num_graded'] + s['num_ungraded']}", f"{r['usage']['cost_usd']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(args, all_results: list[dict[str, Any]]) -> None:
    from .plots import plot_comparison

    rows = [
        {
            "model_name_or_path": r["model_name_or_path"],
            "num_parameters": r["num_parameters"],
            "scores": r["scores"],
            "cost_usd": r["usage"]["cost_usd"],
        }
        for r in all_results
    ]
    with open(os.path.join(args.output_dir, "comparison.json"), "w", encoding="utf-8") as f:
        json.dump({"judge_model": args.judge_model, "config_name": args.config_name, "models": rows}, f, indent=2)
    table = comparison_table(all_results)
    with open(os.path.join(args.output_dir, "comparison.md"), "w", encoding="utf-8") as f:
        f.write(f"# GPT-Eval ({args.config_name}), judge `{args.judge_model}`\n\n{table}")
    plot_comparison(all_results, os.path.join(args.output_dir, "comparison.png"))
    print(table)
