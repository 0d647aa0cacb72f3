"""The report's figures, drawn from ``report.json``'s numbers (the functions return the figures, so the tests read
back what is drawn): scores and eval loss against parameters, and one heatmap per axis over width x depth."""

from __future__ import annotations

import math
import os
from typing import Any

DPI = 100
AXES_ORDER = ("grammar", "creativity", "consistency", "plot")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scores_figure(report: dict[str, Any]):
    """Left: each GPT-Eval axis (per judge config) against parameters; right: eval loss against parameters."""
    plt = _pyplot()
    figure, (scores_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=DPI)
    models = sorted(report["models"], key=lambda m: m["num_parameters"] or 0)
    params = [m["num_parameters"] for m in models]
    for config, axes in report["axes"].items():
        for axis in axes:
            values = [(m["evaluations"].get(config) or {}).get("scores", {}).get(axis) for m in models]
            points = [(p, v) for p, v in zip(params, values) if v is not None]
            if points:
                x, y = zip(*points)
                scores_ax.plot(x, y, marker="o", label=f"{axis} ({config})")
    scores_ax.set_xscale("log")
    scores_ax.set_xlabel("parameters")
    scores_ax.set_ylabel("GPT-Eval score (1-10)")
    scores_ax.set_title(f"GPT-Eval by size (judge {report['judge']['model']})")
    if scores_ax.lines:
        scores_ax.legend(fontsize=8)
    losses = [(p, m["eval_loss"]) for p, m in zip(params, models) if m["eval_loss"] is not None]
    if losses:
        x, y = zip(*losses)
        loss_ax.plot(x, y, marker="o", color="black", label="eval loss")
        for model, (px, py) in zip([m for m in models if m["eval_loss"] is not None], losses):
            loss_ax.annotate(model["name"], (px, py), fontsize=7, textcoords="offset points", xytext=(3, 3))
    loss_ax.set_xscale("log")
    loss_ax.set_xlabel("parameters")
    loss_ax.set_ylabel("eval loss (shared validation set)")
    loss_ax.set_title("Eval loss by size")
    figure.tight_layout()
    return figure


def heatmap_figure(tables: dict[str, dict[str, Any]], title: str):
    """One heatmap per table (``{axis: table}``, tables as ``report.json`` holds them: rows hidden sizes, columns
    layers, ``cells`` with None where no model has that shape), each cell labelled with its value."""
    import numpy as np

    plt = _pyplot()
    names = list(tables)
    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 0.6, 3.6), dpi=DPI, squeeze=False)
    for ax, name in zip(axes[0], names):
        table = tables[name]
        data = np.array([[math.nan if v is None else v for v in row] for row in table["cells"]], dtype=float)
        image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto", origin="upper")
        ax.set_xticks(range(len(table["layers"])), [str(v) for v in table["layers"]])
        ax.set_yticks(range(len(table["hidden_sizes"])), [str(v) for v in table["hidden_sizes"]])
        ax.set_xlabel("layers")
        ax.set_ylabel("hidden size")
        ax.set_title(name)
        for (i, j), value in np.ndenumerate(data):
            if not math.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize=8)
        figure.colorbar(image, ax=ax, shrink=0.8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """``{file name: figure}`` of every plot of the report."""
    out = {"scores_vs_parameters.png": scores_figure(report)}
    for config, tables in report["tables"].items():
        if tables:
            out[f"heatmaps_{config}.png"] = heatmap_figure(tables, f"GPT-Eval ({config}) over width x depth")
    out["heatmap_eval_loss.png"] = heatmap_figure({"eval loss": report["loss_table"]}, "Eval loss over width x depth")
    return out


def save_figures(report: dict[str, Any], folder: str) -> list[str]:
    plt = _pyplot()
    names = []
    for name, figure in figures(report).items():
        figure.savefig(os.path.join(folder, name), dpi=DPI)
        plt.close(figure)
        names.append(name)
    return names
