"""``tinystories push model``: what is uploaded (and never), the card's YAML and text, GPT-Eval results, visibility."""

import json
import logging
import os

import pytest
from huggingface_hub import ModelCard

from tinystories.errors import PushError
from tinystories.hub import load_eval_results, render_model_card
from tinystories.hub import main as push
from tinystories.hub.eval_results import GPT_EVAL_FILE, GPT_EVAL_SOURCE_NAME, GPT_EVAL_SOURCE_URL

from .hub_testing import (
    GPT_EVAL_DEFAULT,
    GPT_EVAL_INSTRUCT,
    SENTINEL,
    assert_no_token,
    snapshot,
    tinystories_push,
    uploaded_card,
)


def test_push_model_uploads_the_model_and_its_card_never_checkpoints_caches_or_the_token(
    model_dir, tiny_model, tmp_path, fake_hub, caplog
):
    # what a real run folder also holds, none of which may be published
    (model_dir / "checkpoint-20").mkdir()
    (model_dir / "checkpoint-20" / "optimizer.pt").write_bytes(b"state")
    (model_dir / "checkpoint-20" / "model.safetensors").write_bytes(b"weights")
    (model_dir / ".cache").mkdir()
    (model_dir / ".cache" / "requests.sqlite").write_bytes(b"cache")
    (model_dir / "notes.sqlite").write_bytes(b"db")
    (model_dir / "train.log").write_text("log")
    (model_dir / ".env").write_text(f"HF_TOKEN={SENTINEL}\n")
    (model_dir / GPT_EVAL_FILE).write_text(json.dumps({**GPT_EVAL_DEFAULT, "model_name_or_path": "tiny-model"}))
    instruct = tmp_path / "instruct_results.json"
    instruct.write_text(json.dumps(GPT_EVAL_INSTRUCT))
    before = snapshot(model_dir)

    with caplog.at_level(logging.WARNING, logger="tinystories.hub"):
        result = push(
            [
                *("model", str(model_dir), "me/tinystories-tiny", "--eval_results", str(instruct)),
                *("--private", "--revision", "v1", "--commit_message", "First push"),
            ]
        )

    assert fake_hub.repos == [
        {"repo_id": "me/tinystories-tiny", "repo_type": "model", "private": True, "exist_ok": True}
    ]
    assert fake_hub.calls == ["HfApi()", "create_repo", "repo_info", "create_branch", "create_commit"]
    assert fake_hub.branches == [
        {"repo_id": "me/tinystories-tiny", "branch": "v1", "repo_type": "model", "exist_ok": True}
    ]
    commit = fake_hub.commit
    assert commit["revision"] == "v1" and commit["commit_message"] == "First push"
    assert sorted(commit["files"]) == [
        "README.md",
        "all_results.json",
        "config.json",
        "generation_config.json",
        GPT_EVAL_FILE,
        "gpt_eval_results_instruct_gpt-4o.json",  # the command line's results, beside the folder's own
        "model.safetensors",
        "recipe.yaml",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_state.json",
    ]
    assert commit["files"]["gpt_eval_results_instruct_gpt-4o.json"] == instruct.read_bytes()
    assert result["files"] == sorted(commit["files"])
    assert result["url"] == "https://huggingface.co/me/tinystories-tiny/tree/v1"
    assert snapshot(model_dir) == before  # nothing written into the folder: the card went from memory
    # the instruct results graded runs/tiny, not this folder: said, not refused
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "graded runs/tiny, not tiny-model" in warning

    card = uploaded_card(commit["files"], ModelCard)
    data = card.data
    assert data.license == "apache-2.0" and data.library_name == "transformers"
    assert data.pipeline_tag == "text-generation" and data.language == "en"
    assert {"tinystories", "gpt-neo", "text-generation", "gpt-eval"} <= set(data.tags)
    assert data.base_model is None and data.datasets is None  # trained from scratch on a local file
    assert data.model_name == "tinystories-tiny"
    scores = {(r.dataset_config, r.metric_type): r for r in data.eval_results}
    assert set(scores) == {("default", a) for a in ("grammar", "creativity", "consistency")} | {
        ("instruct", a) for a in ("grammar", "creativity", "consistency", "plot")
    }
    grammar = scores["default", "grammar"]
    assert grammar.metric_value == 7.1 and grammar.metric_name == "GPT-Eval grammar (judge: gpt-4o)"
    assert grammar.task_type == "text-generation" and grammar.dataset_type == "tinystories-gpt-eval"
    assert grammar.dataset_name == "TinyStories GPT-Eval story beginnings"
    assert (grammar.source_name, grammar.source_url) == (GPT_EVAL_SOURCE_NAME, GPT_EVAL_SOURCE_URL)
    assert scores["default", "creativity"].metric_value == 6.04
    text = card.text
    assert "| custom | 32 | 2 | 2 | 256 |" in text  # the architecture table
    assert "7.10 [6.90, 7.30]" in text and "5.50 [5.20, 5.80]" in text  # the GPT-Eval table
    # the snippets load the pushed branch
    assert 'AutoModelForCausalLM.from_pretrained("me/tinystories-tiny", revision="v1")' in text
    assert 'AutoTokenizer.from_pretrained("me/tinystories-tiny", revision="v1")' in text
    assert 'load_model("me/tinystories-tiny", revision="v1")' in text and "model.generate(" in text
    assert "eldan2023tinystories" in text and "Eval loss **" in text
    # recipe.yaml without the paths of this machine; the folder's own keeps them
    recipe = commit["files"]["recipe.yaml"].decode()
    trained_in = os.path.dirname(tiny_model)
    assert f"output_dir: {tiny_model}\n" in (model_dir / "recipe.yaml").read_text()  # the folder's own: as written
    assert "output_dir: model\n" in recipe and "train_file: stories.txt\n" in recipe
    assert "/" not in "".join(line.split("#")[0] for line in recipe.splitlines())
    assert trained_in not in recipe and trained_in not in text
    assert "| start | from scratch: preset `1M`" in text and "`stories.txt`" in text
    assert ".env" not in commit["files"]
    os.remove(model_dir / ".env")  # the only file that held the token: everything else must be clean
    assert_no_token(tmp_path, commit["files"])


def test_private_is_refused_for_an_existing_public_repo(model_dir, fake_hub, capsys):
    fake_hub.private["me/public-model"] = False  # there before, public
    with pytest.raises(SystemExit) as exit_info:
        tinystories_push(["model", str(model_dir), "me/public-model", "--private"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        "tinystories push: error: me/public-model exists and is public; --private would not make it private: "
        "change its visibility on the Hub or drop --private"
    )
    assert fake_hub.calls == ["HfApi()", "create_repo", "repo_info"] and fake_hub.commits == []
    assert fake_hub.private["me/public-model"] is False  # not changed either
    push(["model", str(model_dir), "me/public-model"])  # without --private it is pushed as it is
    assert len(fake_hub.commits) == 1


def test_model_card_yaml_names_the_base_model_and_hub_datasets_and_the_eval_loss(model_dir, tmp_path, fake_hub):
    results = json.loads((model_dir / "all_results.json").read_text())
    # training recorded where validation came from: the tiny model's was held out of its train file
    assert results["validation_source"] == {"kind": "held_out", "percentage": 10.0}
    results.update(base_model="roneneldan/TinyStories-1M", datasets=["roneneldan/TinyStories"])
    (model_dir / "all_results.json").write_text(json.dumps(results))
    (model_dir / "recipe.yaml").write_text(
        "model_name_or_path: roneneldan/TinyStories-1M\ndataset_name: roneneldan/TinyStories\nlearning_rate: 5.0e-4\n"
    )
    only = tmp_path / "results.json"
    only.write_text(json.dumps({**GPT_EVAL_DEFAULT, "model_name_or_path": str(model_dir)}))

    push(["model", str(model_dir), "me/tiny-finetuned", "--license", "mit", "--tags", "fine-tuned"])
    push(["model", str(model_dir), "me/tiny-finetuned", "--eval_results", str(only)])

    first, second = fake_hub.commits
    assert first["commit_message"] == "Upload TinyStories model with tinystories push"  # the kind's default
    data = uploaded_card(first["files"], ModelCard).data
    assert data.base_model == "roneneldan/TinyStories-1M" and data.datasets == ["roneneldan/TinyStories"]
    assert data.license == "mit" and "fine-tuned" in data.tags
    (loss,) = data.eval_results
    assert (loss.metric_type, loss.dataset_type) == ("loss", "roneneldan/TinyStories")
    # not a 'validation' split of the dataset: 10% of its train split held out, and said so
    assert loss.dataset_split is None and loss.metric_name == "Eval loss (10% of the train split held out)"
    assert loss.metric_value == round(results["eval_loss"], 4)
    text = first["files"]["README.md"].decode()
    assert "fine-tuned from [`roneneldan/TinyStories-1M`](https://huggingface.co/roneneldan/TinyStories-1M)" in text
    assert "[`roneneldan/TinyStories`](https://huggingface.co/datasets/roneneldan/TinyStories)" in text
    assert "Validation: 10% of the training stories, held out" in text
    assert first["files"]["recipe.yaml"] == (model_dir / "recipe.yaml").read_bytes()  # Hub ids only: as is
    # one --eval_results file goes as gpt_eval_results.json
    assert second["files"][GPT_EVAL_FILE] == only.read_bytes()

    results["validation_source"] = {"kind": "split", "split": "validation"}
    (model_dir / "all_results.json").write_text(json.dumps(results))
    (loss,) = render_model_card(str(model_dir), repo_id="me/tiny-finetuned").data.eval_results
    assert (loss.dataset_split, loss.metric_name) == ("validation", "Eval loss")


def test_eval_results_of_two_judges_are_both_kept_and_uploaded(model_dir, tmp_path, fake_hub):
    paths = []
    for judge in ("gpt-4o", "meta/llama-3.1-70b"):
        path = tmp_path / f"{judge.replace('/', '_')}.json"
        path.write_text(json.dumps({**GPT_EVAL_DEFAULT, "judge_model": judge}))
        paths.append(str(path))
    assert [r["judge_model"] for r in load_eval_results(paths)] == ["gpt-4o", "meta/llama-3.1-70b"]

    push(["model", str(model_dir), "me/tiny", "--eval_results", *paths])

    files = fake_hub.commit["files"]
    assert files["gpt_eval_results_default_gpt-4o.json"] == open(paths[0], "rb").read()
    assert files["gpt_eval_results_default_meta-llama-3.1-70b.json"] == open(paths[1], "rb").read()
    assert GPT_EVAL_FILE not in files
    data = uploaded_card(files, ModelCard).data
    names = sorted(r.metric_name for r in data.eval_results if r.metric_type == "grammar")
    assert names == ["GPT-Eval grammar (judge: gpt-4o)", "GPT-Eval grammar (judge: meta/llama-3.1-70b)"]
    text = uploaded_card(files, ModelCard).text
    assert "| `default` | `gpt-4o` |" in text and "| `default` | `meta/llama-3.1-70b` |" in text


def test_card_keep_uploads_the_folders_own_readme(model_dir, fake_hub):
    with pytest.raises(PushError, match="--card keep: .* has no README.md"):
        push(["model", str(model_dir), "me/tiny", "--card", "keep"])
    (model_dir / "README.md").write_text("# my own card\n")
    result = push(["model", str(model_dir), "me/tiny", "--card", "keep"])
    assert fake_hub.commit["files"]["README.md"] == b"# my own card\n" and result["card"] is None


def test_a_streamed_runs_held_out_validation_is_named_by_its_count():
    from tinystories.hub.training_record import eval_loss_result, training_data_text

    results = {"eval_loss": 2.5, "validation_source": {"kind": "held_out", "stories": 1000}, "train_streamed": True}
    text = training_data_text({"dataset_name": "me/stories"}, results, ["me/stories"])
    assert "Validation: the first 1,000 training stories, held out" in text and "%" not in text
    assert (
        eval_loss_result(results, {}, "me/stories").metric_name
        == "Eval loss (the first 1,000 training stories held out)"
    )
