"""The stages of ``tinystories reproduce`` in order (data -> tokenizer -> each model -> each evaluation -> report),
each skipped when its manifest says it is done under the current key, with one overall progress bar and a summary
of what ran and what was skipped."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from . import stages
from .estimate import format_estimate, judge_estimate, training_estimate
from .family import count_parameters, launcher, model_specs, planned_tokens, train_values
from .manifest import Manifests, Stage, digest, files_fingerprint
from .recipe import STAGES, ReproduceRecipe
from .report import build_report, write_report


@dataclass
class Step:
    """A stage to plan: its name, kind (one of ``STAGES``), upstream step names, how to build its ``Stage`` from
    the upstream hashes, and how to run it."""

    name: str
    kind: str
    deps: list[str]
    stage: Callable[[dict[str, str]], Stage]
    run: Callable[[Stage], dict[str, Any]]


class Reproduction:
    """One recipe's plan: the family, each model's train recipe, the evaluation settings, the steps."""

    def __init__(self, recipe: ReproduceRecipe, until: str | None = None):
        self.recipe = recipe
        self.until = until or STAGES[-1]
        self.manifests = Manifests(recipe.output_dir)
        self.specs = model_specs(recipe)
        self.train_values = {spec.name: train_values(recipe, spec) for spec in self.specs}
        self.configs = list(recipe.evaluate.configs)
        placeholder = recipe.path("models", self.specs[0].name)
        self.judge_args = {
            c: stages.evaluate_args(stages.evaluate_values(recipe, placeholder, c)) for c in self.configs
        }
        self.steps = [s for s in self._steps() if STAGES.index(s.kind) <= STAGES.index(self.until)]

    # --- the plan ---------------------------------------------------------------------------------------------
    def _steps(self) -> list[Step]:
        r = self.recipe
        steps = [
            Step(
                "data",
                "data",
                [],
                lambda _: Stage(
                    "data",
                    "data",
                    {"data": dataclasses.asdict(r.data)},
                    {"files": digest(files_fingerprint(stages.data_inputs(r)))},
                    stages.data_outputs(r),
                ),
                lambda _: stages.run_data(r),
            ),
            Step(
                "tokenizer",
                "tokenizer",
                ["data"],
                lambda h: Stage(
                    "tokenizer",
                    "tokenizer",
                    {"tokenizer": dataclasses.asdict(r.tokenizer), "seed": r.train_keys.get("seed", 42)},
                    h,
                    [r.path("tokenizer", "tokenizer.json")],
                ),
                lambda _: stages.run_tokenizer(r),
            ),
        ]
        for spec in self.specs:
            values = self.train_values[spec.name]
            settings = {"train": values, "model": dataclasses.asdict(spec), "launcher": launcher(r)}
            steps.append(
                Step(
                    f"model-{spec.name}",
                    "models",
                    ["data", "tokenizer"],
                    lambda h, s=settings, n=spec.name, v=values: Stage(
                        f"model-{n}", "models", s, h, stages.model_outputs(v["output_dir"])
                    ),
                    lambda stage, spec=spec, v=values: stages.run_model(r, stage, spec, v, self.manifests),
                )
            )
        for config in self.configs:
            for spec in self.specs:
                values = stages.evaluate_values(r, os.path.abspath(self.train_values[spec.name]["output_dir"]), config)
                steps.append(
                    Step(
                        f"eval-{config}-{spec.name}",
                        "evaluate",
                        [f"model-{spec.name}"],
                        lambda h, v=values, n=f"eval-{config}-{spec.name}": Stage(
                            n, "evaluate", {"evaluate": stages.result_settings(v)}, h, [stages.results_path(v)]
                        ),
                        lambda _, v=values: stages.run_evaluation(v),
                    )
                )
        upstream = [s.name for s in steps if s.kind in ("models", "evaluate")]
        steps.append(
            Step(
                "report",
                "report",
                upstream,
                lambda h: Stage(
                    "report",
                    "report",
                    {"report": dataclasses.asdict(r.report), "configs": self.configs, "version": 1},
                    h,
                    [r.path("report", "report.md"), r.path("report", "report.json")],
                ),
                lambda _: {"report": self.write_report()},
            )
        )
        return steps

    def pending(self) -> list[str]:
        """Names of the steps that would run now (the others are done under their current key)."""
        hashes: dict[str, str] = {}
        pending: list[str] = []
        for step in self.steps:
            if any(d in pending or d not in hashes for d in step.deps):
                pending.append(step.name)
                continue
            manifest = self.manifests.done(step.stage({d: hashes[d] for d in step.deps}))
            if manifest:
                hashes[step.name] = manifest["hash"]
            else:
                pending.append(step.name)
        return pending

    # --- estimate ---------------------------------------------------------------------------------------------
    def estimate(self) -> dict[str, Any]:
        vocab = self.recipe.tokenizer.vocab_size
        models = [
            {
                "name": spec.name,
                "num_parameters": count_parameters(spec, vocab),
                "tokens": planned_tokens(self.recipe, self.train_values[spec.name]),
            }
            for spec in self.specs
        ]
        training = training_estimate(models, self.recipe.report.gpu_flops)
        judges = []
        from ..evaluation import load_prompts

        for config, args in self.judge_args.items():
            judge = judge_estimate(
                args.judge_model,
                args.prices,
                len(self.specs),
                len(load_prompts(args)),
                args.num_completions,
                args.max_new_tokens,
                self.recipe.report.judge_reply_tokens,
            )
            judges.append({**judge, "config": config})
        return {"training": training, "judges": judges, "text": format_estimate(training, judges)}

    # --- running ----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        start = time.monotonic()
        os.makedirs(self.recipe.output_dir, exist_ok=True)
        with open(self.recipe.path("reproduce.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(self.recipe.source, f, sort_keys=False)
        pending = self.pending()
        skipped = [s.name for s in self.steps if s.name not in pending]
        if skipped:
            stages.notice(f"skipping {len(skipped)} stages done before: {', '.join(skipped)}")
        hashes: dict[str, str] = {}
        ran = []
        bar = tqdm(total=len(pending), position=0, desc="reproduce", unit="stage", dynamic_ncols=True)
        try:
            for step in self.steps:
                stage = step.stage({d: hashes[d] for d in step.deps})
                manifest = self.manifests.done(stage)
                if manifest is None:
                    bar.set_postfix_str(step.name)
                    stages.notice(f"running {step.name}")
                    began = time.monotonic()
                    result = step.run(stage)
                    manifest = self.manifests.complete(stage, {**result, "seconds": time.monotonic() - began})
                    ran.append(step.name)
                    bar.update(1)
                hashes[step.name] = manifest["hash"]
        finally:
            bar.close()
        seconds = time.monotonic() - start
        stages.notice(
            f"done in {seconds:.0f} s: ran {len(ran)} stages ({', '.join(ran) or 'none'}); skipped {len(skipped)} "
            f"as done ({', '.join(skipped) or 'none'})"
        )
        report = self.recipe.path("report", "report.md") if "report" in hashes else None
        return {"ran": ran, "skipped": skipped, "seconds": seconds, "report": report}

    # --- the report -------------------------------------------------------------------------------------------
    def results_path(self, config: str, spec) -> str:
        """Where the evaluation of ``spec`` with judge config ``config`` writes its ``results.json``."""
        model_dir = os.path.abspath(self.train_values[spec.name]["output_dir"])
        return stages.results_path(stages.evaluate_values(self.recipe, model_dir, config))

    def _results(self, config: str, spec) -> dict[str, Any]:
        with open(self.results_path(config, spec), encoding="utf-8") as f:
            return json.load(f)

    def report_context(self) -> dict[str, Any]:
        from ..evaluation import load_prompts

        r = self.recipe
        models, cost, sent, styles = [], 0.0, 0, {}
        for spec in self.specs:
            trained = self.manifests.read(f"model-{spec.name}")["result"]
            evaluations = {}
            for config in self.configs:
                results = self._results(config, spec)
                scores = results["scores"]
                cost += results["usage"].get("cost_usd", 0.0)
                sent += results["usage"].get("requests_sent", 0)
                style = scores.get("prompt_style") or results.get("settings", {}).get("prompt_style")
                styles[config] = style or getattr(self.judge_args[config], "prompt_style", None) or "not recorded"
                evaluations[config] = {
                    "scores": {a: scores[a] for a in ("grammar", "creativity", "consistency", "plot") if a in scores},
                    "intervals": {
                        a: scores[f"{a}_ci"]
                        for a in ("grammar", "creativity", "consistency", "plot")
                        if f"{a}_ci" in scores
                    },
                    "age_group": scores.get("age_group"),
                    "num_graded": scores.get("num_graded"),
                    "num_ungraded": scores.get("num_ungraded"),
                    "probes": results.get("probes"),
                    "diversity": results.get("diversity"),
                    "cost_usd": results["usage"].get("cost_usd", 0.0),
                }
            models.append(
                {
                    **dataclasses.asdict(spec),
                    "num_parameters": trained["num_parameters"],
                    "tokens": trained["num_input_tokens_seen"],
                    "eval_loss": trained["eval_loss"],
                    "perplexity": trained["perplexity"],
                    "global_step": trained["global_step"],
                    "train_runtime": trained["train_runtime"],
                    "resumed_from": trained["resumed_from"],
                    "model_dir": self.train_values[spec.name]["output_dir"],
                    "evaluations": evaluations,
                }
            )
        args = next(iter(self.judge_args.values()), None)
        data = self.manifests.read("data")["result"]
        if data["source"] == "generated":
            counts = ", ".join(f"{c['split']} {c['rows']}" for c in data["counts"] if c["config"] == "default")
            description = f"stories generated by {r.data.generate.get('model', 'the teacher')}: {counts}"
        else:
            description = r.data.dataset_name or r.data.train_file
        budget = (
            f"{r.train.max_tokens:,} tokens"
            if r.train.max_tokens
            else f"{r.train_keys['max_train_minutes']} minutes"
            if r.train_keys.get("max_train_minutes")
            else "the train section's steps"
        )
        return {
            "name": r.name,
            "models": models,
            "configs": self.configs,
            "judge": {
                "model": args.judge_model if args else None,
                "base_url": args.llm_config().public_base_url() if args else None,
                "prompt_style": styles,
                "num_prompts": len(load_prompts(args)) if args else 0,
                "num_completions": args.num_completions if args else 0,
                "cost_usd": cost,
                "requests_sent": sent,
            },
            "data": {**data, "description": description},
            "tokenizer": self.manifests.read("tokenizer")["result"],
            "training": {
                "budget": budget,
                "max_tokens": r.train.max_tokens,
                "launcher": launcher(r),
                "accelerate_config": r.train.accelerate_config,
                "num_heads": r.models.num_heads,
            },
        }

    def write_report(self) -> str:
        write_report(self.recipe.path("report"), build_report(self.report_context()))
        return self.recipe.path("report", "report.md")
