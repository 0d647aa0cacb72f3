"""The example cards of fixtures/, rendered from the hand-written inputs of fixtures/inputs/ (a model folder's
config.json, all_results.json and recipe.yaml; a dataset's generation.json) and the GPT-Eval results of
hub_testing.py. Nothing in them varies between runs, so the comparison is exact: every number counts.
Regenerate them after changing a template or a card (then read the diff):
    TINYSTORIES_REGEN_FIXTURES=1 python -m pytest tests/hub -k fixture
"""

import difflib
import json
import os
import shutil

import pytest

from tinystories.hub import load_eval_results, render_dataset_card, render_model_card
from tinystories.hub.templates import card_template

from .hub_testing import FIXTURES, GPT_EVAL_DEFAULT, GPT_EVAL_INSTRUCT

INPUTS = os.path.join(FIXTURES, "inputs")
REGEN = os.environ.get("TINYSTORIES_REGEN_FIXTURES") == "1"


def check_fixture(name: str, rendered: str, regen: bool = REGEN) -> None:
    """``rendered`` is ``fixtures/name`` exactly (``regen``: write it there first)."""
    path = os.path.join(FIXTURES, name)
    if regen:
        with open(path, "w", encoding="utf-8") as f:
            f.write(rendered)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    if rendered != expected:
        diff = difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), name, "rendered", n=1)
        raise AssertionError(f"{name} changed (regenerate it: see {__name__}'s docstring):\n{''.join(diff)}")


@pytest.fixture
def fixture_model(tmp_path):
    """A model folder of the hand-written inputs, with weights of their config (the card counts the parameters)."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    folder = tmp_path / "tinystories-tiny"
    GPTNeoForCausalLM(GPTNeoConfig.from_json_file(os.path.join(INPUTS, "model", "config.json"))).save_pretrained(
        folder
    )
    for name in ("config.json", "all_results.json", "recipe.yaml"):
        shutil.copyfile(os.path.join(INPUTS, "model", name), folder / name)
    return folder


@pytest.fixture
def fixture_dataset(tmp_path):
    """A dataset folder of the hand-written ``generation.json`` (its Parquet files exist, empty: the card reads the
    summary, and only checks that the files its configs name are there)."""
    folder = tmp_path / "tinystories-fake"
    folder.mkdir()
    shutil.copyfile(os.path.join(INPUTS, "dataset", "generation.json"), folder / "generation.json")
    summary = json.loads((folder / "generation.json").read_text())
    for config in summary["metadata"]["configs"]:
        for entry in config["data_files"]:
            (folder / entry["path"]).parent.mkdir(exist_ok=True)
            (folder / entry["path"]).write_bytes(b"")
    return folder


def test_model_card_fixture(fixture_model, tmp_path):
    results = []
    for i, value in enumerate((GPT_EVAL_DEFAULT, GPT_EVAL_INSTRUCT)):
        path = tmp_path / f"results{i}.json"
        path.write_text(json.dumps(value))
        results.append(str(path))
    card = render_model_card(str(fixture_model), load_eval_results(results), "your-name/tinystories-tiny")
    check_fixture("model_card.md", str(card))


def test_dataset_card_fixture(fixture_dataset):
    card = render_dataset_card(str(fixture_dataset), "your-name/tinystories-fake")
    check_fixture("dataset_card.md", str(card))


def test_a_card_that_differs_by_one_number_fails_its_fixture():
    """The comparison masks nothing: a number changed in the YAML, a table or the text is a failure."""
    for name, changes in {
        "model_card.md": [("value: 5.5", "value: 5.6"), ("| 67,648 |", "| 67,649 |"), ("**3.6583**", "**3.6584**")],
        "dataset_card.md": [("num_bytes: 14062", "num_bytes: 14063"), ("| generated | 44 |", "| generated | 45 |")],
    }.items():
        with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
            expected = f.read()
        check_fixture(name, expected, regen=False)
        for old, new in changes:
            assert expected.count(old) == 1, (name, old)
            with pytest.raises(AssertionError, match=f"{name} changed"):
                check_fixture(name, expected.replace(old, new), regen=False)


def test_the_pushed_dataset_card_is_the_card_generate_wrote(generated_dataset):
    card = render_dataset_card(str(generated_dataset), "your-name/tinystories-fake")
    assert (
        str(card).replace("your-name/tinystories-fake", "REPO_OR_FOLDER")
        == (generated_dataset / "README.md").read_text()
    )  # the same card generate wrote, with the Hub id


def test_the_hand_written_summary_has_the_shape_generate_writes(generated_dataset):
    """fixtures/inputs/dataset/generation.json stands for what ``tinystories generate`` writes: the same keys."""
    with open(os.path.join(INPUTS, "dataset", "generation.json"), encoding="utf-8") as f:
        hand = json.load(f)
    real = json.loads((generated_dataset / "generation.json").read_text())
    assert set(hand) == set(real)
    for key in ("arguments", "engine", "filters", "metadata"):
        assert set(hand[key]) == set(real[key]), key
    for section in real["engine"]:
        assert set(hand["engine"][section]) == set(real["engine"][section]), section
    assert [set(row) for row in hand["counts"]] == [set(row) for row in real["counts"]]
    assert hand["metadata"]["configs"] == real["metadata"]["configs"]


def test_card_templates_load_from_an_installed_package(tmp_path, monkeypatch):
    """A non-editable install has no hub_cards/ beside the package: the templates are its package data."""
    import importlib.resources

    installed = tmp_path / "site-packages" / "tinystories"
    (installed / "hub_cards").mkdir(parents=True)
    (installed / "hub_cards" / "model_card.md").write_text("installed {{ x }}")
    real_files = importlib.resources.files
    monkeypatch.setattr(
        importlib.resources, "files", lambda pkg: installed if pkg == "tinystories" else real_files(pkg)
    )
    assert card_template("model_card.md") == "installed {{ x }}"
    assert "card_data" in card_template("dataset_card.md")  # not there: the source checkout's hub_cards/
