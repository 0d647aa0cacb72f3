"""``tinystories push dataset``: the Parquet configs and the card, never the request cache; revisions; refusals."""

import json
import os

import pytest
from huggingface_hub import DatasetCard

from tinystories.hub import main as push

from .hub_testing import assert_no_token, snapshot, tinystories_push, uploaded_card


def test_push_dataset_keeps_its_configs_and_skips_the_request_cache(dataset_dir, fake_hub):
    import datasets

    before = snapshot(dataset_dir)
    push(["dataset", str(dataset_dir), "me/tinystories-fake"])
    assert snapshot(dataset_dir) == before  # its README (generate's card) is not overwritten

    assert fake_hub.repos == [
        {"repo_id": "me/tinystories-fake", "repo_type": "dataset", "private": None, "exist_ok": True}
    ]
    assert fake_hub.branches == []
    commit = fake_hub.commit
    assert commit["repo_type"] == "dataset" and commit["revision"] is None
    assert commit["commit_message"] == "Upload TinyStories dataset with tinystories push"
    assert sorted(commit["files"]) == [
        "README.md",
        "default/train-00000-of-00001.parquet",
        "default/validation-00000-of-00001.parquet",
        "generation.json",
        "instruct/train-00000-of-00001.parquet",
        "instruct/validation-00000-of-00001.parquet",
    ]  # not .shards/ (generate's markers and dedup signatures)
    assert os.path.isfile(dataset_dir / ".cache" / "requests.sqlite")  # there, but not uploaded
    card = uploaded_card(commit["files"], DatasetCard)
    configs = {c["config_name"]: c for c in card.data.configs}
    assert set(configs) == {"default", "instruct"} and configs["default"]["default"] is True
    assert {f["path"] for f in configs["instruct"]["data_files"]} == {
        "instruct/train-*.parquet",
        "instruct/validation-*.parquet",
    }
    assert card.data.license == "cdla-sharing-1.0" and "tinystories" in card.data.tags
    assert 'load_dataset("me/tinystories-fake", "instruct")' in card.text and "fake-gpt" in card.text
    assert "REPO_OR_FOLDER" in (dataset_dir / "README.md").read_text()
    # the folder still loads in both configs with the card written for the Hub
    rows = {
        (c["config"], c["split"]): c["rows"]
        for c in json.loads((dataset_dir / "generation.json").read_text())["counts"]
    }
    assert len(datasets.load_dataset(str(dataset_dir))["train"]) == rows["default", "train"]
    assert len(datasets.load_dataset(str(dataset_dir), "instruct")["validation"]) == rows["instruct", "validation"]
    for content in commit["files"].values():
        assert b"sk-test" not in content
    assert_no_token(dataset_dir, commit["files"])


def test_the_dataset_card_of_a_revision_loads_that_revision(dataset_dir, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    result = push(["dataset", str(dataset_dir), "me/tinystories-fake", "--revision", "v2", "--dry_run"])
    assert 'load_dataset("me/tinystories-fake", revision="v2")' in result["card"]
    assert 'load_dataset("me/tinystories-fake", "instruct", revision="v2")' in result["card"]
    assert fake_hub.calls == []


def test_a_dataset_folder_without_configs_is_refused(tmp_path, fake_hub, capsys):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "train.parquet").write_bytes(b"x")
    with pytest.raises(SystemExit) as exit_info:
        tinystories_push(["dataset", str(folder), "me/plain"])
    assert exit_info.value.code == 2
    assert "not a dataset folder" in capsys.readouterr().err
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# plain\n")
    with pytest.raises(SystemExit):
        tinystories_push(["dataset", str(folder), "me/plain"])
    assert "declares no configs" in capsys.readouterr().err
    assert fake_hub.repos == [] and fake_hub.commits == []


def test_a_dataset_folder_without_a_summary_keeps_its_cards_license(tmp_path, fake_hub, monkeypatch):
    folder = tmp_path / "plain"
    (folder / "default").mkdir(parents=True)
    (folder / "default" / "train.parquet").write_bytes(b"x")
    (folder / "README.md").write_text(
        "---\nlicense: mit\nconfigs:\n- config_name: default\n  data_files: default/*.parquet\n---\n# plain\n"
    )
    monkeypatch.delenv("HF_TOKEN")
    result = push(["dataset", str(folder), "me/plain", "--dry_run"])
    assert DatasetCard(result["card"]).data.license == "mit"  # no --license: the card's own
    result = push(["dataset", str(folder), "me/plain", "--dry_run", "--license", "cc-by-4.0"])
    assert DatasetCard(result["card"]).data.license == "cc-by-4.0"
