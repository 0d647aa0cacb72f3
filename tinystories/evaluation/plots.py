"""Figures of GPT-Eval results (matplotlib, drawn on a ``Figure`` without pyplot: no display, no global state).

``scores_figure`` and ``comparison_figure`` build the figures (their data can be read back from the axes);
``plot_scores`` and ``plot_comparison`` save them as PNG files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110

AXIS_ORDER = ("grammar", "creativity", "consistency", "plot")


def _axes_of(scores: dict[str, Any]) -> list[str]:
    return [axis for axis in AXIS_ORDER if axis in scores]


def scores_figure(results: dict[str, Any]) -> Figure:
    """One model: the mean grade of each axis with its 95% interval (and the probability-weighted grade where the
    judge returned logprobs), and the distribution of the writer's age group."""
    from matplotlib.figure import Figure

    scores = results["scores"]
    axes = _axes_of(scores)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    means = [scores[a] for a in axes]
    errors = [
        [max(0.0, m - scores[f"{a}_ci"][0]) for a, m in zip(axes, means)],
        [max(0.0, scores[f"{a}_ci"][1] - m) for a, m in zip(axes, means)],
    ]
    left.bar(axes, means, yerr=errors, capsize=4, color="#4c72b0", label="sampled grade")
    weighted = [scores.get(f"{a}_weighted") for a in axes]
    if any(w is not None for w in weighted):
        xs = [i for i, w in enumerate(weighted) if w is not None]
        left.scatter(xs, [weighted[i] for i in xs], color="#dd8452", zorder=3, label="probability-weighted")
        left.legend(loc="lower right", fontsize=8)
    left.set_ylim(0, 10)
    left.set_ylabel("grade (out of 10)")
    left.set_title(f"GPT-Eval ({results['config_name']}), judge {results['judge_model']}", fontsize=10)
    ages = scores.get("age_group") or {}
    letters = list(ages) or list("ABCDEF")
    right.bar(letters, [ages.get(letter, 0.0) for letter in letters], color="#55a868")
    right.set_ylim(0, 1)
    right.set_ylabel("share of graded completions")
    right.set_title("age group (A: 3 or under ... F: 13-16)", fontsize=10)
    graded, ungraded = scores["num_graded"], scores["num_ungraded"]
    fig.suptitle(f"{results['model_name_or_path']}: {graded} graded, {ungraded} ungraded", fontsize=10)
    return fig


def plot_scores(results: dict[str, Any], path: str) -> str:
    """Save :func:`scores_figure` of ``results`` as a PNG at ``path``; returns ``path``."""
    scores_figure(results).savefig(path, dpi=DPI)
    return path


def comparison_figure(all_results: list[dict[str, Any]]) -> Figure:
    """Several models: each axis' mean grade (with its 95% interval) against the number of parameters, the
    paper's scores-by-size figure."""
    from matplotlib.figure import Figure

    rows = sorted(all_results, key=lambda r: r["num_parameters"])
    axes = [axis for axis in _axes_of(rows[0]["scores"]) if all(axis in r["scores"] for r in rows)]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    sizes = [r["num_parameters"] / 1e6 for r in rows]
    for axis in axes:
        means = [r["scores"][axis] for r in rows]
        low = [max(0.0, m - r["scores"][f"{axis}_ci"][0]) for m, r in zip(means, rows)]
        high = [max(0.0, r["scores"][f"{axis}_ci"][1] - m) for m, r in zip(means, rows)]
        ax.errorbar(sizes, means, yerr=[low, high], marker="o", capsize=3, label=axis)
    if len(set(sizes)) > 1 and min(sizes) > 0:
        ax.set_xscale("log")
    for size, r in zip(sizes, rows):
        name = str(r["model_name_or_path"]).rstrip("/").split("/")[-1]
        ax.annotate(name, (size, 0.3), fontsize=7, rotation=90, ha="center", va="bottom")
    ax.set_ylim(0, 10)
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("GPT-Eval grade (out of 10)")
    ax.set_title(f"GPT-Eval by model size, judge {rows[0]['judge_model']}", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_comparison(all_results: list[dict[str, Any]], path: str) -> str:
    """Save :func:`comparison_figure` of ``all_results`` as a PNG at ``path``; returns ``path``."""
    comparison_figure(all_results).savefig(path, dpi=DPI)
    return path
