"""The growing KV cache gives generate exactly the tokens of transformers' DynamicCache, in every decoding mode."""

import pytest
import torch
from transformers.cache_utils import DynamicCache

from tinystories.modeling.kv_cache import CACHE_KWARG, GrowingCache, GrowingLayer
from tinystories.models import build_model, tinystories_config


@pytest.fixture(scope="module")
def model():
    config = tinystories_config("1M", num_layers=2, vocab_size=300, max_position_embeddings=1024)
    return build_model(config, seed=0).eval()


def cache_of(output):
    """The cache ``generate(..., return_dict_in_generate=True)`` ended with (``cache``; ``past_key_values`` before)."""
    cache = output.get("cache")
    return output.get("past_key_values") if cache is None else cache


def assert_growing_cache_used(cache, num_layers, length):
    assert isinstance(cache, GrowingCache), type(cache)
    assert len(cache.layers) == num_layers and all(isinstance(layer, GrowingLayer) for layer in cache.layers)
    assert cache.get_seq_length() == length
    for layer in cache.layers:  # every layer appended into its own buffers
        assert layer._key_buffer is not None and layer._key_buffer.shape[-2] >= length


def prompts():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 300, (3, 40), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :15] = 0  # left padding
    return ids * mask, mask


@pytest.mark.parametrize(
    "mode",
    [
        dict(do_sample=False, max_new_tokens=260),  # greedy, past the 256-token window
        dict(do_sample=False, num_beams=3, max_new_tokens=20),  # beam search reorders the cache
        dict(do_sample=True, top_k=0, num_return_sequences=2, max_new_tokens=30),  # expanded batch
    ],
    ids=["greedy", "beam", "sample"],
)
def test_generate_matches_dynamic_cache(model, mode):
    ids, mask = prompts()
    kwargs = dict(attention_mask=mask, pad_token_id=0, min_new_tokens=mode["max_new_tokens"], **mode)
    with torch.no_grad():
        torch.manual_seed(0)
        ours = model.generate(ids, return_dict_in_generate=True, **kwargs)  # GrowingCache: the fast path's default
        torch.manual_seed(0)
        stock = model.generate(ids, return_dict_in_generate=True, **{CACHE_KWARG: DynamicCache()}, **kwargs)
    assert torch.equal(ours.sequences, stock.sequences)
    # the last token is sampled from the cache of all the others and never itself enters it
    assert_growing_cache_used(cache_of(ours), num_layers=2, length=ours.sequences.shape[1] - 1)
    assert type(cache_of(stock)) is DynamicCache
    if mode.get("num_beams", 1) == 1:  # no reordering: the keys each layer hands attention are views of its buffer
        for ours_layer, stock_layer in zip(cache_of(ours).layers, cache_of(stock).layers):
            assert ours_layer._buffers_hold_cache()
            assert torch.equal(ours_layer.keys, stock_layer.keys) and torch.equal(
                ours_layer.values, stock_layer.values
            )


def test_growing_layer_appends_without_reallocating_each_step():
    layer = GrowingLayer()
    first = torch.randn(2, 4, 5, 8)
    keys, _ = layer.update(first, first)
    buffer = layer._key_buffer
    assert buffer.shape[-2] >= 64 and torch.equal(keys, first)
    steps = [torch.randn(2, 4, 1, 8) for _ in range(20)]
    for step in steps:
        keys, values = layer.update(step, step)
    assert layer._key_buffer is buffer  # same buffer: no copy of the cache per step
    assert torch.equal(keys, torch.cat([first, *steps], dim=-2)) and torch.equal(values, keys)
    layer.crop(-3)  # transformers' own edits are picked up on the next update
    keys, _ = layer.update(steps[0], steps[0])
    assert torch.equal(keys, torch.cat([first, *steps[:-3], steps[0]], dim=-2))


@pytest.mark.parametrize("name", sorted({"past_key_values", CACHE_KWARG}))
def test_generate_keeps_an_explicit_cache(model, name):
    ids, mask = prompts()
    cache = DynamicCache()
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=3, pad_token_id=0, return_dict_in_generate=True, **{name: cache}
        )
    assert cache.get_seq_length() == 42 and not isinstance(cache, GrowingCache)
    assert cache_of(out) is cache


def test_copies_of_the_model_generate_with_their_own_weights(model):
    import copy

    twin = copy.deepcopy(model)
    assert twin.generate.__self__ is twin  # not the original's bound method
    with torch.no_grad():
        twin.lm_head.weight.zero_()  # tied: every logit 0, greedy picks token 0
        ids, mask = prompts()
        out = twin.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert (out[:, -4:] == 0).all()
