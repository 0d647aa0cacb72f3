"""The three pushes: a trained model, a generated dataset, a metric (as a Gradio Space). Each builds its card and
its upload plan in memory (PATH is never written to) and commits it with ``upload.publish``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from ..errors import PushError
from ..recipes import RECIPE_FILE
from .dataset_card import check_dataset_card, render_dataset_card
from .eval_results import model_eval_files
from .metric_space import check_space_requirement, metric_folder, stage_metric
from .model_card import DEFAULT_MODEL_LICENSE, render_model_card
from .model_folder import check_model_folder, read_results
from .recipe_publishing import published_recipe
from .upload import (
    COMMON_IGNORE_PATTERNS,
    DATASET_IGNORE_PATTERNS,
    MODEL_IGNORE_PATTERNS,
    PushOptions,
    plan_upload,
    publish,
)

#: ``card``: ``render`` uploads a rendered card as README.md, ``keep`` the folder's own README.md as is.
CARD_MODES = ("render", "keep")


def _check_card_mode(card: str, folder: str) -> bool:
    """True to render the card; ``keep`` needs the folder's README.md."""
    if card not in CARD_MODES:
        raise PushError(f"card must be one of {', '.join(CARD_MODES)}, not {card!r}")
    if card == "keep" and not os.path.isfile(os.path.join(folder, "README.md")):
        raise PushError(f"--card keep: {folder} has no README.md")
    return card == "render"


def push_model(
    model_dir: str,
    repo_id: str,
    options: PushOptions | None = None,
    *,
    eval_results: list[str] | None = None,
    license: str = DEFAULT_MODEL_LICENSE,
    tags: list[str] | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    card: str = "render",
) -> dict[str, Any]:
    """Upload the output folder of ``tinystories train`` with its card, its published ``recipe.yaml`` and the
    GPT-Eval ``eval_results`` files (``results.json`` paths; ``model_dir/gpt_eval_results.json`` counts too).
    ``tags`` are added to the card's; ``base_model``/``datasets`` replace what training recorded."""
    options = options or PushOptions()
    check_model_folder(model_dir)
    render = _check_card_mode(card, model_dir)
    results, files, exclude = model_eval_files(model_dir, eval_results)
    _, recipe_bytes = published_recipe(model_dir, read_results(model_dir))
    if recipe_bytes is not None:
        files[RECIPE_FILE] = recipe_bytes
    rendered = None
    if render:
        rendered = str(
            render_model_card(
                model_dir,
                results,
                repo_id,
                license=license,
                tags=tags,
                base_model=base_model,
                datasets=datasets,
                revision=options.revision,
            )
        )
        files["README.md"] = rendered.encode("utf-8")
    return publish(plan_upload(model_dir, MODEL_IGNORE_PATTERNS, files, exclude), repo_id, "model", rendered, options)


def push_dataset(
    dataset_dir: str,
    repo_id: str,
    options: PushOptions | None = None,
    *,
    license: str | None = None,
    card: str = "render",
) -> dict[str, Any]:
    """Upload the output folder of ``tinystories generate``: its Parquet files, ``generation.json`` and the card
    rendered again with the Hub id (``license``: None for the card's default), never the request cache."""
    options = options or PushOptions()
    if not os.path.isdir(dataset_dir):
        raise PushError(f"{dataset_dir} is not a folder (pass the output_dir of tinystories generate)")
    files, rendered = {}, None
    if _check_card_mode(card, dataset_dir):
        rendered = str(render_dataset_card(dataset_dir, repo_id, license, options.revision))
        files["README.md"] = rendered.encode("utf-8")
    else:
        from huggingface_hub import DatasetCard

        check_dataset_card(dataset_dir, DatasetCard.load(os.path.join(dataset_dir, "README.md")))
    return publish(plan_upload(dataset_dir, DATASET_IGNORE_PATTERNS, files), repo_id, "dataset", rendered, options)


def push_metric(
    metric_path: str,
    repo_id: str,
    options: PushOptions | None = None,
    *,
    requirement: str | None = None,
    staging_dir: str | None = None,
) -> dict[str, Any]:
    """Publish an ``evaluate`` metric module (``-``: the bundled GPT-Eval) as a Gradio Space, staged in
    ``staging_dir`` (default: a temporary folder). ``requirement``: the ``requirements.txt`` line that installs
    tinystories, required unless ``dry_run`` (which stages a marked placeholder)."""
    options = options or PushOptions()
    folder = metric_folder(metric_path)
    if not options.dry_run:
        check_space_requirement(requirement)
    with contextlib.ExitStack() as stack:
        staging = staging_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="tinystories-space-"))
        os.makedirs(staging, exist_ok=True)
        stage_metric(folder, staging, repo_id, requirement)
        with open(os.path.join(staging, "README.md"), encoding="utf-8") as f:
            rendered = f.read()
        return publish(plan_upload(staging, COMMON_IGNORE_PATTERNS), repo_id, "metric", rendered, options)
