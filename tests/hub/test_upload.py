"""The upload itself: ``PushOptions``, and a selection of files that is huggingface_hub's own ``upload_folder``'s."""

import dataclasses

import pytest
from huggingface_hub import HfApi

from tinystories.hub import PushOptions, push_model
from tinystories.hub.upload import MODEL_IGNORE_PATTERNS, plan_upload

from .hub_testing import SENTINEL


def test_file_selection_is_upload_folders(model_dir, fake_hub):
    """``plan_upload`` (what a push commits) selects what huggingface_hub's own ``upload_folder`` would."""
    (model_dir / "checkpoint-5").mkdir()
    (model_dir / "checkpoint-5" / "optimizer.pt").write_bytes(b"state")
    (model_dir / ".git").mkdir()
    (model_dir / ".git" / "HEAD").write_text("ref")
    (model_dir / "training_args.bin").write_bytes(b"pickle")
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "notes.txt").write_text("notes")
    HfApi().upload_folder(
        repo_id="me/x", folder_path=str(model_dir), ignore_patterns=MODEL_IGNORE_PATTERNS, commit_message="x"
    )
    assert list(plan_upload(str(model_dir), MODEL_IGNORE_PATTERNS)) == sorted(fake_hub.commit["files"])


def test_push_options_hold_what_every_kind_shares_and_never_show_the_token():
    options = PushOptions(private=True, revision="v1", token=SENTINEL)
    assert SENTINEL not in repr(options) and options.branch == "v1"
    assert PushOptions(revision="main").branch is None and PushOptions().branch is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.private = False  # type: ignore[misc]


def test_push_model_from_python_takes_its_options_and_a_token(model_dir, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")  # the token comes from the options only
    result = push_model(
        str(model_dir), "me/tiny", PushOptions(revision="main", commit_message="From Python", token=SENTINEL)
    )
    assert fake_hub.tokens == [SENTINEL, SENTINEL] and fake_hub.branches == []  # main: no branch to create
    assert fake_hub.commit["commit_message"] == "From Python" and fake_hub.commit["revision"] == "main"
    assert result["url"] == "https://huggingface.co/me/tiny" and result["commit_url"].endswith("/commit/0123abcd")


def test_run_bookkeeping_is_never_pushed(model_dir):
    """A killed run leaves its lock (with the owner's pid, host and command) and generate's shard markers."""
    for name in (".tinystories.lock", ".tinystories.lock.json", ".shards/completions/00000"):
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_text("{}")
    planned = list(plan_upload(str(model_dir), MODEL_IGNORE_PATTERNS))
    assert planned and not [p for p in planned if ".tinystories.lock" in p or p.startswith(".shards")]
