"""The published ``recipe.yaml``: local paths reduced to their names, Hub ids and URLs kept, the folder untouched."""

from tinystories.hub.recipe_publishing import published_recipe, sanitize_recipe


def test_recipe_paths_are_reduced_to_their_names_hub_ids_kept(tmp_path):
    recipe = {
        "model_name_or_path": str(tmp_path / "runs" / "base"),
        "tokenizer_name_or_path": "roneneldan/TinyStories-33M",
        "dataset_name": "roneneldan/TinyStories",
        "train_file": "hf://datasets/roneneldan/TinyStories@main/TinyStoriesV2-GPT4-train.txt",
        "validation_file": "data/valid.txt",
        "output_dir": "/home/someone/runs/33m",
        "cache_dir": "~/.cache/tinystories",
        "hub_model_id": "me/tinystories-33m",
        "sample_prompt": "Once upon a time",
        "learning_rate": 0.001,
    }
    clean = sanitize_recipe(recipe, {"base_model": None, "datasets": ["roneneldan/TinyStories"]})
    assert clean == {
        **recipe,
        "model_name_or_path": "base",
        "validation_file": "valid.txt",
        "output_dir": "33m",
        "cache_dir": "tinystories",
    }
    # without what training recorded: a path that exists, or is absolute or relative with './', is local
    assert sanitize_recipe({"tokenizer_name_or_path": "./tok", "model_name_or_path": "owner/model"}) == {
        "tokenizer_name_or_path": "tok",
        "model_name_or_path": "owner/model",
    }


def test_the_published_recipe_keeps_its_header_and_leaves_the_folders_file_alone(tmp_path):
    original = "# The resolved recipe of this run\noutput_dir: /home/someone/runs/33m\nlearning_rate: 0.001\n"
    (tmp_path / "recipe.yaml").write_text(original)
    recipe, published = published_recipe(str(tmp_path))
    assert recipe == {"output_dir": "33m", "learning_rate": 0.001}
    assert published.decode() == (
        "# The resolved recipe of this run\n"
        "# Local paths are reduced to their names (tinystories push): point them at your own files.\n"
        "output_dir: 33m\nlearning_rate: 0.001\n"
    )
    assert (tmp_path / "recipe.yaml").read_text() == original
    (tmp_path / "recipe.yaml").write_text("learning_rate: 0.001\n")
    assert published_recipe(str(tmp_path)) == ({"learning_rate": 0.001}, None)  # nothing to change: as is
