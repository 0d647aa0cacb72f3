"""``tinystories push {model,dataset,metric}``: one subcommand per kind with only its options; user errors are one
line and exit 2 (printed by the ``tinystories`` command); dry runs need no token and touch nothing."""

import os
import re

import pytest
from huggingface_hub import ModelCard

from tinystories.errors import PushError
from tinystories.hub import main as push
from tinystories.hub.cli import build_parser

from .hub_testing import snapshot, tinystories_push


def test_user_errors_are_one_line_and_exit_2(model_dir, tmp_path, fake_hub, monkeypatch, capsys):
    def error(argv):
        with pytest.raises(SystemExit) as exit_info:
            tinystories_push(argv)
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    assert "not a model folder" in error(["model", str(tmp_path / "nowhere"), "me/x"])
    assert "invalid choice" in error(["checkpoint", str(model_dir), "me/x"])
    assert "not a metric module folder" in error(["metric", str(tmp_path), "me/x"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"scores": {}}')
    assert "not a GPT-Eval results.json" in error(["model", str(model_dir), "me/x", "--eval_results", str(bad)])
    assert "push model only" in error(["metric", "-", "me/x", "--tags", "a"])
    assert "push metric only" in error(["model", str(model_dir), "me/x", "--space_requirement", "x"])
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    message = error(["model", str(model_dir), "me/x"])
    assert "set HF_TOKEN or run `hf auth login`" in message and len(message.strip().splitlines()) == 1
    assert fake_hub.repos == [] and fake_hub.commits == []


def test_the_push_command_raises_push_errors_for_the_tinystories_command_to_print(tmp_path, capsys):
    with pytest.raises(PushError, match="not a model folder"):
        push(["model", str(tmp_path / "nowhere"), "me/x"])
    assert capsys.readouterr().err == ""  # printing is the tinystories command's (one line, exit 2)


def test_each_kind_takes_only_its_own_options(model_dir, capsys):
    def options(kind):
        with pytest.raises(SystemExit):
            push([kind, "--help"])
        return set(re.findall(r"--\w+", capsys.readouterr().out))

    shared = {"--help", "--private", "--revision", "--commit_message", "--dry_run"}
    assert options("model") == shared | {
        "--eval_results",
        "--tags",
        "--base_model",
        "--datasets",
        "--license",
        "--card",
    }
    assert options("dataset") == shared | {"--license", "--card"}
    assert options("metric") == shared | {"--space_requirement"}
    with pytest.raises(SystemExit) as exit_info:
        push(["dataset", str(model_dir), "me/x", "--eval_results", "r.json", "--base_model=a/b"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == (
        "tinystories push: error: unrecognized arguments: --eval_results r.json --base_model=a/b "
        "(--eval_results is an option of push model only; --base_model is an option of push model only)"
    )
    with pytest.raises(SystemExit):
        push(["metric", "-", "me/x", "--license", "mit", "--nonsense"])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.endswith("--license mit --nonsense (--license is an option of push model and push dataset only)")
    parser = build_parser()
    args = parser.parse_args(["model", "runs/x", "me/x", "--tags", "a", "b", "--private"])
    assert (args.kind, args.path, args.repo_id, args.tags, args.private) == (
        "model",
        "runs/x",
        "me/x",
        ["a", "b"],
        True,
    )
    assert args.license == "apache-2.0" and parser.parse_args(["dataset", "d", "me/d"]).license is None


def test_dry_run_renders_and_lists_without_a_token_or_network(model_dir, fake_hub, monkeypatch, capsys):
    from huggingface_hub import constants, get_token

    monkeypatch.delenv("HF_TOKEN")
    assert constants.HF_HUB_OFFLINE and get_token() is None and not os.path.exists(constants.HF_TOKEN_PATH)
    (model_dir / "training_args.bin").write_bytes(b"pickle")
    before = snapshot(model_dir)
    result = push(["model", str(model_dir), "me/tiny", "--dry_run"])
    assert fake_hub.calls == []  # no HfApi made, no method called
    assert snapshot(model_dir) == before  # no README.md written into PATH
    assert "README.md" in result["files"] and "training_args.bin" not in result["files"]
    out = capsys.readouterr().out
    assert "Dry run: would push" in out and "README.md as it would be uploaded" in out
    card = ModelCard(result["card"])
    assert card.text in out
    assert card.text.startswith("\n# tiny\n") and "model_name" not in card.data.to_dict()  # no model-index
