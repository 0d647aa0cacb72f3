"""``tinystories reproduce RECIPE.yaml``: the paper's experiment end to end and resumable. The data (generated or
an existing dataset), one tokenizer, a family of models trained on the same tokens, eval loss and GPT-Eval of each,
and a report in the paper's Figure 4 layout (docs/reproduce.md). This entry-layer orchestrator chains the training,
synth, evaluation and hub pipelines through their public run functions and the files they write."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from ..errors import RecipeError
from .recipe import STAGES, ReproduceRecipe, load_reproduce_recipe, parse_recipe
from .runner import Reproduction

USAGE = """usage: tinystories reproduce RECIPE.yaml [--KEY VALUE ...] [--SECTION.KEY VALUE ...]
                             [--until STAGE] [--estimate_only] [--push ORG [--private] [--dry_run]]

Runs the stages data -> tokenizer -> models -> evaluate -> report of RECIPE.yaml in its output_dir, skipping each
stage done before with the same settings and inputs; a killed run resumes (a model from its last checkpoint).

  --output_dir DIR, --name NAME   top-level recipe keys
  --train.max_tokens 100000       any key of a section (values are read as YAML)
  --until STAGE                   stop after STAGE: one of data, tokenizer, models, evaluate, report
  --estimate_only                 print the estimated GPU-hours and judge cost, run nothing
  --push ORG                      publish every model, the dataset and the report to ORG on the Hub
                                  (a dry run, listing the files, without a token or with --dry_run)
  --private                       create the pushed repositories private
"""

FLAGS = ("estimate_only", "private", "dry_run")
OPTIONS = ("until", "push")


def parse_command_line(argv: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(recipe path, {option: value}, {recipe override key: value})``."""
    if not argv or argv[0].startswith("-"):
        raise RecipeError("tinystories reproduce needs a RECIPE.yaml first (see --help)")
    path, rest = argv[0], argv[1:]
    options: dict[str, Any] = {flag: False for flag in FLAGS}
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--") or len(token) == 2:
            raise RecipeError(f"Unexpected argument {token!r}: options are written --key value")
        key, eq, value = token[2:].partition("=")
        key = key.replace("-", "_") if "." not in key else key
        if key in FLAGS:
            options[key] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(rest):
                raise RecipeError(f"--{key} needs a value")
            value, i = rest[i + 1], i + 1
        i += 1
        if key in OPTIONS:
            options[key] = value
        else:
            overrides[key] = yaml.safe_load(value)
    if options.get("until") and options["until"] not in STAGES:
        raise RecipeError(f"--until must be one of {', '.join(STAGES)}, got {options['until']!r}")
    if options.get("push") and options.get("until") not in (None, "report"):
        raise RecipeError("--push publishes the report too: drop --until")
    return path, options, overrides


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        raise SystemExit(0)
    path, options, overrides = parse_command_line(argv)
    reproduction = Reproduction(load_reproduce_recipe(path, overrides), until=options.get("until"))
    estimate = reproduction.estimate()
    print(estimate["text"], flush=True)
    if options["estimate_only"]:
        return {"estimate": estimate}
    summary = reproduction.run()
    summary["estimate"] = estimate
    if options.get("push"):
        from .push import push_all

        summary["pushes"] = push_all(reproduction, options["push"], options["private"], options["dry_run"])
    return summary


__all__ = ["Reproduction", "ReproduceRecipe", "load_reproduce_recipe", "main", "parse_recipe"]
