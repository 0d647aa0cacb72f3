"""The model card of folders other than a plain GPT-Neo run: LoRA adapters, another architecture; presets by shape."""

import json

from huggingface_hub import ModelCard

from tinystories.hub import main as push
from tinystories.hub import render_model_card
from tinystories.hub.architecture import find_preset


def test_lora_adapters_get_a_peft_card_on_their_base_model(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "adapters"
    folder.mkdir()
    save_file({"lora_A.weight": torch.zeros(4, 8)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "roneneldan/TinyStories-33M", "r": 4, "lora_alpha": 8})
    )
    (folder / "all_results.json").write_text(
        json.dumps({"eval_loss": 1.5, "base_model": "roneneldan/TinyStories-33M"})
    )
    card = render_model_card(str(folder), repo_id="me/lora")
    assert card.data.library_name == "peft" and card.data.base_model == "roneneldan/TinyStories-33M"
    assert "AutoPeftModelForCausalLM" in card.text and "LoRA adapters (r 4, alpha 8" in card.text
    # training saves the (possibly trained or pruned) tokenizer with the adapters: load that one
    assert 'AutoTokenizer.from_pretrained("me/lora")' in card.text and "base_model_name_or_path" not in card.text


def test_a_gpt2_folder_gets_a_generic_architecture_and_its_own_tags(tmp_path, fake_hub, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "tiny-gpt2"
    config = GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32)
    GPT2LMHeadModel(config).save_pretrained(folder)  # no all_results.json, no recipe.yaml
    monkeypatch.delenv("HF_TOKEN")

    result = push(["model", str(folder), "me/tiny-gpt2", "--dry_run"])

    assert fake_hub.calls == []
    card = ModelCard(result["card"])
    assert "gpt2" in card.data.tags and "gpt-neo" not in card.data.tags and "tinystories" in card.data.tags
    text = card.text
    assert "GPT-Neo" not in text and "GPTNeoForCausalLM" not in text and "| preset |" not in text
    assert "A small `gpt2` language model" in text and "a stock `GPT2LMHeadModel` checkpoint" in text
    for row in ("| model type | `gpt2` |", "| hidden size | 16 |", "| layers | 1 |", "| attention heads | 2 |"):
        assert row in text
    assert "| vocabulary | 64 |" in text and "| positions | 32 |" in text
    assert f"| parameters | {sum(p.numel() for p in GPT2LMHeadModel(config).parameters()):,} |" in text
    assert "No eval loss was recorded" in text and "The recipe was not recorded." in text
    assert "load_model(" not in text  # tinystories' fast attention is GPT-Neo's only


def test_find_preset_matches_the_shape_not_the_vocabulary():
    from tinystories.models import PRESETS, tinystories_config

    for name in PRESETS:
        config = tinystories_config(name, vocab_size=10_000, max_position_embeddings=512).to_dict()
        assert find_preset(config) == name
    assert find_preset(tinystories_config("8M", num_layers=4).to_dict()) == "custom"
    assert find_preset(tinystories_config("8M", hidden_size=320).to_dict()) == "custom"
