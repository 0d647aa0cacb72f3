"""Building and loading models: a fresh GPT-Neo from a config, or a trained checkpoint ready to generate, with this
package's fast path (exact SDPA attention, fused GELU, a growing KV cache) unless ``attn_implementation="eager"``."""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPTNeoConfig, GPTNeoForCausalLM, PreTrainedModel

from .attention import SDPA
from .fast_path import use_fast_path

# Attention implementations that keep GPT-Neo's local window: transformers' eager one, and this package's exact
# SDPA one (attention.py), the default for training and generation. transformers' flash_attention_2 path
# ignores `window_size`, silently turning local layers into global ones, so it is refused for such configs.
DEFAULT_ATTENTION = SDPA
_WINDOW_SAFE_ATTENTION = ("eager", SDPA)


def _check_attention(config: GPTNeoConfig, attn_implementation: str) -> None:
    has_local = "local" in getattr(config, "attention_layers", [])
    if attn_implementation not in _WINDOW_SAFE_ATTENTION and has_local:
        raise ValueError(
            f"attn_implementation={attn_implementation!r} does not keep GPT-Neo's local attention window "
            f"(this config has local layers); use one of {_WINDOW_SAFE_ATTENTION}"
        )


def build_model(
    config: GPTNeoConfig, attn_implementation: str = DEFAULT_ATTENTION, seed: int | None = None
) -> GPTNeoForCausalLM:
    """A freshly initialised ``GPTNeoForCausalLM`` for ``config`` (set ``seed`` for reproducible weights).

    ``attn_implementation="sdpa"`` (the default) is this package's fast path (``fast_path``: exact SDPA
    attention, fused GELU, growing KV cache), ``"eager"`` transformers' own code; both compute the same model and save the same
    stock checkpoint.
    """
    _check_attention(config, attn_implementation)
    config = copy.deepcopy(config)  # transformers mutates the config it is given
    config._attn_implementation = "eager" if attn_implementation == SDPA else attn_implementation
    if seed is not None:
        torch.manual_seed(seed)
    model = GPTNeoForCausalLM(config)
    return use_fast_path(model) if attn_implementation == SDPA else model


def load_model(
    name_or_path: str,
    attn_implementation: str = DEFAULT_ATTENTION,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> PreTrainedModel:
    """A trained model from a local folder or a Hub id, in eval mode, ready to ``generate``.

    GPT-Neo checkpoints get ``attn_implementation`` as in ``build_model``; any other causal LM is handed to
    transformers as is.
    """
    hub_kwargs = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "token")}
    config = AutoConfig.from_pretrained(name_or_path, **hub_kwargs)
    is_gpt_neo = config.model_type == "gpt_neo"
    if is_gpt_neo:
        _check_attention(config, attn_implementation)
    load_with = "eager" if is_gpt_neo and attn_implementation == SDPA else attn_implementation
    model = AutoModelForCausalLM.from_pretrained(name_or_path, attn_implementation=load_with, dtype=dtype, **kwargs)
    if load_with != attn_implementation:
        use_fast_path(model)
    if device is not None:
        model.to(device)
    return model.eval()


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (a tied LM head is counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
