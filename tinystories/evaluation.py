"""``tinystories evaluate RECIPE.yaml``: sample completions from one or several models and grade them with GPT-Eval.

For each model (``model_name_or_path``, one or a list):

1. sample ``num_completions`` completions per prompt (the bundled story beginnings that stop mid-sentence, or the
   instruct instruction sets with ``config_name: instruct``) at ``temperature`` 1 with batched generation;
   the completions are saved (``completions.jsonl``) and reused by a re-run with the same settings, so the
   judge's request cache is hit and nothing already paid for is paid again;
2. grade them with the GPT-Eval metric module (``evaluate.load(tinystories.metrics.GPT_EVAL)``);
3. run the paper's probes (factual knowledge, reasoning, context tracking) with the keyword check (free: no judge);
4. optionally, the paper's diversity check on cut training stories (``diversity_file``);
5. write ``results.json`` (scores, CIs, settings, judge, cost), ``samples.jsonl`` (every completion with its
   grades) and ``gpt_eval.png`` into ``output_dir/<model>/``.

With several models, ``output_dir/comparison.{json,md,png}`` compare them (the paper's scores-by-size figure).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from .eval_sets import PROBE_CATEGORIES, load_instruct_prompts, load_probes, load_story_beginnings, probe_passed
from .instruct import PARTS

logger = logging.getLogger("tinystories.evaluate")

CONFIGS = ("default", "instruct")


class EvaluationError(ValueError):
    """A user error of an evaluation (no model, unusable prompts): one line on the command line."""


@dataclass
class EvaluateArguments:
    """Recipe keys of ``tinystories evaluate``."""

    model_name_or_path: list[str] = field(
        default_factory=list,
        metadata={"help": "Model folder(s) or Hub id(s) to evaluate; several models also get a comparison."},
    )
    judge_model: str = field(default="gpt-4o", metadata={"help": "The judge, as the server knows it."})
    base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible endpoint(s) of the judge (default: OPENAI_BASE_URL or OpenAI)."},
    )
    config_name: str = field(
        default="default",
        metadata={"help": "default: complete story beginnings; instruct: write stories from instructions."},
    )
    prompts_file: str | None = field(
        default=None,
        metadata={"help": "JSONL of prompts (default: the bundled evaluation set of the config)."},
    )
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})
    num_completions: int = field(default=10, metadata={"help": "Completions sampled per prompt."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the model (0: greedy)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the model (1: pure sampling)."})
    max_new_tokens: int = field(default=200, metadata={"help": "Longest completion (tokens)."})
    batch_size: int = field(default=64, metadata={"help": "Rows per generate call."})
    seed: int = field(default=42, metadata={"help": "Seed of the sampling."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if any)."})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16."})
    output_dir: str = field(default="outputs/gpt_eval", metadata={"help": "Where results are written."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Judge request cache (default: output_dir/.cache). Never pay twice."}
    )
    max_concurrency: int = field(default=16, metadata={"help": "Judge requests in flight at once."})
    max_retries: int = field(default=6, metadata={"help": "Retries of a failed judge request."})
    request_timeout: float = field(default=120.0, metadata={"help": "Seconds before a judge request times out."})
    judge_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature of the judge."})
    judge_max_tokens: int = field(default=400, metadata={"help": "Longest judge reply (tokens)."})
    max_reasks: int = field(default=2, metadata={"help": "Re-asks of an unreadable grade reply."})
    structured_output: bool = field(default=False, metadata={"help": "Ask for the grades as JSON with a schema."})
    logprobs: bool = field(default=True, metadata={"help": "Ask for logprobs: probability-weighted grades."})
    budget_usd: float | None = field(default=None, metadata={"help": "Hard cap on the judge's cost for this run."})
    prices: dict | str | None = field(
        default=None, metadata={"help": "USD per 1M tokens for judges not in the built-in table: {model: [in, out]}."}
    )
    probes: bool = field(default=True, metadata={"help": "Run the factual/reasoning/context probes (no judge)."})
    probes_file: str | None = field(default=None, metadata={"help": "JSONL of probes (default: the bundled set)."})
    diversity_file: str | None = field(
        default=None,
        metadata={"help": "Training stories (.txt/.jsonl/.parquet): run the diversity check on cut stories."},
    )
    diversity_num_stories: int = field(default=100, metadata={"help": "Training stories cut and completed."})
    diversity_max_train_stories: int | None = field(
        default=100_000, metadata={"help": "Training stories searched for the closest one (null: all)."}
    )
    progress: bool = field(default=True, metadata={"help": "Progress bars."})

    def __post_init__(self) -> None:
        if isinstance(self.model_name_or_path, str):
            self.model_name_or_path = [self.model_name_or_path]
        if isinstance(self.prices, str):
            import yaml

            self.prices = yaml.safe_load(self.prices)
        if self.config_name not in CONFIGS:
            raise ValueError(f"config_name must be one of {', '.join(CONFIGS)}, got {self.config_name!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        self.sampling()  # checks num_completions, temperature, top_p, max_new_tokens, batch_size

    def sampling(self, **overrides: Any):
        """The model's sampling settings (``tinystories.sampling.SamplingSettings``)."""
        from .sampling import SamplingSettings

        settings = dict(
            num_completions=self.num_completions,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        return SamplingSettings(**{**settings, **overrides})

    def judge_settings(self) -> dict[str, Any]:
        """The GPT-Eval metric's settings (``evaluate.load`` keyword arguments)."""
        return {
            "judge_model": self.judge_model,
            "base_url": self.base_url,
            "max_concurrency": self.max_concurrency,
            "judge_cache_dir": self.cache_dir or os.path.join(self.output_dir, ".cache"),
            "temperature": self.judge_temperature,
            "max_tokens": self.judge_max_tokens,
            "max_reasks": self.max_reasks,
            "max_retries": self.max_retries,
            "request_timeout": self.request_timeout,
            "budget_usd": self.budget_usd,
            "structured_output": self.structured_output,
            "logprobs": self.logprobs,
            "prices": {m: tuple(p) for m, p in (self.prices or {}).items()},
            "progress": self.progress,
        }


# -- prompts --------------------------------------------------------------------------------------------------------
def instruct_prompt(instructions: dict) -> tuple[str, str]:
    """``(model input, the instructions shown to the judge)`` of an instruction set, in the TinyStories-Instruct
    layout the models are trained on (``Summary: / Features: / Random sentence: / Words:`` then ``Story:``)."""
    values = {
        "Summary": instructions.get("summary") or "",
        "Features": ", ".join(instructions.get("features") or []),
        "Random sentence": instructions.get("sentence") or "",
        "Words": ", ".join(instructions.get("words") or []),
    }
    lines = [f"{part}: {values[part]}" for part in PARTS if values[part]]
    if not lines:
        raise EvaluationError(f"instruction set {instructions.get('id', '?')} has no instruction")
    return "\n".join([*lines, "Story: ", ""]), "\n".join(lines)


def load_prompts(args: EvaluateArguments) -> list[dict[str, str]]:
    """``[{"id", "prompt" (the model's input), "reference" (what the judge sees before the completion)}]``."""
    if args.prompts_file and not os.path.isfile(args.prompts_file):
        raise EvaluationError(f"prompts_file {args.prompts_file} does not exist")
    try:
        return _load_prompts(args)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise EvaluationError(f"unusable prompts_file {args.prompts_file}: {e}") from e


def _load_prompts(args: EvaluateArguments) -> list[dict[str, str]]:
    if args.config_name == "default":
        rows = load_story_beginnings(args.prompts_file)
        prompts = []
        for number, row in enumerate(rows, 1):
            if not isinstance(row.get("beginning"), str) or not row["beginning"].strip():
                raise EvaluationError(
                    f"{args.prompts_file or 'story_beginnings.jsonl'}, line {number}: no 'beginning'"
                )
            prompts.append(
                {"id": str(row.get("id", number)), "prompt": row["beginning"], "reference": row["beginning"]}
            )
    else:
        prompts = []
        for number, row in enumerate(load_instruct_prompts(args.prompts_file), 1):
            model_input, shown = instruct_prompt(row)
            prompts.append({"id": str(row.get("id", number)), "prompt": model_input, "reference": shown})
    if not prompts:
        raise EvaluationError(f"no prompts in {args.prompts_file}")
    return prompts[: args.max_prompts] if args.max_prompts else prompts


# -- one model ------------------------------------------------------------------------------------------------------
def model_slug(name_or_path: str) -> str:
    """A folder name for a model: the last path part of a folder, ``owner__name`` for a Hub id."""
    path = name_or_path.rstrip("/\\")
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path))
    return re.sub(r"[^A-Za-z0-9._-]+", "__", path)


def model_folders(names: list[str]) -> list[str]:
    """One distinct folder name per model: ``model_slug``, with ``-2``, ``-3`` ... when two models share a name
    (``runs/a/final`` and ``runs/b/final``), so no model's results overwrite another's."""
    folders: list[str] = []
    for name in names:
        slug, number = model_slug(name), 1
        while (folder := slug if number == 1 else f"{slug}-{number}") in folders:
            number += 1
        folders.append(folder)
    return folders


def _load(args: EvaluateArguments, name_or_path: str):
    import torch
    from transformers import AutoTokenizer

    from .models import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = load_model(name_or_path, dtype=getattr(torch, args.dtype), device=device)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except OSError as e:  # not a model folder, not a Hub id, no network: transformers' message says which
        raise EvaluationError(f"cannot load the model {name_or_path}: {str(e).splitlines()[0]}") from e
    return model, tokenizer


def _weights_fingerprint(name_or_path: str, model) -> Any:
    """What identifies the weights: the files' sizes and times in a folder, the commit of a Hub model."""
    if os.path.isdir(name_or_path):
        return sorted(
            (name, os.path.getsize(path), int(os.path.getmtime(path)))
            for name in os.listdir(name_or_path)
            if name.endswith((".safetensors", ".bin")) and os.path.isfile(path := os.path.join(name_or_path, name))
        )
    return getattr(model.config, "_commit_hash", None)


def _public_url(url: str | None) -> str | None:
    """``url`` without any ``user:password@`` part (results are meant to be shared)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return (
        urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
        if (parts.username or parts.password)
        else url
    )


def _sampling_fingerprint(args: EvaluateArguments, name_or_path: str, model, prompts: list[dict]) -> dict[str, Any]:
    return {
        "model_name_or_path": name_or_path,
        "weights": _weights_fingerprint(name_or_path, model),
        "prompts": [p["prompt"] for p in prompts],
        "num_completions": args.num_completions,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "dtype": args.dtype,
    }


def completions_for(args, name_or_path, model, tokenizer, prompts, folder) -> list[list[str]]:
    """Sampled completions, or those of a previous run with the same settings (``completions.jsonl``)."""
    from .sampling import sample_completions

    path = os.path.join(folder, "completions.jsonl")
    fingerprint = json.loads(json.dumps(_sampling_fingerprint(args, name_or_path, model, prompts)))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        if lines and lines[0].get("settings") == fingerprint:
            rows = lines[1:]
            if len(rows) == len(prompts) * args.num_completions:
                print(f"Reusing the {len(rows)} completions of {path} (same model, prompts and sampling settings)")
                completions = [[""] * args.num_completions for _ in prompts]
                for row in rows:
                    completions[row["prompt_index"]][row["k"]] = row["completion"]
                return completions
    try:
        completions = sample_completions(
            model,
            tokenizer,
            [p["prompt"] for p in prompts],
            args.sampling(),
            progress=args.progress,
            desc="completions",
        )
    except ValueError as e:  # a prompt too long for the model's context: the prompts or max_new_tokens must change
        raise EvaluationError(f"{name_or_path}: {e}") from e
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"settings": fingerprint}, ensure_ascii=False) + "\n")
        for i, texts in enumerate(completions):
            for k, text in enumerate(texts):
                f.write(json.dumps({"prompt_index": i, "k": k, "completion": text}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return completions


def run_probes(args: EvaluateArguments, model, tokenizer) -> tuple[dict[str, Any], list[dict]]:
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


def run_diversity(args: EvaluateArguments, model, tokenizer, folder: str) -> dict[str, Any]:
    """The paper's diversity check: complete cut training stories; Rouge-2 against the truth, the other
    completions and the closest training story; ``diversity.json`` and ``diversity.png``."""
    from .data import load_data_file
    from .diversity import cut_story, diversity_report, plot_diversity
    from .sampling import sample_completions

    stories = [s for s in load_data_file(args.diversity_file)["text"] if s and s.strip()]
    if args.diversity_max_train_stories:
        stories = stories[: args.diversity_max_train_stories]
    rng = random.Random(args.seed)
    chosen = sorted(rng.sample(range(len(stories)), min(args.diversity_num_stories, len(stories))))
    cuts = [cut_story(stories[i], rng) for i in chosen]
    outputs = sample_completions(
        model,
        tokenizer,
        [b for b, _ in cuts],
        args.sampling(num_completions=1),
        progress=args.progress,
        desc="diversity",
    )
    completions = [texts[0] for texts in outputs]
    report = diversity_report(
        completions, [c for _, c in cuts], stories, source_indices=chosen, progress=args.progress
    )
    summary = report.summary()
    with open(os.path.join(folder, "diversity.json"), "w", encoding="utf-8") as f:
        samples = [
            {"story_index": i, "beginning": b, "true_continuation": c, "completion": comp}
            for i, (b, c), comp in zip(chosen, cuts, completions)
        ]
        json.dump({"summary": summary, "report": report.to_dict(), "samples": samples}, f, indent=2)
    plot_diversity(report, os.path.join(folder, "diversity.png"), title=f"Diversity: {os.path.basename(folder)}")
    return {"num_stories": len(chosen), "num_train_stories": len(stories), **summary}


def grade_completions(args: EvaluateArguments, prompts, completions) -> tuple[dict[str, Any], list[dict]]:
    import evaluate

    from .metrics import GPT_EVAL

    metric = evaluate.load(GPT_EVAL, config_name=args.config_name, **args.judge_settings())
    predictions = [text for texts in completions for text in texts]
    references = [p["reference"] for p, texts in zip(prompts, completions) for _ in texts]
    scores = metric.compute(predictions=predictions, references=references, return_samples=True)
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
    from .models import count_parameters
    from .plots import plot_scores

    os.makedirs(folder, exist_ok=True)
    print(f"Evaluating {name_or_path} -> {folder}")
    model, tokenizer = _load(args, name_or_path)
    completions = completions_for(args, name_or_path, model, tokenizer, prompts, folder)
    probes, probe_records = run_probes(args, model, tokenizer) if args.probes else ({}, [])
    diversity = run_diversity(args, model, tokenizer, folder) if args.diversity_file else None
    num_parameters = count_parameters(model)
    del model  # grading needs no model: free its memory for the judge's (possibly long) run
    scores, samples = grade_completions(args, prompts, completions)
    usage = scores.pop("usage")
    settings = {k: v for k, v in asdict(args).items() if k not in ("model_name_or_path", "prices")}
    settings["base_url"] = _public_url(settings["base_url"])
    results: dict[str, Any] = {
        "model_name_or_path": name_or_path,
        "num_parameters": num_parameters,
        "config_name": args.config_name,
        "judge_model": args.judge_model,
        "base_url": _public_url(args.base_url or os.environ.get("OPENAI_BASE_URL")),
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
    for category, probe in (results.get("probes") or {}).items():
        print(f"  probe {category}: {probe['passed']}/{probe['total']}")


# -- several models -------------------------------------------------------------------------------------------------
def comparison_table(all_results: list[dict[str, Any]]) -> str:
    """A markdown table: one row per model, sorted by size, with each axis' mean and 95% interval."""
    axes = [a for a in ("grammar", "creativity", "consistency", "plot") if a in all_results[0]["scores"]]
    header = ["model", "parameters", *axes, "graded", "cost (USD)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in sorted(all_results, key=lambda r: r["num_parameters"]):
        s = r["scores"]
        cells = [f"`{r['model_name_or_path']}`", f"{r['num_parameters'] / 1e6:.2f}M"]
        cells += [f"{s[a]:.2f} [{s[a + '_ci'][0]:.2f}, {s[a + '_ci'][1]:.2f}]" for a in axes]
        cells += [f"{s['num_graded']}/{s['num_graded'] + s['num_ungraded']}", f"{r['usage']['cost_usd']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(args: EvaluateArguments, all_results: list[dict[str, Any]]) -> None:
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


def run(args: EvaluateArguments) -> list[dict[str, Any]]:
    if not args.model_name_or_path:
        raise EvaluationError("model_name_or_path is required: a model folder or Hub id, or a list of them")
    prompts = load_prompts(args)
    os.makedirs(args.output_dir, exist_ok=True)
    folders = model_folders(args.model_name_or_path)
    all_results = [
        evaluate_model(args, name, prompts, os.path.join(args.output_dir, folder))
        for name, folder in zip(args.model_name_or_path, folders)
    ]
    if len(all_results) > 1:
        write_comparison(args, all_results)
    return all_results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from .arguments import RecipeError, RecipeParser

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    parser = RecipeParser(classes=(EvaluateArguments,), prog="tinystories evaluate")
    (args,) = parser.parse(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except EvaluationError as e:
        raise RecipeError(str(e)) from e
