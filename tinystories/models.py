"""The TinyStories GPT-Neo models (the public face of ``tinystories.modeling``).

``PRESETS`` holds the released ``roneneldan/TinyStories-*`` models' exact shapes, ``tinystories_config(name,
**overrides)`` makes a ``GPTNeoConfig`` of one, ``build_model(config)`` a fresh ``GPTNeoForCausalLM`` and
``load_model(name_or_path)`` a trained one, ready to generate; both use this package's exact, faster attention
unless ``attn_implementation="eager"``.
"""

from .modeling import (
    DEFAULT_ATTENTION,
    GRID_HIDDEN_SIZES,
    GRID_NUM_LAYERS,
    PRESETS,
    RELEASED_PARAMETER_COUNTS,
    alternating_attention_types,
    build_model,
    count_parameters,
    load_model,
    tinystories_config,
    width_depth_grid,
)

__all__ = [
    "DEFAULT_ATTENTION",
    "GRID_HIDDEN_SIZES",
    "GRID_NUM_LAYERS",
    "PRESETS",
    "RELEASED_PARAMETER_COUNTS",
    "alternating_attention_types",
    "build_model",
    "count_parameters",
    "load_model",
    "tinystories_config",
    "width_depth_grid",
]
