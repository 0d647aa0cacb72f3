"""Where a run came from, written beside the model: the resolved recipe (``recipe.yaml``) and the Hub ids it started
from and where its validation stories came from (in ``all_results.json``), which the model card reads."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from ..recipes import RECIPE_FILE, RESULTS_FILE
from ..story_formats import hub_dataset_of_file
from .arguments import TrainConfig

__all__ = ["RESULTS_FILE", "resolved_recipe", "training_sources", "validation_source", "write_recipe"]

#: Keys written to ``recipe.yaml`` even at their default value: the hyperparameters a reader looks for.
RECIPE_KEYS_ALWAYS = (
    "output_dir",
    "attn_implementation",
    "block_size",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "bf16",
    "fp16",
    "seed",
)
#: Keys never written: what belongs to one invocation only (secrets are excluded by name: ``*_token``).
RECIPE_KEYS_NEVER = ("resume_from_checkpoint",)


def _yaml_value(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value  # enums (IntervalStrategy, SchedulerType, ...)
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _yaml_value(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def resolved_recipe(cfg: TrainConfig) -> dict[str, Any]:
    """The run's recipe as one flat mapping: every key whose value is not the default, plus the main
    hyperparameters (``RECIPE_KEYS_ALWAYS``); ``tinystories train recipe.yaml`` runs it again. Token fields
    (``hub_token``, ...) are never included."""
    recipe: dict[str, Any] = {}
    training_defaults = type(cfg.training)(output_dir=None).to_dict()  # defaults as __post_init__ normalises them
    for group in (cfg.model, cfg.data, cfg.peft, cfg.training):
        is_training = group is cfg.training
        values = group.to_dict() if is_training else dataclasses.asdict(group)
        for f in dataclasses.fields(group):
            if not f.init or f.name.endswith("_token") or f.name in RECIPE_KEYS_NEVER:
                continue
            if is_training:
                default = training_defaults.get(f.name)
            elif f.default is not dataclasses.MISSING:
                default = f.default
            else:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            value = values.get(f.name)
            if f.name in RECIPE_KEYS_ALWAYS or value != default:
                recipe[f.name] = _yaml_value(value)
    return recipe


def write_recipe(cfg: TrainConfig, output_dir: str) -> None:
    """``output_dir/recipe.yaml``: the resolved recipe (the model card's recipe table reads it)."""
    with open(os.path.join(output_dir, RECIPE_FILE), "w", encoding="utf-8") as f:
        f.write("# The resolved recipe of this run (written by tinystories train): tinystories train recipe.yaml\n")
        yaml.safe_dump(resolved_recipe(cfg), f, sort_keys=False, allow_unicode=True)


def training_sources(model_args, data_args) -> dict[str, Any]:
    """The Hub ids a training run started from: ``{"base_model": id or None, "datasets": [ids]}``.

    Decided while training, when local paths exist: a ``model_name_or_path`` or ``dataset_name`` that is not a
    local path is a Hub id; ``hf://datasets/...`` files name their dataset.
    """
    base = model_args.model_name_or_path
    datasets = []
    if data_args.dataset_name and not os.path.exists(data_args.dataset_name):
        datasets.append(data_args.dataset_name)
    for path in (data_args.train_file, data_args.validation_file):
        repo = hub_dataset_of_file(path)
        if repo and repo not in datasets:
            datasets.append(repo)
    return {"base_model": base if base and not os.path.exists(base) else None, "datasets": datasets}


def validation_source(data_args, validation) -> dict[str, Any]:
    """Where the validation stories of a run came from, recorded in ``all_results.json`` for the model card:
    ``{"kind": "file"}`` (``validation_file``), ``{"kind": "split", "split": name}`` (the dataset's own split),
    ``{"kind": "held_out", "percentage": p}`` (carved from train with ``validation_split_percentage``),
    ``{"kind": "held_out", "stories": n}`` (the first ``n`` stories of a streamed train split), or
    ``{"kind": "unknown"}``. ``validation`` is the loaded validation ``Dataset``: a split carved from train keeps
    the name ``train``."""
    if data_args.validation_file:
        return {"kind": "file"}
    split = getattr(validation, "split", None)
    if getattr(data_args, "streaming", False) and split is not None and str(split) == "train":
        return {"kind": "held_out", "stories": len(validation)}
    if not data_args.dataset_name or (split is not None and str(split) == "train"):
        return {"kind": "held_out", "percentage": data_args.validation_split_percentage}
    if split is not None:
        return {"kind": "split", "split": str(split)}
    return {"kind": "unknown"}  # a save_to_disk folder without split names
