"""Exact scaled-dot-product attention for GPT-Neo: the same function as transformers' eager attention (no
1/sqrt(d) scaling, the local window, padding masks, the KV cache), through ``F.scaled_dot_product_attention``; same
parameters and buffers, so checkpoints stay stock GPT-Neo (docs/modeling.md: which kernel serves which call)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.gpt_neo.modeling_gpt_neo import GPTNeoSelfAttention

SDPA = "sdpa"


class GPTNeoSdpaSelfAttention(GPTNeoSelfAttention):
    """``GPTNeoSelfAttention`` computed with ``F.scaled_dot_product_attention`` (same weights, same outputs)."""

    def forward(
        self, hidden_states, attention_mask=None, layer_past=None, use_cache=False, output_attentions=False, **kwargs
    ):
        self._return_weights = output_attentions  # SDPA kernels do not return the attention weights
        return super().forward(
            hidden_states,
            attention_mask=attention_mask,
            layer_past=layer_past,
            use_cache=use_cache,
            output_attentions=output_attentions,
            **kwargs,
        )

    def _eager_attn(self, query, key, value, padding):
        """Eager's own computation, given the SDPA-style boolean padding mask (or None)."""
        additive = None
        if padding is not None:
            additive = torch.zeros(padding.shape, dtype=torch.float32, device=query.device)
            additive = additive.masked_fill(~padding.to(torch.bool), torch.finfo(torch.float32).min)
        return super()._attn(query, key, value, additive)

    def _attn(self, query, key, value, attention_mask=None):
        # query: (batch, heads, q_len, head_dim); key, value: (batch, heads, k_len, head_dim)
        if getattr(self, "_return_weights", False):
            return self._eager_attn(query, key, value, attention_mask)
        q_len, k_len = query.size(-2), key.size(-2)
        window = self.config.window_size if self.attention_type == "local" else None
        sees_all_keys = window is None or k_len <= window  # the window cuts nothing off
        padding = attention_mask  # from transformers' sdpa mask: None, or bool (batch, 1, q_len, k_len), True = attend

        dropout = self.attn_dropout.p if self.training else 0.0
        if padding is None and sees_all_keys and (q_len == k_len or q_len == 1):
            # plain causal prefix (q_len == k_len), or a decoding step that attends to every cached key
            out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, is_causal=q_len > 1, scale=1.0)
            return out, None

        # GPT-Neo's own causal / sliding-window pattern, offset for cached keys
        pattern = self.bias[:, :, k_len - q_len : k_len, :k_len]
        if padding is None:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=pattern, dropout_p=dropout, scale=1.0)
            return out, None
        mask = pattern & padding.to(torch.bool)
        dead = ~mask.any(dim=-1, keepdim=True)  # queries that may attend to nothing: left padding
        if not dead.any():
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout, scale=1.0)
            return out, None
        # Eager adds the dtype's minimum twice to a fully masked row: every key of its causal/window pattern gets
        # the same score, so it averages their values uniformly (and -inf elsewhere). The output of such a padding
        # query still reaches the loss when the next label is a real token, and eager's backward differentiates
        # through those saturated scores: with gradients, take eager's own code for this (rare) case so training
        # stays exact; without (generation), reproduce the uniform average and avoid SDPA's NaN rows.
        if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad):
            return self._eager_attn(query, key, value, padding)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask | dead, dropout_p=dropout, scale=1.0)
        uniform = pattern.to(value.dtype)
        uniform = uniform / uniform.sum(dim=-1, keepdim=True)
        return torch.where(dead, torch.matmul(uniform, value), out), None


def use_sdpa_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Switch every GPT-Neo attention module of ``model`` (in place) to ``GPTNeoSdpaSelfAttention``.

    Only the module classes change: parameters, buffers and state-dict keys stay as they are. The model's config
    asks transformers for SDPA-style masks (``None`` where no mask is needed, else boolean); it is not saved, so
    ``save_pretrained`` still writes a stock GPT-Neo checkpoint.
    """
    found = False
    for module in model.modules():
        if type(module) is GPTNeoSelfAttention or isinstance(module, GPTNeoSdpaSelfAttention):
            module.__class__ = GPTNeoSdpaSelfAttention
            found = True
    if not found:
        raise ValueError("use_sdpa_attention: the model has no GPT-Neo eager attention modules to switch")
    config = getattr(model, "config", None)
    if config is not None:
        config._attn_implementation = SDPA
    return model
