"""The models: the paper's GPT-Neo shapes (``presets``), exact fast attention and a growing KV cache (the fast
path), and building/loading models with it. ``tinystories.models`` is the public face of this subpackage."""

from .attention import SDPA, GPTNeoSdpaSelfAttention, use_sdpa_attention
from .fast_path import FusedGELUTanh, use_fast_path, use_fused_gelu
from .kv_cache import GrowingCache, GrowingLayer, use_growing_cache
from .loading import DEFAULT_ATTENTION, build_model, count_parameters, load_model
from .presets import (
    GRID_HIDDEN_SIZES,
    GRID_NUM_LAYERS,
    PRESETS,
    RELEASED_PARAMETER_COUNTS,
    alternating_attention_types,
    tinystories_config,
    width_depth_grid,
)

__all__ = [
    "DEFAULT_ATTENTION",
    "GRID_HIDDEN_SIZES",
    "GRID_NUM_LAYERS",
    "PRESETS",
    "RELEASED_PARAMETER_COUNTS",
    "SDPA",
    "FusedGELUTanh",
    "GPTNeoSdpaSelfAttention",
    "GrowingCache",
    "GrowingLayer",
    "alternating_attention_types",
    "build_model",
    "count_parameters",
    "load_model",
    "tinystories_config",
    "use_fast_path",
    "use_fused_gelu",
    "use_growing_cache",
    "use_sdpa_attention",
    "width_depth_grid",
]
