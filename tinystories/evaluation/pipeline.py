"""``tinystories evaluate RECIPE.yaml``: sample completions from one or several models and grade them with GPT-Eval.

For each model: completions (``completions``), GPT-Eval through the metric module (``evaluate.load(GPT_EVAL)``), the
probes (``probes``), optionally the diversity check (``diversity``); ``results.json``, ``samples.jsonl`` and
``gpt_eval.png`` in ``output_dir/<model>/``. Several models also get ``output_dir/comparison.{json,md,png}``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
from typing import Any

from ..errors import EvaluationError
from ..logging_setup import logging_from_argv
from ..run_lock import RunLock
from .arguments import EvaluateArguments, parse_evaluate_args
from .comparison import write_comparison
from .completions import completions_for, load_model_and_tokenizer, model_folders
from .eval_sets import load_prompts
from .judge import JudgeArguments, JudgeSettings

logger = logging.getLogger("tinystories.evaluate")


def metric_kwargs(args: EvaluateArguments) -> dict[str, Any]:
    """What the GPT-Eval metric gets: the recipe's judge keys, which are the metric's own (its request cache
    defaulting to ``output_dir/.cache``)."""
    names = [f.name for f in (*dataclasses.fields(JudgeArguments), *dataclasses.fields(JudgeSettings))]
    kwargs = {name: getattr(args, name) for name in names}
    kwargs["cache_dir"] = args.judge_llm().cache_dir
    return kwargs


def grade_completions(args: EvaluateArguments, prompts, completions) -> tuple[dict[str, Any], list[dict]]:
    import evaluate

    from ..metrics import GPT_EVAL

    metric = evaluate.load(GPT_EVAL, config_name=args.config_name)
    predictions = [text for texts in completions for text in texts]
    references = [p["reference"] for p, texts in zip(prompts, completions) for _ in texts]
    groups = [i for i, texts in enumerate(completions) for _ in texts]  # a prompt's completions: one cluster
    scores = metric.compute(
        predictions=predictions,
        references=references,
        groups=groups,
        return_samples=True,
        progress=args.progress,
        **metric_kwargs(args),
    )
    return scores, scores.pop("samples")


def _cost(usage: dict[str, Any], num_completions: int) -> dict[str, Any]:
    n = max(1, num_completions)
    requests = usage["requests_sent"] + usage["requests_cached"]
    return {
        "usd": usage["cost_usd"],
        "requests_per_completion": requests / n,
        "prompt_tokens_per_completion": usage["prompt_tokens"] / n,
        "completion_tokens_per_completion": usage["completion_tokens"] / n,
        "usd_per_completion": usage["cost_usd"] / n,
    }


def evaluate_model(args: EvaluateArguments, name_or_path: str, prompts: list[dict], folder: str) -> dict[str, Any]:
    """Sample, grade, probe (and check diversity of) one model; writes ``folder`` and returns ``results``."""
    from ..modeling import count_parameters
    from .diversity import run_diversity
    from .plots import plot_scores
    from .probes import run_probes

    os.makedirs(folder, exist_ok=True)
    print(f"Evaluating {name_or_path} -> {folder}")
    model, tokenizer = load_model_and_tokenizer(args, name_or_path)
    completions = completions_for(args, name_or_path, model, tokenizer, prompts, folder)
    probes, probe_records = run_probes(args, model, tokenizer) if args.probes else ({}, [])
    diversity = run_diversity(args, model, tokenizer, folder) if args.diversity_file else None
    num_parameters = count_parameters(model)
    del model  # grading needs no model: free its memory for the judge's (possibly long) run
    scores, samples = grade_completions(args, prompts, completions)
    usage = scores.pop("usage")
    endpoint = args.llm_config().public_base_url()  # the recipe's, else OPENAI_BASE_URL; no credentials
    settings = {k: v for k, v in dataclasses.asdict(args).items() if k not in ("model_name_or_path", "prices")}
    settings["base_url"] = endpoint if args.base_url else None  # the recipe as written
    results: dict[str, Any] = {
        "model_name_or_path": name_or_path,
        "num_parameters": num_parameters,
        "config_name": args.config_name,
        "judge_model": args.judge_model,
        "prompt_style": args.prompt_style,
        "base_url": endpoint,
        "num_prompts": len(prompts),
        "num_completions": args.num_completions,
        "scores": scores,
        "usage": usage,
        "cost": _cost(usage, len(samples)),
        "probes": probes,
        "diversity": diversity,
        "settings": settings,
        "files": {
            "samples": "samples.jsonl",
            "completions": "completions.jsonl",
            "plot": "gpt_eval.png",
            **({"diversity": "diversity.json", "diversity_plot": "diversity.png"} if diversity else {}),
        },
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(os.path.join(folder, "samples.jsonl"), "w", encoding="utf-8") as f:
        flat = [(p, k, text) for p, texts in zip(prompts, completions) for k, text in enumerate(texts)]
        for (prompt, k, text), sample in zip(flat, samples):
            row = {"prompt_id": prompt["id"], "k": k, "prompt": prompt["prompt"], "completion": text, **sample}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        for record in probe_records:
            f.write(json.dumps({"probe": True, **record}, ensure_ascii=False) + "\n")
    plot_scores(results, os.path.join(folder, "gpt_eval.png"))
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    _print_summary(results)
    return results


def _print_summary(results: dict[str, Any]) -> None:
    scores, usage = results["scores"], results["usage"]
    axes = [a for a in ("grammar", "creativity", "consistency", "plot") if a in scores]
    line = ", ".join(f"{a} {scores[a]:.2f} [{scores[a + '_ci'][0]:.2f}, {scores[a + '_ci'][1]:.2f}]" for a in axes)
    print(f"{results['model_name_or_path']}: {line}")
    print(
        f"  graded {scores['num_graded']}, ungraded {scores['num_ungraded']}; judge requests sent "
        f"{usage['requests_sent']}, cached {usage['requests_cached']}; cost ${usage['cost_usd']:.4f}"
    )
    reasons = scores.get("ungraded_reasons") or {}
    if reasons:
        print("  ungraded: " + ", ".join(f"{reason} {count}" for reason, count in reasons.items()))
    for category, probe in (results.get("probes") or {}).items():
        print(f"  probe {category}: {probe['passed']}/{probe['total']}")


def run(args: EvaluateArguments) -> list[dict[str, Any]]:
    if not args.model_name_or_path:
        raise EvaluationError("model_name_or_path is required: a model folder or Hub id, or a list of them")
    prompts = load_prompts(args)
    os.makedirs(args.output_dir, exist_ok=True)
    folders = model_folders(args.model_name_or_path)
    with RunLock(args.output_dir, args.judge_llm().cache_dir, purpose="evaluate"):  # one run per folder
        all_results = [
            evaluate_model(args, name, prompts, os.path.join(args.output_dir, folder))
            for name, folder in zip(args.model_name_or_path, folders)
        ]
        if len(all_results) > 1:
            write_comparison(args, all_results)
    return all_results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    return run(parse_evaluate_args(logging_from_argv(sys.argv[1:] if argv is None else argv)))
