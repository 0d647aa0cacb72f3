"""The model card's training sections, from what training recorded (``all_results.json``, ``recipe.yaml``): the
training data and where validation came from, the recipe table, the eval loss and its ``model-index`` entry."""

from __future__ import annotations

import math
import os
from typing import Any

from ..story_formats import hub_dataset_of_file
from .architecture import fmt_number
from .model_folder import RESULTS_FILE
from .templates import hub_link


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def recorded_datasets(recipe: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """The Hub datasets trained on, as training recorded them; for a folder written before it did, the ones its
    ``hf://`` data files name (unambiguous)."""
    datasets = list(results.get("datasets") or [])
    if not datasets:
        for key in ("train_file", "validation_file"):
            repo = hub_dataset_of_file(recipe.get(key))
            if repo and repo not in datasets:
                datasets.append(repo)
    return datasets


def _source_text(path: str) -> str:
    repo = hub_dataset_of_file(path)
    if repo:
        return f"`{path.split('/', 4)[-1]}` of {hub_link(repo)}"
    return f"the local file `{os.path.basename(path.rstrip('/'))}`"


def training_data_text(recipe: dict[str, Any], results: dict[str, Any], datasets: list[str]) -> str:
    """The "Training data" paragraph: the sources (Hub datasets linked, local files by name), the packing, and
    where the validation stories came from."""
    sources = []
    name = recipe.get("dataset_name")
    if name:
        config = recipe.get("dataset_config_name")
        text = hub_link(name) if name in datasets else f"a local dataset folder `{os.path.basename(name.rstrip('/'))}`"
        sources.append(text + (f" (config `{config}`)" if config else ""))
    if recipe.get("train_file"):
        sources.append(_source_text(recipe["train_file"]))
    if recipe.get("validation_file"):
        sources.append(_source_text(recipe["validation_file"]) + " for validation")
    if not sources and datasets:
        sources = [hub_link(d) for d in datasets]
    lines = [f"Trained on {' and '.join(sources)}." if sources else "The training data was not recorded."]
    if "train_stories" in results:
        lines.append(
            f"{results['train_stories']:,} training stories, packed with an end-of-story token between them into "
            f"{results.get('train_blocks', 0):,} blocks of {results.get('block_size', '?')} tokens."
        )
    source = results.get("validation_source") or {}
    if source.get("kind") == "split":
        lines.append(f"Validation: the data's `{source.get('split')}` split.")
    elif source.get("kind") == "held_out":
        lines.append(f"Validation: {held_out_text(source)}, held out (the data has no validation split).")
    elif sources and source.get("kind") != "file":  # not recorded (a folder of an older tinystories)
        lines.append(
            "Validation: the data's validation split, or "
            f"{recipe.get('validation_split_percentage', 5)}% of the training stories held out when it has none."
        )
    return " ".join(lines)


def held_out_text(source: dict[str, Any]) -> str:
    """Which training stories were held out for validation: a share of them, or (a streamed run) the first N."""
    if "stories" in source and "percentage" not in source:
        return f"the first {fmt_number(source['stories'])} training stories"
    return f"{fmt_number(source.get('percentage', 5))}% of the training stories"


def eval_loss_text(results: dict[str, Any]) -> str:
    eval_loss = results.get("eval_loss")
    if not isinstance(eval_loss, (int, float)):
        return f"No eval loss was recorded (no `{RESULTS_FILE}`)."
    return (
        f"Eval loss **{eval_loss:.4f}** (perplexity {results.get('perplexity', math.exp(min(eval_loss, 700))):.2f})"
        f" on the validation stories, in nats per token of this model's tokenizer, after "
        f"{fmt_number(results.get('global_step', '?'))} steps. Losses are comparable only between models with the "
        "same tokenizer (the paper: 1.33-1.38 at width 768 with 2 layers, GPT-Neo's tokenizer)."
    )


def eval_loss_result(results: dict[str, Any], recipe: dict[str, Any], dataset: str):
    """The ``model-index`` entry of the eval loss on the Hub dataset ``dataset``, named after where validation
    came from; None without an eval loss, or when validation was not that dataset (a file of elsewhere)."""
    from huggingface_hub import EvalResult

    eval_loss = results.get("eval_loss")
    if not isinstance(eval_loss, (int, float)):
        return None
    source = results.get("validation_source") or {}
    kind, split = source.get("kind"), None
    if kind == "split":
        split, name = source.get("split"), "Eval loss"
    elif kind == "held_out":
        held_out = held_out_text(source).replace("% of the training stories", "% of the train split")
        name = f"Eval loss ({held_out} held out)"
    elif kind == "file":
        if hub_dataset_of_file(recipe.get("validation_file")) != dataset:
            return None
        name = "Eval loss (validation file)"
    else:
        name = "Eval loss (validation stories; their source was not recorded)"
    return EvalResult(
        task_type="text-generation",
        task_name="Text Generation",
        dataset_type=dataset,
        dataset_name=dataset,
        dataset_config=recipe.get("dataset_config_name"),
        dataset_split=split,
        metric_type="loss",
        metric_value=round(float(eval_loss), 4),
        metric_name=name,
    )


def recipe_rows(recipe: dict[str, Any], results: dict[str, Any], base_model: str | None) -> list[tuple[str, str]]:
    """The "Training recipe" table: start (preset or base model), LoRA, tokenizer, optimiser, batch, context,
    steps, tokens, precision, attention, seed and time."""
    rows: list[tuple[str, str]] = []
    if recipe.get("model_name_or_path"):
        start = recipe["model_name_or_path"]
        rows.append(("start", f"fine-tuned from {hub_link(start, '') if start == base_model else f'`{start}`'}"))
    elif recipe.get("model_preset"):
        overrides = recipe.get("config_overrides")
        if isinstance(overrides, dict):
            overrides = "{" + ", ".join(f"{k}: {v}" for k, v in overrides.items()) + "}"
        rows.append(
            ("start", f"from scratch: preset `{recipe['model_preset']}`" + (f", `{overrides}`" if overrides else ""))
        )
    if recipe.get("use_peft"):
        rows.append(("LoRA", f"r {recipe.get('lora_r')}, alpha {recipe.get('lora_alpha')}"))
    size = recipe.get("tokenizer_vocab_size")
    tokenizer = recipe.get("tokenizer_name_or_path")
    if size and tokenizer:
        rows.append(("tokenizer", f"`{tokenizer}` pruned to its {size:,} most frequent tokens on the training text"))
    elif size:
        rows.append(("tokenizer", f"byte-level BPE of {size:,} tokens trained on the training stories"))
    elif tokenizer:
        rows.append(("tokenizer", f"`{tokenizer}`"))
    if "learning_rate" in recipe:
        schedule = recipe.get("lr_scheduler_type", "linear")
        rows.append(
            ("learning rate", f"{recipe['learning_rate']:g}, {schedule}, warmup {recipe.get('warmup_steps', 0)}")
        )
    if "weight_decay" in recipe:
        rows.append(("weight decay", fmt_number(recipe["weight_decay"])))
    if "adam_beta1" in recipe:
        rows.append(("Adam betas", f"({recipe['adam_beta1']}, {recipe.get('adam_beta2')})"))
    if "per_device_train_batch_size" in recipe:
        world = results.get("world_size", 1)
        batch = (
            f"{recipe['per_device_train_batch_size']} x {recipe.get('gradient_accumulation_steps', 1)} accumulation "
            f"x {world} process{'es' if world != 1 else ''}"
        )
        if "tokens_per_step" in results:
            batch += f" = {results['tokens_per_step']:,} tokens a step"
        rows.append(("batch", batch))
    if "block_size" in recipe or "block_size" in results:
        rows.append(("context (block size)", str(recipe.get("block_size", results.get("block_size")))))
    if "global_step" in results:
        epoch = results.get("epoch")
        rows.append(("steps", f"{results['global_step']:,}" + (f" ({epoch:.2f} epochs)" if epoch else "")))
    if "num_input_tokens_seen" in results:
        rows.append(("tokens seen", f"{results['num_input_tokens_seen']:,}"))
    if recipe:
        precision = "bf16" if recipe.get("bf16") else "fp16" if recipe.get("fp16") else "fp32"
        rows.append(("precision", precision))
        rows.append(("attention", f"`{recipe.get('attn_implementation', 'sdpa')}`"))
        rows.append(("seed", str(recipe.get("seed", 42))))
    if results.get("train_runtime"):
        rows.append(("training time", duration(results["train_runtime"])))
    return rows
