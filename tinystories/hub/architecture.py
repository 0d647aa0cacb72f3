"""The model card's "Model" section from ``config.json`` and the weights: the GPT-Neo table and the paper's preset
of that shape, a generic table for any other ``model_type``, or a note for LoRA adapters."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from .model_folder import read_json
from .templates import HUB


def fmt_number(value: Any) -> str:
    """``1,024`` for whole numbers (``10.0`` too), ``0.003`` for others, ``str`` of anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:g}"


def attention_layers(config: dict[str, Any]) -> list[str]:
    """``global``/``local`` for each layer of a GPT-Neo config (``attention_types`` expanded)."""
    layers: list[str] = []
    for types, repeat in config.get("attention_types") or []:
        layers += list(types) * int(repeat)
    return layers or list(config.get("attention_layers") or [])


def find_preset(config: dict[str, Any]) -> str:
    """The TinyStories preset whose shape ``config`` has (vocabulary and positions may differ), else ``custom``."""
    from ..modeling import PRESETS

    if config.get("model_type") not in (None, "gpt_neo"):
        return "custom"
    hidden = config.get("hidden_size")
    for name, preset in PRESETS.items():
        same = all(
            config.get(key) == preset[key]
            for key in ("hidden_size", "num_layers", "num_heads", "window_size", "activation_function")
        )
        if (
            same
            and attention_layers(config) == attention_layers(preset)
            and (config.get("intermediate_size") or 4 * hidden) == 4 * preset["hidden_size"]
        ):
            return name
    return "custom"


def describe_attention(layers: list[str]) -> str:
    if not layers:
        return "?"
    if all(layer == "global" for layer in layers):
        return "global"
    if all(layer == ("global" if i % 2 == 0 else "local") for i, layer in enumerate(layers)):
        return "global / local, alternating"
    return ", ".join(layers)


def count_saved_parameters(model_dir: str) -> int | None:
    """Distinct parameters of the saved weights (a tied LM head counted once), read from the safetensors headers."""
    index = read_json(os.path.join(model_dir, "model.safetensors.index.json"))
    if index:
        files = sorted(set(index["weight_map"].values()))
    elif os.path.isfile(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        return None
    from safetensors import safe_open

    config = read_json(os.path.join(model_dir, "config.json")) or {}
    total = 0
    for name in files:
        with safe_open(os.path.join(model_dir, name), framework="pt") as f:
            for key in f.keys():
                if key == "lm_head.weight" and config.get("tie_word_embeddings", True):
                    continue
                total += math.prod(f.get_slice(key).get_shape())
    return total


#: Rows of the generic table of a non-GPT-Neo ``config.json``: (label, the keys that may hold it).
GENERIC_ROWS = (
    ("hidden size", ("hidden_size", "n_embd", "d_model")),
    ("layers", ("num_hidden_layers", "n_layer", "num_layers")),
    ("attention heads", ("num_attention_heads", "n_head", "num_heads")),
    ("vocabulary", ("vocab_size",)),
    ("positions", ("max_position_embeddings", "n_positions", "n_ctx")),
)


def _generic_rows(config: dict[str, Any], parameters: int | None) -> list[tuple[str, str]]:
    rows = [("model type", f"`{config.get('model_type')}`")]
    for label, keys in GENERIC_ROWS:
        value = next((config[k] for k in keys if config.get(k) is not None), None)
        if value is not None:
            rows.append((label, fmt_number(value)))
    if parameters:
        rows.append(("parameters", fmt_number(parameters)))
    return rows


@dataclass
class Architecture:
    """What the card says about the model itself (the template's ``architecture*`` values) and its tag."""

    gpt_neo: bool = False
    preset: str = "custom"
    tag: str | None = None  # gpt-neo, or the model_type's
    kind: str = "language model"  # "A small <kind> of children's stories"
    model_class: str | None = None
    table: list[dict[str, Any]] = field(default_factory=list)  # the GPT-Neo table (one row)
    rows: list[tuple[str, str]] = field(default_factory=list)  # the generic table
    note: str = ""


def describe_architecture(
    model_dir: str, config: dict[str, Any] | None, adapter: dict[str, Any] | None, results: dict[str, Any]
) -> Architecture:
    """The architecture of ``model_dir`` from its ``config.json`` (``config``), else its ``adapter_config.json``;
    parameters are counted from the weights (``results["num_parameters"]`` if there are no safetensors)."""
    model_type = (config or {}).get("model_type")
    arch = Architecture(gpt_neo=bool(config) and model_type in (None, "gpt_neo"))
    parameters = None
    if config:
        parameters = count_saved_parameters(model_dir) or results.get("num_parameters")
        arch.model_class = (config.get("architectures") or [None])[0]
    if arch.gpt_neo:
        arch.tag, arch.kind = "gpt-neo", "GPT-Neo language model"
        arch.model_class = arch.model_class or "GPTNeoForCausalLM"
        arch.preset = find_preset(config)
        layers = attention_layers(config)
        arch.table.append(
            {
                "preset": f"`{arch.preset}`" if arch.preset != "custom" else "custom",
                "width": config.get("hidden_size"),
                "depth": config.get("num_layers"),
                "heads": config.get("num_heads"),
                "window": config.get("window_size"),
                "attention": describe_attention(layers),
                "vocab_size": fmt_number(config.get("vocab_size")),
                "positions": fmt_number(config.get("max_position_embeddings")),
                "parameters": fmt_number(parameters) if parameters else "?",
            }
        )
        if arch.preset != "custom":
            arch.note = (
                f"The shape of the paper's [`{arch.preset}`]({HUB}/roneneldan/TinyStories-{arch.preset}) model; the "
                "released checkpoints keep GPT-Neo's 50,257-token vocabulary and 2,048 positions, so parameter counts "
                "differ with the vocabulary."
            )
        else:
            arch.note = "A custom shape (none of the paper's presets)."
        if "local" in layers:
            arch.note += f" Local layers attend to the previous {config.get('window_size')} tokens."
    elif config:
        arch.tag = str(model_type).replace("_", "-")
        arch.kind = f"`{model_type}` language model"
        arch.rows = _generic_rows(config, parameters)
        arch.note = f"A `{model_type}` model, not one of the paper's presets."
    elif adapter:
        arch.note = (
            f"LoRA adapters (r {adapter.get('r')}, alpha {adapter.get('lora_alpha')}, modules "
            f"{', '.join(sorted(adapter.get('target_modules') or []))}) for the base model "
            f"`{adapter.get('base_model_name_or_path')}`: load them with peft."
        )
    return arch
