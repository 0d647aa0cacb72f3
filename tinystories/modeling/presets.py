"""The TinyStories GPT-Neo model families: the released models' exact shapes, and the paper's width x depth grid.

The paper's released checkpoints (``roneneldan/TinyStories-*``) are stock GPT-Neo models: 16 heads, ``gelu_new``,
a 256-token local window on every other layer, 2048 positions and the GPT-Neo vocabulary of 50257 tokens (the
paper trains on the 10K most frequent of them; the published configs keep 50257). ``PRESETS`` holds their exact
shapes, so ``build_model(tinystories_config("33M"))`` has the same parameter count as the released 33M model.
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import GPTNeoConfig

# GPTNeoConfig keyword arguments shared by every released TinyStories model.
_COMMON: dict[str, Any] = {
    "num_heads": 16,
    "activation_function": "gelu_new",
    "window_size": 256,
    "max_position_embeddings": 2048,
    "vocab_size": 50257,
    "intermediate_size": None,  # GPT-Neo's default: 4 * hidden_size
    "resid_dropout": 0.0,
    "embed_dropout": 0.0,
    "attention_dropout": 0.0,
    "layer_norm_epsilon": 1e-5,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
    "tie_word_embeddings": True,
}

# (hidden_size, num_layers) of each released model, by its Hub name suffix.
_SHAPES: dict[str, tuple[int, int]] = {
    "1M": (64, 8),
    "3M": (128, 8),
    "8M": (256, 8),
    "28M": (512, 8),
    "33M": (768, 4),
    "1Layer-21M": (1024, 1),
    "2Layers-33M": (1024, 2),
}

# Total parameters of the released checkpoints (vocab 50257, 2048 positions, tied LM head).
RELEASED_PARAMETER_COUNTS: dict[str, int] = {
    "1M": 3_745_984,
    "3M": 8_278_400,
    "8M": 19_702_528,
    "28M": 51_987_968,
    "33M": 68_514_048,
    "1Layer-21M": 66_155_520,
    "2Layers-33M": 78_748_672,
}

# The paper's architecture sweep (Figure "loss by width and depth").
GRID_HIDDEN_SIZES: tuple[int, ...] = (64, 128, 256, 512, 768, 1024)
GRID_NUM_LAYERS: tuple[int, ...] = (1, 2, 4, 8, 12)


def alternating_attention_types(num_layers: int) -> list:
    """GPT-Neo ``attention_types`` alternating global and local layers, starting with a global one."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    types: list = []
    if num_layers // 2:
        types.append([["global", "local"], num_layers // 2])
    if num_layers % 2:
        types.append([["global"], 1])
    return types


def _preset_kwargs(hidden_size: int, num_layers: int) -> dict[str, Any]:
    return {
        **_COMMON,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "attention_types": alternating_attention_types(num_layers),
    }


PRESETS: dict[str, dict[str, Any]] = {name: _preset_kwargs(*shape) for name, shape in _SHAPES.items()}


def tinystories_config(name: str, **overrides: Any) -> GPTNeoConfig:
    """A ``GPTNeoConfig`` for the preset ``name``, with keyword ``overrides`` applied.

    Overriding ``num_layers`` without ``attention_types`` keeps the global/local alternation.
    ``tinystories_config("8M", vocab_size=10_000, max_position_embeddings=512)`` is the paper's 8M model with a
    10K vocabulary.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown TinyStories preset {name!r}; choose one of: {', '.join(PRESETS)}")
    kwargs = copy.deepcopy(PRESETS[name])
    if "num_layers" in overrides and "attention_types" not in overrides:
        overrides = {**overrides, "attention_types": alternating_attention_types(int(overrides["num_layers"]))}
    kwargs.update(overrides)
    for special in ("bos_token_id", "eos_token_id"):
        # GPT-Neo's EOS id (50256) does not exist in a smaller vocabulary: leave it to the tokenizer
        if special not in overrides and kwargs[special] is not None and kwargs[special] >= kwargs["vocab_size"]:
            kwargs[special] = None
    return GPTNeoConfig(**kwargs)


def width_depth_grid(
    hidden_sizes: tuple[int, ...] = GRID_HIDDEN_SIZES,
    num_layers: tuple[int, ...] = GRID_NUM_LAYERS,
    **overrides: Any,
) -> dict[str, GPTNeoConfig]:
    """Configs of the paper's width x depth sweep, keyed ``"h{hidden}-l{layers}"``.

    Every model uses the common TinyStories settings (16 heads, window 256, gelu_new, alternating attention);
    ``overrides`` (e.g. ``vocab_size=10_000``) apply to all of them.
    """
    grid = {}
    for hidden in hidden_sizes:
        if hidden % _COMMON["num_heads"] and "num_heads" not in overrides:
            raise ValueError(f"hidden size {hidden} is not divisible by {_COMMON['num_heads']} heads")
        for layers in num_layers:
            kwargs = {**_preset_kwargs(hidden, layers), **overrides}
            grid[f"h{hidden}-l{layers}"] = GPTNeoConfig(**kwargs)
    return grid
