"""The family of models of a reproduce recipe: presets and grid points as ``ModelSpec``, the ``tinystories train``
recipe of each (same data, same tokenizer, same token budget), and their parameter counts (no weights allocated)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import RecipeError
from .recipe import ReproduceRecipe

#: The preset the grid's models start from: its common settings (gelu_new, window 256, alternating attention).
GRID_BASE_PRESET = "1M"


@dataclass
class ModelSpec:
    """One model: its name (a preset's, or ``h{hidden}-l{layers}``), shape, and the train recipe's model keys."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    preset: str
    config_overrides: dict[str, Any] = field(default_factory=dict)
    grid: bool = False


def model_specs(recipe: ReproduceRecipe) -> list[ModelSpec]:
    from ..modeling import PRESETS

    section, common = recipe.models, recipe.models.config_overrides
    specs = []
    for preset in section.presets:
        if preset not in PRESETS:
            raise RecipeError(f"models.presets: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        shape = {**PRESETS[preset], **common}
        specs.append(
            ModelSpec(preset, shape["hidden_size"], shape["num_layers"], shape["num_heads"], preset, dict(common))
        )
    for hidden, layers in section.grid_points():
        heads = common.get("num_heads", section.heads(hidden))
        overrides = {**common, "hidden_size": hidden, "num_layers": layers, "num_heads": heads}
        specs.append(ModelSpec(f"h{hidden}-l{layers}", hidden, layers, heads, GRID_BASE_PRESET, overrides, True))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise RecipeError(f"models: two models have the same name: {names}")
    return specs


def data_keys(recipe: ReproduceRecipe) -> dict[str, Any]:
    """The data keys every model's training gets (the generated dataset folder, or the recipe's dataset)."""
    data = recipe.data
    keys: dict[str, Any] = {
        "text_column": data.text_column,
        "validation_split_percentage": data.validation_split_percentage,
        "max_train_samples": data.max_train_samples,
        "max_eval_samples": data.max_eval_samples,
    }
    if data.generate is not None:
        keys["dataset_name"] = recipe.path("data")
    else:
        for name in ("dataset_name", "dataset_config_name", "train_file", "validation_file"):
            if getattr(data, name):
                keys[name] = getattr(data, name)
    return keys


def accelerate_world_size(config_file: str) -> int:
    """Processes an ``accelerate`` config starts (num_processes x num_machines), for tokens a step."""
    try:
        with open(config_file, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except OSError as e:
        raise RecipeError(f"train.accelerate_config: cannot read {config_file}: {e}") from None
    return max(1, int(config.get("num_processes") or 1)) * max(1, int(config.get("num_machines") or 1))


def launcher(recipe: ReproduceRecipe) -> str:
    if recipe.train.launcher == "auto":
        return "accelerate" if recipe.train.accelerate_config else "inprocess"
    return recipe.train.launcher


def train_values(recipe: ReproduceRecipe, spec: ModelSpec) -> dict[str, Any]:
    """The complete ``tinystories train`` recipe of one model (checked by the training dataclasses), with
    ``max_steps`` from the token budget when ``max_tokens`` is set."""
    from ..training import train_config_from_dict

    values = {
        **recipe.train_keys,
        "model_preset": spec.preset,
        "config_overrides": spec.config_overrides or None,
        "tokenizer_name_or_path": os.path.abspath(recipe.path("tokenizer")),
        **data_keys(recipe),
        "output_dir": recipe.path("models", spec.name),
    }
    values = {k: v for k, v in values.items() if v is not None}
    cfg = _checked(train_config_from_dict, values, spec.name)
    if recipe.train.max_tokens:
        values["max_steps"] = math.ceil(recipe.train.max_tokens / tokens_per_step(recipe, cfg))
        _checked(train_config_from_dict, values, spec.name)
    return values


def _checked(build, values, name):
    try:
        return build(values)
    except RecipeError as e:
        raise RecipeError(f"train (model {name}): {e}") from None


def tokens_per_step(recipe: ReproduceRecipe, cfg) -> int:
    world = accelerate_world_size(recipe.train.accelerate_config) if launcher(recipe) == "accelerate" else 1
    t = cfg.training
    return t.per_device_train_batch_size * t.gradient_accumulation_steps * world * cfg.data.block_size


def planned_tokens(recipe: ReproduceRecipe, values: dict[str, Any]) -> int | None:
    """Tokens a model trains on when its steps are fixed (max_tokens or max_steps), else None."""
    from ..training import train_config_from_dict

    cfg = train_config_from_dict(values)
    steps = cfg.training.max_steps
    return steps * tokens_per_step(recipe, cfg) if steps and steps > 0 else None


def count_parameters(spec: ModelSpec, vocab_size: int) -> int:
    """Parameters of ``spec`` with a ``vocab_size`` tokenizer, counted on the meta device (no memory used)."""
    import torch
    from transformers import GPTNeoForCausalLM

    from ..modeling import tinystories_config

    config = tinystories_config(spec.preset, **{"vocab_size": vocab_size, **spec.config_overrides})
    with torch.device("meta"):
        model = GPTNeoForCausalLM(config)
    return sum(p.numel() for p in model.parameters())
