"""``push_to_hub: true`` in a training recipe: one push after training, with this package's card, from process zero
only, the token checked before training and never written (``tinystories.train`` wires training to the hub)."""

import os
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard

from .hub_testing import SENTINEL, assert_no_token, uploaded_card


def test_training_sources_are_hub_ids_only(tmp_path):
    from tinystories.training.provenance import training_sources

    local = tmp_path / "data"
    local.mkdir()
    model = SimpleNamespace(model_name_or_path="roneneldan/TinyStories-33M")
    data = SimpleNamespace(
        dataset_name=str(local),
        train_file="hf://datasets/roneneldan/TinyStories@main/TinyStoriesV2-GPT4-train.txt",
        validation_file=None,
    )
    assert training_sources(model, data) == {
        "base_model": "roneneldan/TinyStories-33M",
        "datasets": ["roneneldan/TinyStories"],
    }
    model = SimpleNamespace(model_name_or_path=str(tmp_path))
    data = SimpleNamespace(dataset_name="roneneldan/TinyStories", train_file=None, validation_file=None)
    assert training_sources(model, data) == {"base_model": None, "datasets": ["roneneldan/TinyStories"]}


def test_training_with_push_to_hub_pushes_once_with_this_card_and_never_writes_the_token(
    tmp_path, fake_hub, monkeypatch
):
    from conftest import REPO, make_stories, write_v2

    from tinystories.train import main as train

    monkeypatch.delenv("HF_TOKEN")  # the token is --hub_token's only
    out = tmp_path / "run"
    train(
        [
            os.path.join(REPO, "recipes", "smoke", "pretrain.yaml"),
            *("--train_file", write_v2(tmp_path / "stories.txt", make_stories(120, seed=5))),
            *("--output_dir", str(out), "--config_overrides", "{hidden_size: 32, num_layers: 2, num_heads: 2}"),
            *("--block_size", "64", "--tokenizer_vocab_size", "300", "--max_steps", "10", "--eval_steps", "10"),
            *("--save_steps", "5", "--report_to", "none", "--push_to_hub", "true"),
            *("--hub_model_id", "me/pushed-by-train", "--hub_token", SENTINEL),
        ]
    )
    assert [r["repo_id"] for r in fake_hub.repos] == ["me/pushed-by-train"]  # not the Trainer's own repo/push
    assert fake_hub.tokens == [SENTINEL, SENTINEL]  # the push used --hub_token
    assert fake_hub.commit["commit_message"] == "End of training (tinystories train)"
    # the Trainer pickles its arguments into these: they must not hold the token (assert_no_token reads them)
    assert os.path.isfile(out / "training_args.bin") and os.path.isfile(out / "checkpoint-10" / "training_args.bin")
    files = fake_hub.commit["files"]
    assert "README.md" in files and "model.safetensors" in files and "recipe.yaml" in files
    assert not [f for f in files if f.startswith("checkpoint-") or f == "training_args.bin"]
    assert os.path.isdir(out / "checkpoint-10")
    card = uploaded_card(files, ModelCard)
    assert "## Training recipe" in card.text and "tinystories" in card.data.tags  # ours, not the Trainer's
    recipe = files["recipe.yaml"].decode()
    assert "push_to_hub: true" in recipe and "hub_model_id: me/pushed-by-train" in recipe and "_token:" not in recipe
    assert "output_dir: run\n" in recipe and str(tmp_path) not in recipe  # local paths: their names only
    assert str(tmp_path) in (out / "recipe.yaml").read_text()  # the run's own recipe keeps them
    assert_no_token(out, files)


def test_only_the_world_process_zero_pushes():
    from tinystories.training import pushes_from_this_process, trainer_arguments

    def args(process_index, push=True):
        # with save_on_each_node every node's main process saves (should_save): only the first one pushes
        return SimpleNamespace(push_to_hub=push, process_index=process_index, should_save=True, hub_token=SENTINEL)

    assert pushes_from_this_process(args(0))
    assert not pushes_from_this_process(args(1)) and not pushes_from_this_process(args(8))
    assert not pushes_from_this_process(args(0, push=False))
    original = args(0)
    copy = trainer_arguments(original)
    assert (copy.hub_token, copy.push_to_hub) == (None, False) and original.hub_token == SENTINEL


def test_training_with_push_to_hub_and_no_token_stops_before_training(tmp_path, fake_hub, monkeypatch):
    from conftest import REPO

    from tinystories.errors import RecipeError
    from tinystories.train import main as train

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(RecipeError, match="set HF_TOKEN or run `hf auth login`"):
        train(
            [
                os.path.join(REPO, "recipes", "smoke", "pretrain.yaml"),
                "--output_dir",
                str(tmp_path / "run"),
                "--push_to_hub",
            ]
        )
    assert not os.path.exists(tmp_path / "run" / "model.safetensors")
