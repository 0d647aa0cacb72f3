"""This package's fast path for GPT-Neo, what ``attn_implementation="sdpa"`` means: exact SDPA attention, a fused
tanh-GELU and a KV cache that grows without copying; same weights, same outputs (docs/modeling.md)."""

from __future__ import annotations

import torch
from transformers.activations import NewGELUActivation

from .attention import use_sdpa_attention
from .kv_cache import use_growing_cache


class FusedGELUTanh(torch.nn.GELU):
    """``gelu_new`` as one fused kernel (``torch.nn.GELU(approximate="tanh")``)."""

    def __init__(self):
        super().__init__(approximate="tanh")


def use_fused_gelu(model: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place, every ``gelu_new`` activation module of ``model`` by ``FusedGELUTanh``."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is NewGELUActivation:
                setattr(parent, name, FusedGELUTanh())
    return model


def use_fast_path(model: torch.nn.Module) -> torch.nn.Module:
    """Switch a GPT-Neo model (in place) to SDPA attention, the fused GELU and the growing KV cache; returns it."""
    use_sdpa_attention(model)
    use_growing_cache(model)
    return use_fused_gelu(model)
