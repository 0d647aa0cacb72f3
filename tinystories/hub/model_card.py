"""The model card of a ``tinystories train`` output folder (``hub_cards/model_card.md``): its YAML (license, tags,
base model, datasets, the ``model-index`` of eval loss and GPT-Eval scores) and its text."""

from __future__ import annotations

import json
import os
from typing import Any

from ..recipes import RECIPE_FILE
from .architecture import describe_architecture
from .eval_results import gpt_eval_metrics, gpt_eval_rows
from .model_folder import check_model_folder, read_json, read_results
from .recipe_publishing import published_recipe
from .templates import card_template
from .training_record import eval_loss_result, eval_loss_text, recipe_rows, recorded_datasets, training_data_text

#: Tags of every model card; the architecture's tag (``gpt-neo``, or the ``model_type``) goes after the first.
MODEL_TAGS = ["tinystories", "text-generation"]
DEFAULT_MODEL_LICENSE = "apache-2.0"


def _safe_block(text: str) -> str:
    """Text safe inside a fenced code block."""
    return text.replace("```", "'''").strip()


def render_model_card(
    model_dir: str,
    eval_results: list[dict[str, Any]] | None = None,
    repo_id: str | None = None,
    *,
    license: str = DEFAULT_MODEL_LICENSE,
    tags: list[str] | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    revision: str | None = None,
):
    """The ``ModelCard`` of ``model_dir`` (docs/hub.md: what it reads). ``eval_results``: GPT-Eval ``results.json``
    contents (``load_eval_results``), for the ``model-index`` and a table; ``base_model``/``datasets`` replace what
    training recorded; ``repo_id`` and ``revision`` (a branch) go into the usage snippets."""
    from huggingface_hub import ModelCard, ModelCardData

    check_model_folder(model_dir)
    config = read_json(os.path.join(model_dir, "config.json"))
    adapter = read_json(os.path.join(model_dir, "adapter_config.json"))
    results = read_results(model_dir)
    recipe, sanitized = published_recipe(model_dir, results)
    eval_results = eval_results or []
    base_model = base_model or results.get("base_model")
    datasets = list(datasets) if datasets else recorded_datasets(recipe, results)
    model_name = (repo_id or os.path.basename(os.path.abspath(model_dir))).split("/")[-1]
    arch = describe_architecture(model_dir, config, adapter, results)
    adapters_only = bool(adapter and not config)

    model_index = gpt_eval_metrics(eval_results)
    if len(datasets) == 1:
        loss = eval_loss_result(results, recipe, datasets[0])
        if loss is not None:
            model_index.insert(0, loss)
    all_tags = MODEL_TAGS[:1] + ([arch.tag] if arch.tag else []) + MODEL_TAGS[1:]
    if arch.preset != "custom":
        all_tags.append(f"tinystories-{arch.preset}")
    if eval_results:
        all_tags.append("gpt-eval")
    all_tags += [t for t in tags or [] if t not in all_tags]
    card_data = ModelCardData(
        language="en",
        license=license,
        library_name="peft" if adapters_only else "transformers",
        pipeline_tag="text-generation",
        tags=all_tags,
        datasets=datasets or None,
        base_model=base_model,
        model_name=model_name if model_index else None,  # only the model-index needs it
        eval_results=model_index or None,
    )
    sample_prompt = recipe.get("sample_prompt", "Once upon a time")
    revision = revision if revision and revision != "main" else None
    if recipe:
        recipe_note = (
            f"The full recipe is `{RECIPE_FILE}` in this repository: `tinystories train {RECIPE_FILE}` runs it again"
        )
        recipe_note += (
            " (local paths in it are reduced to their names: point them at your own files)." if sanitized else "."
        )
    else:
        recipe_note = "The recipe was not recorded."
    return ModelCard.from_template(
        card_data,
        template_str=card_template("model_card.md"),
        model_name=model_name,
        model_kind=arch.kind,
        checkpoint_text=(
            f"It is a stock `{arch.model_class}` checkpoint: plain `transformers` loads it, without `tinystories`."
            if arch.model_class
            else "Plain `transformers` loads it, without `tinystories`."
        ),
        repo_id=repo_id or os.path.abspath(model_dir),
        revision=revision,
        revision_arg=f", revision={json.dumps(revision)}" if revision else "",
        gpt_neo=arch.gpt_neo,
        architecture=arch.table,
        architecture_rows=arch.rows,
        architecture_note=arch.note,
        training_data=training_data_text(recipe, results, datasets),
        recipe_rows=recipe_rows(recipe, results, base_model),
        recipe_note=recipe_note,
        eval_loss_text=eval_loss_text(results),
        gpt_eval_rows=gpt_eval_rows(eval_results),
        sample_prompt=json.dumps(sample_prompt)[1:-1],  # inside a Python string literal
        adapter=adapters_only,
        sample_story=_safe_block(results["sample_story"]) if results.get("sample_story") else None,
    )
