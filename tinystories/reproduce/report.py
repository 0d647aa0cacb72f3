"""``report/``: ``report.json`` (every number), ``report.md`` (the paper's Figure 4 layout: rows hidden size, columns
layers, each cell ``a/b`` with b = (a - a_min) / (a_max - a_min) over the table, one table per axis; an eval-loss
table; parameters and tokens; the judge, prompt style and cost; the fidelity notes) and the plots."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from .plots import AXES_ORDER, save_figures

FIDELITY_DOC = "docs/fidelity.md"
PAPER_JUDGE = "gpt-4"
PAPER_EVAL = (50, 10)  # beginnings x completions
PAPER_VOCAB = 10_000


def grid_table(models: list[dict[str, Any]], value) -> dict[str, Any]:
    """Rows hidden sizes, columns layers, ``value(model)`` in each cell (None where no model has the shape or
    the value is missing) and b = (a - a_min) / (a_max - a_min) over the table's cells."""
    hidden_sizes = sorted({m["hidden_size"] for m in models})
    layers = sorted({m["num_layers"] for m in models})
    by_shape = {}
    for model in models:  # a grid point wins over a preset of the same shape
        if model["grid"] or (model["hidden_size"], model["num_layers"]) not in by_shape:
            by_shape[model["hidden_size"], model["num_layers"]] = model
    cells = [[_value(by_shape.get((h, n)), value) for n in layers] for h in hidden_sizes]
    names = [[(by_shape.get((h, n)) or {}).get("name") for n in layers] for h in hidden_sizes]
    present = [v for row in cells for v in row if v is not None]
    low, high = (min(present), max(present)) if present else (None, None)
    normalized = [[None if v is None or high == low else (v - low) / (high - low) for v in row] for row in cells]
    return {
        "hidden_sizes": hidden_sizes,
        "layers": layers,
        "cells": cells,
        "normalized": normalized,
        "models": names,
        "min": low,
        "max": high,
    }


def _value(model, value):
    return None if model is None else value(model)


def _score(config: str, axis: str):
    return lambda m: (m["evaluations"].get(config) or {}).get("scores", {}).get(axis)


def build_report(context: dict[str, Any]) -> dict[str, Any]:
    """The report's numbers from the stages' results (``context``: ``models`` rows with ``evaluations`` read from
    each ``results.json``, ``judge``, ``data``, ``tokenizer``, ``training``, ``configs``)."""
    models = context["models"]
    axes = {
        config: [a for a in AXES_ORDER if any(_score(config, a)(m) is not None for m in models)]
        for config in context["configs"]
    }
    tables = {config: {axis: grid_table(models, _score(config, axis)) for axis in axes[config]} for config in axes}
    return {
        "name": context["name"],
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": models,
        "axes": axes,
        "tables": tables,
        "loss_table": grid_table(models, lambda m: m["eval_loss"]),
        "judge": context["judge"],
        "data": context["data"],
        "tokenizer": context["tokenizer"],
        "training": context["training"],
        "fidelity": fidelity_notes(context),
    }


def fidelity_notes(context: dict[str, Any]) -> list[str]:
    """Where this run departs from the paper's protocol (the package's own departures: docs/fidelity.md)."""
    notes = []
    tokenizer, judge, training = context["tokenizer"], context["judge"], context["training"]
    if tokenizer["vocab_size"] != PAPER_VOCAB or "gpt-neo" not in (tokenizer.get("how") or "").lower():
        notes.append(
            f"Tokenizer: {tokenizer['vocab_size']} tokens, {tokenizer['how']}; the paper keeps GPT-Neo's 10K most "
            "frequent tokens."
        )
    if context["configs"] and not str(judge["model"]).startswith(PAPER_JUDGE):
        notes.append(f"Judge: {judge['model']}; the paper's judge is GPT-4: scores are not comparable with its.")
    if context["configs"] and (judge["num_prompts"], judge["num_completions"]) != PAPER_EVAL:
        notes.append(
            f"GPT-Eval set: {judge['num_prompts']} beginnings x {judge['num_completions']} completions; the paper "
            "uses about 50 x 10."
        )
    styles = sorted({str(s) for s in judge["prompt_style"].values()})
    if styles and styles != ["paper"]:
        notes.append(f"Judge prompt style: {', '.join(styles)} (the paper's exact texts are prompt_style: paper).")
    notes.append(
        f"Every model saw the same data in the same order with the same budget ({training['budget']}); the paper "
        "does not state its models' token budgets."
    )
    notes.append(f"Grid heads: {training['num_heads']} (the released models use 16 at every width).")
    return notes


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cells(table: dict[str, Any], with_normalized: bool) -> list[str]:
    header = "| hidden \\ layers | " + " | ".join(str(n) for n in table["layers"]) + " |"
    lines = [header, "|" + " --- |" * (len(table["layers"]) + 1)]
    for hidden, row, norm in zip(table["hidden_sizes"], table["cells"], table["normalized"]):
        if with_normalized:
            cells = [_fmt(a) if a is None else f"{_fmt(a)}/{_fmt(b)}" for a, b in zip(row, norm)]
        else:
            cells = [_fmt(a, 3) for a in row]
        lines.append(f"| {hidden} | " + " | ".join(cells) + " |")
    return lines


def _probes(evaluation: dict[str, Any]) -> str:
    probes = evaluation.get("probes") or {}
    if not probes:
        return "–"
    return f"{sum(p['passed'] for p in probes.values())}/{sum(p['total'] for p in probes.values())}"


def render_markdown(report: dict[str, Any], plots: list[str]) -> str:
    judge, data, tokenizer, training = report["judge"], report["data"], report["tokenizer"], report["training"]
    lines = [
        f"# TinyStories reproduction: {report['name']}",
        "",
        f"{len(report['models'])} GPT-Neo models trained on the same data ({data['description']}) with one "
        f"tokenizer ({tokenizer['vocab_size']} tokens, {tokenizer['how']}), each for {training['budget']}. "
        f"Eval loss is on the one validation set every model shares; GPT-Eval grades "
        f"{judge['num_prompts']} beginnings x {judge['num_completions']} completions per model.",
        "",
        "## Models",
        "",
    ]
    configs = list(report["axes"])
    score_columns = [(c, a) for c in configs for a in report["axes"][c]]
    header = ["model", "hidden", "layers", "heads", "parameters", "tokens", "eval loss"]
    header += [f"{a} ({c})" for c, a in score_columns] + [f"probes ({c})" for c in configs]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for m in report["models"]:
        row = [m["name"], m["hidden_size"], m["num_layers"], m["num_heads"], f"{m['num_parameters']:,}"]
        row += [f"{m['tokens']:,}" if m["tokens"] is not None else "–", _fmt(m["eval_loss"], 3)]
        row += [_fmt((m["evaluations"].get(c) or {}).get("scores", {}).get(a)) for c, a in score_columns]
        row += [_probes(m["evaluations"].get(c) or {}) for c in configs]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "## GPT-Eval by width and depth (the paper's Figure 4 layout)", ""]
    lines.append("Rows: hidden size; columns: layers. Each cell is a/b: a the score, b = (a - a_min)/(a_max - a_min)")
    lines.append("over the table (– where no model has the shape, or all cells are equal).")
    for config, tables in report["tables"].items():
        for axis, table in tables.items():
            lines += ["", f"### {axis} ({config} config)", "", *_cells(table, True)]
    if not report["tables"] or not any(report["tables"].values()):
        lines += ["", "No GPT-Eval in this run (evaluate.configs is empty)."]
    lines += ["", "## Eval loss by width and depth", "", *_cells(report["loss_table"], False), ""]
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots]
    styles = ", ".join(f"{c}: {s}" for c, s in judge["prompt_style"].items()) or "–"
    lines += [
        "",
        "## Judge, prompt style and cost",
        "",
        f"- judge: `{judge['model']}` at {judge['base_url'] or 'the OpenAI API'}; configs: {', '.join(configs) or '–'}",
        f"- prompt style: {styles}",
        f"- requests sent: {judge['requests_sent']:,}; cost: ${judge['cost_usd']:.4f}",
        "",
        "## Fidelity notes",
        "",
        f"How the package follows the paper's protocol, detail by detail: [{FIDELITY_DOC}](../../../{FIDELITY_DOC})"
        " in the tinystories repository. This run:",
        "",
        *[f"- {note}" for note in report["fidelity"]],
        "",
    ]
    return "\n".join(lines)


def write_report(folder: str, report: dict[str, Any]) -> dict[str, Any]:
    os.makedirs(folder, exist_ok=True)
    plots = save_figures(report, folder)
    report = {**report, "files": {"markdown": "report.md", "plots": plots}}
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(report, plots))
    return report
