import pytest
import torch
from transformers import AutoModelForCausalLM, GPTNeoForCausalLM

from tinystories.models import (
    GRID_HIDDEN_SIZES,
    GRID_NUM_LAYERS,
    PRESETS,
    RELEASED_PARAMETER_COUNTS,
    build_model,
    count_parameters,
    load_model,
    tinystories_config,
    width_depth_grid,
)

EXPECTED_SHAPES = {
    "1M": (64, 8),
    "3M": (128, 8),
    "8M": (256, 8),
    "28M": (512, 8),
    "33M": (768, 4),
    "1Layer-21M": (1024, 1),
    "2Layers-33M": (1024, 2),
}


def test_presets_are_the_seven_released_shapes():
    assert list(PRESETS) == list(EXPECTED_SHAPES)
    for name, (hidden, layers) in EXPECTED_SHAPES.items():
        config = tinystories_config(name)
        assert (config.hidden_size, config.num_layers) == (hidden, layers)
        assert config.num_heads == 16
        assert config.activation_function == "gelu_new"
        assert config.window_size == 256
        assert config.max_position_embeddings == 2048
        assert config.vocab_size == 50257
        assert len(config.attention_layers) == layers


@pytest.mark.parametrize("name", list(RELEASED_PARAMETER_COUNTS))
def test_parameter_count_equals_released_checkpoint(name):
    with torch.device("meta"):  # no memory or init time for the 78M-parameter shapes
        model = GPTNeoForCausalLM(tinystories_config(name))
    assert count_parameters(model) == RELEASED_PARAMETER_COUNTS[name]


def test_global_local_alternation():
    assert tinystories_config("8M").attention_layers == ["global", "local"] * 4
    assert tinystories_config("33M").attention_layers == ["global", "local"] * 2
    assert tinystories_config("1Layer-21M").attention_layers == ["global"]
    assert tinystories_config("2Layers-33M").attention_layers == ["global", "local"]
    # overriding depth keeps the alternation, odd depths end on a global layer
    assert tinystories_config("1M", num_layers=3).attention_layers == ["global", "local", "global"]


def test_overrides_apply_and_unknown_preset_is_named():
    config = tinystories_config("8M", vocab_size=10_000, max_position_embeddings=512)
    assert (config.vocab_size, config.max_position_embeddings, config.hidden_size) == (10_000, 512, 256)
    assert PRESETS["8M"]["vocab_size"] == 50257  # presets are not mutated
    with pytest.raises(ValueError, match="Unknown TinyStories preset '9M'"):
        tinystories_config("9M")


def test_width_depth_grid_covers_the_paper_sweep():
    grid = width_depth_grid(vocab_size=1000)
    assert len(grid) == len(GRID_HIDDEN_SIZES) * len(GRID_NUM_LAYERS) == 30
    config = grid["h512-l12"]
    assert (config.hidden_size, config.num_layers, config.vocab_size) == (512, 12, 1000)
    assert config.attention_layers == ["global", "local"] * 6
    assert grid["h64-l1"].attention_layers == ["global"]


def test_build_model_is_seeded_and_refuses_window_breaking_attention():
    config = tinystories_config("1M", num_layers=2, vocab_size=300, max_position_embeddings=64)
    a, b = build_model(config, seed=0), build_model(config, seed=0)
    assert torch.equal(a.transformer.wte.weight, b.transformer.wte.weight)
    assert a.config._attn_implementation == "sdpa"  # this package's exact SDPA attention is the default
    assert build_model(config, attn_implementation="eager").config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="local attention window"):
        build_model(config, attn_implementation="flash_attention_2")


def test_load_model_roundtrip_with_plain_transformers(tmp_path):
    config = tinystories_config("1M", num_layers=2, vocab_size=300, max_position_embeddings=64)
    model = build_model(config, seed=1)
    model.save_pretrained(tmp_path)
    ids = torch.tensor([[1, 2, 3, 4]])
    loaded = load_model(str(tmp_path))
    plain = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not loaded.training
    assert torch.allclose(loaded(ids).logits, model.eval()(ids).logits, atol=1e-6)
    assert torch.allclose(plain(ids).logits, model(ids).logits, atol=1e-6)
