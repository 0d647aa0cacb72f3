"""A KV cache for fast sampling: transformers' ``DynamicCache`` appending into doubling buffers instead of
concatenating the whole cache at every step (docs/modeling.md: what it saves)."""

from __future__ import annotations

import types

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

_MIN_CAPACITY = 64


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` that appends into pre-allocated, doubling buffers instead of concatenating."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def _buffers_hold_cache(self) -> bool:
        """Whether ``self.keys`` is still the filled prefix of our buffer (crop/reorder replace it otherwise)."""
        buffer = self._key_buffer
        return (
            buffer is not None
            and self.keys.numel() > 0
            and self.keys.data_ptr() == buffer.data_ptr()
            and self.keys.shape[:2] == buffer.shape[:2]
            and self.values.data_ptr() == self._value_buffer.data_ptr()
        )

    def _allocate(self, like: torch.Tensor, capacity: int, keep: int) -> None:
        shape = (*like.shape[:2], capacity, like.shape[-1])
        keys = torch.empty(shape, dtype=like.dtype, device=like.device)
        values = torch.empty(shape, dtype=like.dtype, device=like.device)
        if keep:
            keys[:, :, :keep] = self.keys[:, :, :keep]
            values[:, :, :keep] = self.values[:, :, :keep]
        self._key_buffer, self._value_buffer = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2] if self.keys.numel() else 0
        needed = length + key_states.shape[-2]
        if not self._buffers_hold_cache() or needed > self._key_buffer.shape[-2]:
            self._allocate(key_states, max(_MIN_CAPACITY, 2 * needed), keep=length)
        self._key_buffer[:, :, length:needed] = key_states
        self._value_buffer[:, :, length:needed] = value_states
        self.keys = self._key_buffer[:, :, :needed]
        self.values = self._value_buffer[:, :, :needed]
        return self.keys, self.values

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        super().reset()


class GrowingCache(DynamicCache):
    """``DynamicCache`` made of ``GrowingLayer``s (created lazily, one per attention layer)."""

    def __init__(self):
        super(DynamicCache, self).__init__(layer_class_to_replicate=GrowingLayer)


try:
    from transformers.generation.utils import ALL_CACHE_NAMES as _CACHE_NAMES
except ImportError:  # older transformers
    _CACHE_NAMES = ()

#: ``generate``'s keyword for the cache: ``cache`` in the transformers versions that renamed it (there
#: ``past_key_values`` still works, with a FutureWarning), ``past_key_values`` before.
CACHE_KWARG = "cache" if "cache" in _CACHE_NAMES else "past_key_values"


def generate(self, *args, **kwargs):
    """``generate`` of the model's class, starting from a ``GrowingCache`` unless a cache is given (under either
    name)."""
    given = kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None
    if not given and kwargs.get("use_cache", True):
        kwargs[CACHE_KWARG] = GrowingCache()
    return type(self).generate(self, *args, **kwargs)


def use_growing_cache(model: torch.nn.Module) -> torch.nn.Module:
    """Make ``model.generate`` (this instance only) start from a ``GrowingCache`` unless given another cache.

    The method is bound to the instance, so ``copy.deepcopy`` and pickling carry it to the copy.
    """
    model.generate = types.MethodType(generate, model)
    return model
