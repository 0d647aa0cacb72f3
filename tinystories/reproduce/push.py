"""``tinystories reproduce RECIPE --push ORG``: every model (with its GPT-Eval results on its card), the generated
dataset and the report, through ``tinystories.hub``'s pushes; a dry run (what would be pushed) without a token."""

from __future__ import annotations

import os
from typing import Any

from .runner import Reproduction
from .stages import notice


def has_token() -> bool:
    from huggingface_hub import get_token

    return bool(get_token())


def push_all(reproduction: Reproduction, org: str, private: bool = False, dry_run: bool = False) -> list[dict]:
    """Push to ``org/<name>-<model>``, ``org/<name>-data`` (when generated) and ``org/<name>-report``."""
    from ..hub import PushOptions, push_dataset, push_model
    from ..hub.upload import COMMON_IGNORE_PATTERNS, plan_upload, publish

    recipe = reproduction.recipe
    dry_run = dry_run or not has_token()
    if dry_run:
        notice("no Hugging Face token (HF_TOKEN or `hf auth login`): dry run, nothing is uploaded")
    options = PushOptions(private=private, dry_run=dry_run)
    pushes: list[dict[str, Any]] = []
    data_repo = f"{org}/{recipe.name}-data" if recipe.data.generate is not None else recipe.data.dataset_name
    if recipe.data.generate is not None:
        pushes.append({"kind": "dataset", **push_dataset(recipe.path("data"), data_repo, options)})
    for spec in reproduction.specs:
        model_dir = reproduction.train_values[spec.name]["output_dir"]
        results = [
            path for config in reproduction.configs if os.path.isfile(path := reproduction.results_path(config, spec))
        ]
        result = push_model(
            model_dir,
            f"{org}/{recipe.name}-{spec.name}",
            options,
            eval_results=results,
            tags=["tinystories-reproduce"],
            datasets=[data_repo] if data_repo and "/" in data_repo and not os.path.isdir(data_repo) else None,
        )
        pushes.append({"kind": "model", **result})
    report_dir = recipe.path("report")
    with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as f:
        card = f.read()
    plan = plan_upload(report_dir, COMMON_IGNORE_PATTERNS, {"README.md": card.encode("utf-8")})
    pushes.append({"kind": "report", **publish(plan, f"{org}/{recipe.name}-report", "dataset", card, options)})
    for push in pushes:
        where = push["url"] or push["repo_id"]
        verb = "would push" if dry_run else "pushed"
        notice(f"{verb} {push['kind']} {push['repo_id']}: {len(push['files'])} files ({where})")
        if dry_run:
            for name in push["files"]:
                print(f"    {name}")
    return pushes
