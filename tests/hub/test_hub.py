"""`tinystories push` and the Hub cards, offline: huggingface_hub's HTTP calls are intercepted at `HfApi` level.

`create_repo`, `repo_info`, `create_branch`, `create_commit` and the README YAML check are replaced by fakes that
record what they get (and every `HfApi` made), so the tests see the exact commit operations `tinystories push` builds;
`test_file_selection_is_upload_folders` runs the real `upload_folder` to check that its selection is the same.
Any other request to the Hub fails (offline mode on).

The rendered example cards in tests/fixtures/ are rendered from hand-written results (all_results.json and GPT-Eval
results.json with known values): their YAML (the model-index) is compared exactly, but for Parquet byte sizes; the
text after normalising its numbers and the sampled story. Regenerate them after changing a template:
    TINYSTORIES_REGEN_FIXTURES=1 python -m pytest tests/test_hub.py -k fixture
"""

import json
import logging
import os
import re
import shutil
from types import SimpleNamespace

import pytest
from huggingface_hub import CommitInfo, DatasetCard, HfApi, ModelCard, RepoUrl, SpaceCard
from openai_server import FakeOpenAIServer

from tinystories.hub import main as push
from tinystories.hub import push as hub

SENTINEL = "hf_SENTINELtoken123"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
REGEN = os.environ.get("TINYSTORIES_REGEN_FIXTURES") == "1"

GPT_EVAL_DEFAULT = {
    "model_name_or_path": "runs/tiny",
    "config_name": "default",
    "judge_model": "gpt-4o",
    "base_url": None,
    "num_prompts": 50,
    "num_completions": 10,
    "scores": {
        "grammar": 7.1,
        "grammar_ci": [6.9, 7.3],
        "creativity": 6.04,
        "creativity_ci": [5.8, 6.3],
        "consistency": 7.4,
        "consistency_ci": [7.2, 7.6],
        "age_group": {"A": 0.1, "B": 0.5, "C": 0.4, "D": 0.0},
        "num_graded": 498,
        "num_ungraded": 2,
    },
    "usage": {
        "requests_sent": 1000,
        "requests_cached": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 1.2,
    },
    "settings": {},
}
GPT_EVAL_INSTRUCT = {
    **GPT_EVAL_DEFAULT,
    "config_name": "instruct",
    "scores": {**GPT_EVAL_DEFAULT["scores"], "plot": 5.5, "plot_ci": [5.2, 5.8]},
}


class FakeHub:
    """Records the repositories, branches and commits a push makes (and every call and token); no HTTP.
    ``private`` holds the visibility of the repositories that exist: set one to pretend it was there before."""

    def __init__(self):
        self.repos, self.branches, self.commits, self.calls, self.tokens = [], [], [], [], []
        self.private: dict[str, bool] = {}

    def create_repo(self, api, repo_id, **kwargs):
        assert api.token in (None, SENTINEL)
        self.calls.append("create_repo")
        self.tokens.append(api.token)
        self.repos.append({"repo_id": repo_id, **kwargs})
        repo_id = repo_id if "/" in repo_id else f"tester/{repo_id}"
        self.private.setdefault(repo_id, bool(kwargs.get("private")))
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(kwargs.get("repo_type"), "")
        return RepoUrl(f"https://huggingface.co/{prefix}{repo_id}")

    def repo_info(self, api, repo_id, **kwargs):
        self.calls.append("repo_info")
        return SimpleNamespace(id=repo_id, private=self.private[repo_id])

    def create_branch(self, api, repo_id, **kwargs):
        self.calls.append("create_branch")
        self.branches.append({"repo_id": repo_id, **kwargs})

    def create_commit(self, api, repo_id, operations, **kwargs):
        self.calls.append("create_commit")
        self.tokens.append(api.token)
        files = {}
        for op in operations:
            source = op.path_or_fileobj
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as f:
                    files[op.path_in_repo] = f.read()
            else:
                files[op.path_in_repo] = bytes(source)
        self.commits.append({"repo_id": repo_id, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/0123abcd",
            commit_message=kwargs.get("commit_message"),
            commit_description="",
            oid="0123abcd",
            pr_url=None,
        )

    @property
    def commit(self):
        assert len(self.commits) == 1, self.commits
        return self.commits[0]


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as constants
    import huggingface_hub.hf_api as hf_api

    fake = FakeHub()
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # anything not intercepted below fails loudly
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)  # upload_folder -> create_commit
    init = HfApi.__init__

    def recorded_init(api, *args, **kwargs):
        fake.calls.append("HfApi()")
        init(api, *args, **kwargs)

    monkeypatch.setattr(HfApi, "__init__", recorded_init)
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: fake.create_repo(api, repo_id, **kw))
    monkeypatch.setattr(HfApi, "repo_info", lambda api, repo_id, **kw: fake.repo_info(api, repo_id, **kw))
    monkeypatch.setattr(HfApi, "create_branch", lambda api, repo_id, **kw: fake.create_branch(api, repo_id, **kw))
    monkeypatch.setattr(
        HfApi,
        "create_commit",
        lambda api, repo_id, operations, **kw: fake.create_commit(api, repo_id, operations, **kw),
    )
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda api, content, **kw: None)
    yield fake
    assert not os.path.exists(tmp_path / "hf_home"), "a token file was written"


def assert_no_token(folder, files=None):
    """The sentinel token is in no uploaded file and in no file under ``folder``."""
    for name, content in (files or {}).items():
        assert SENTINEL.encode() not in content, f"token in uploaded {name}"
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                assert SENTINEL.encode() not in f.read(), f"token in {os.path.join(root, name)}"


def uploaded_card(files, cls):
    return cls(files["README.md"].decode("utf-8"))


def snapshot(folder):
    """Every file of ``folder`` with its bytes: a push must leave it as it was."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                files[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return files


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    """A copy of the trained tiny model (tests add files to it)."""
    path = tmp_path / "tiny-model"
    shutil.copytree(tiny_model, path)
    return path


@pytest.fixture(scope="module")
def generated_dataset(tmp_path_factory):
    """A TinyStories(-Instruct) folder written by `tinystories generate` against the fake OpenAI server."""
    from tinystories.cli import generate

    out = tmp_path_factory.mktemp("generated") / "tinystories-fake"
    os.environ.setdefault("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer() as server:
        generate(
            [
                *("--model", "fake-gpt", "--base_url", server.base_url, "--num_stories", "40"),
                *("--output_dir", str(out), "--max_concurrency", "8", "--validation_fraction", "0.1"),
                *("--min_words", "10", "--max_out_of_vocabulary", "0.6", "--dedup_threshold", "0.97", "--instruct"),
            ]
        )
    return out


@pytest.fixture
def dataset_dir(generated_dataset, tmp_path):
    path = tmp_path / "tinystories-fake"
    shutil.copytree(generated_dataset, path)
    return path


# ------------------------------------------------------------------------------------------------------------------
# model


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
    (model_dir / hub.GPT_EVAL_FILE).write_text(json.dumps({**GPT_EVAL_DEFAULT, "model_name_or_path": "tiny-model"}))
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
        hub.GPT_EVAL_FILE,
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
    assert (grammar.source_name, grammar.source_url) == (hub.GPT_EVAL_SOURCE_NAME, hub.GPT_EVAL_SOURCE_URL)
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
        push(["model", str(model_dir), "me/public-model", "--private"])
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
    assert second["files"][hub.GPT_EVAL_FILE] == only.read_bytes()

    results["validation_source"] = {"kind": "split", "split": "validation"}
    (model_dir / "all_results.json").write_text(json.dumps(results))
    (loss,) = hub.render_model_card(str(model_dir), repo_id="me/tiny-finetuned").data.eval_results
    assert (loss.dataset_split, loss.metric_name) == ("validation", "Eval loss")


def test_eval_results_of_two_judges_are_both_kept_and_uploaded(model_dir, tmp_path, fake_hub):
    paths = []
    for judge in ("gpt-4o", "meta/llama-3.1-70b"):
        path = tmp_path / f"{judge.replace('/', '_')}.json"
        path.write_text(json.dumps({**GPT_EVAL_DEFAULT, "judge_model": judge}))
        paths.append(str(path))
    assert [r["judge_model"] for r in hub.load_eval_results(paths)] == ["gpt-4o", "meta/llama-3.1-70b"]

    push(["model", str(model_dir), "me/tiny", "--eval_results", *paths])

    files = fake_hub.commit["files"]
    assert files["gpt_eval_results_default_gpt-4o.json"] == open(paths[0], "rb").read()
    assert files["gpt_eval_results_default_meta-llama-3.1-70b.json"] == open(paths[1], "rb").read()
    assert hub.GPT_EVAL_FILE not in files
    data = uploaded_card(files, ModelCard).data
    names = sorted(r.metric_name for r in data.eval_results if r.metric_type == "grammar")
    assert names == ["GPT-Eval grammar (judge: gpt-4o)", "GPT-Eval grammar (judge: meta/llama-3.1-70b)"]
    text = uploaded_card(files, ModelCard).text
    assert "| `default` | `gpt-4o` |" in text and "| `default` | `meta/llama-3.1-70b` |" in text


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
    card = hub.render_model_card(str(folder), repo_id="me/lora")
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


def test_training_sources_are_hub_ids_only(tmp_path):
    from types import SimpleNamespace

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


def test_find_preset_matches_the_shape_not_the_vocabulary():
    from tinystories.models import PRESETS, tinystories_config

    for name in PRESETS:
        config = tinystories_config(name, vocab_size=10_000, max_position_embeddings=512).to_dict()
        assert hub.find_preset(config) == name
    assert hub.find_preset(tinystories_config("8M", num_layers=4).to_dict()) == "custom"
    assert hub.find_preset(tinystories_config("8M", hidden_size=320).to_dict()) == "custom"


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


# ------------------------------------------------------------------------------------------------------------------
# dataset


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
    assert sorted(commit["files"]) == [
        "README.md",
        "default/train.parquet",
        "default/validation.parquet",
        "generation.json",
        "instruct/train.parquet",
        "instruct/validation.parquet",
    ]
    assert os.path.isfile(dataset_dir / ".cache" / "requests.sqlite")  # there, but not uploaded
    card = uploaded_card(commit["files"], DatasetCard)
    configs = {c["config_name"]: c for c in card.data.configs}
    assert set(configs) == {"default", "instruct"} and configs["default"]["default"] is True
    assert {f["path"] for f in configs["instruct"]["data_files"]} == {
        "instruct/train.parquet",
        "instruct/validation.parquet",
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
        push(["dataset", str(folder), "me/plain"])
    assert exit_info.value.code == 2
    assert "not a dataset folder" in capsys.readouterr().err
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# plain\n")
    with pytest.raises(SystemExit):
        push(["dataset", str(folder), "me/plain"])
    assert "declares no configs" in capsys.readouterr().err
    assert fake_hub.repos == [] and fake_hub.commits == []


# ------------------------------------------------------------------------------------------------------------------
# metric


def test_push_metric_creates_a_gradio_space_with_the_module_app_and_requirements(fake_hub):
    from tinystories.metrics import GPT_EVAL

    push(["metric", "-", "me/gpt-eval", "--space_requirement", "tinystories @ git+https://example.org/ts.git"])

    (repo,) = fake_hub.repos
    assert repo["repo_type"] == "space" and repo["space_sdk"] == "gradio" and repo["exist_ok"] is True
    files = fake_hub.commit["files"]
    assert sorted(files) == ["README.md", "app.py", "gpt-eval.py", "requirements.txt"]
    with open(os.path.join(GPT_EVAL, "gpt_eval.py"), "rb") as f:
        assert files["gpt-eval.py"] == f.read()  # the file evaluate.load("me/gpt-eval") downloads
    card = uploaded_card(files, SpaceCard)
    meta = card.data.to_dict()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["title"] == "GPT-Eval"
    assert {"evaluate", "metric"} <= set(meta["tags"]) and meta["emoji"] and meta["colorFrom"] and meta["colorTo"]
    assert "LLM-as-judge" in meta["description"]
    assert "## Limitations and bias" in card.text and 'evaluate.load("me/gpt-eval")' in card.text
    app = files["app.py"].decode()
    compile(app, "app.py", "exec")
    assert 'MODULE_FILE = "gpt-eval.py"' in app and "launch_gradio_widget(module)" in app
    requirements = files["requirements.txt"].decode().splitlines()
    assert "tinystories @ git+https://example.org/ts.git" in requirements and "evaluate>=0.4.6" in requirements
    assert "any visitor" in card.text and "--private" in card.text  # the key's cost, said where it is set
    assert_no_token(os.path.dirname(GPT_EVAL), files)


def test_push_metric_needs_the_requirement_that_installs_tinystories(fake_hub, tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        push(["metric", "-", "me/gpt-eval"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert len(message.strip().splitlines()) == 1 and "not on PyPI" in message
    assert '--space_requirement "tinystories @ git+https://github.com/OWNER/tinystories"' in message
    assert fake_hub.calls == []
    # a dry run stages a placeholder that installs nothing, in the staging folder given (no temporary folder)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(hub.tempfile, "TemporaryDirectory", None)
    result = hub.push_metric("-", "me/gpt-eval", dry_run=True, staging_dir=str(tmp_path / "space"))
    assert result["files"] == ["README.md", "app.py", "gpt-eval.py", "requirements.txt"]
    lines = (tmp_path / "space" / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["evaluate>=0.4.6"]
    assert any("PLACEHOLDER" in line for line in lines)
    assert fake_hub.calls == []


def test_the_staged_metric_module_loads_with_evaluate(tmp_path):
    import evaluate

    hub.stage_metric(hub.metric_folder("default"), str(tmp_path), "me/gpt_eval", "tinystories @ git+https://x/y")
    module = evaluate.load(str(tmp_path / "gpt_eval.py"))
    assert set(module.features) == {"predictions", "references"}


# ------------------------------------------------------------------------------------------------------------------
# errors and dry runs


def test_user_errors_are_one_line_and_exit_2(model_dir, tmp_path, fake_hub, monkeypatch, capsys):
    def error(argv):
        with pytest.raises(SystemExit) as exit_info:
            push(argv)
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
        repo_id="me/x", folder_path=str(model_dir), ignore_patterns=hub.MODEL_IGNORE_PATTERNS, commit_message="x"
    )
    assert list(hub.plan_upload(str(model_dir), hub.MODEL_IGNORE_PATTERNS)) == sorted(fake_hub.commit["files"])


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
    clean = hub.sanitize_recipe(recipe, {"base_model": None, "datasets": ["roneneldan/TinyStories"]})
    assert clean == {
        **recipe,
        "model_name_or_path": "base",
        "validation_file": "valid.txt",
        "output_dir": "33m",
        "cache_dir": "tinystories",
    }
    # without what training recorded: a path that exists, or is absolute or relative with './', is local
    assert hub.sanitize_recipe({"tokenizer_name_or_path": "./tok", "model_name_or_path": "owner/model"}) == {
        "tokenizer_name_or_path": "tok",
        "model_name_or_path": "owner/model",
    }


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
    assert hub.card_template("model_card.md") == "installed {{ x }}"
    assert "card_data" in hub.card_template("dataset_card.md")  # not there: the source checkout's hub_cards/


# ------------------------------------------------------------------------------------------------------------------
# example cards (tests/fixtures)


#: The all_results.json of the example model card: hand-written (what a run of the tiny model records), so that the
#: card's numbers are known.
FIXTURE_RESULTS = {
    "train_runtime": 12.5,
    "train_tokens_per_second": 1228.8,
    "epoch": 0.6,
    "world_size": 1,
    "num_parameters": 67648,
    "num_input_tokens_seen": 15360,
    "global_step": 30,
    "block_size": 64,
    "tokens_per_step": 512,
    "train_stories": 180,
    "train_blocks": 398,
    "eval_loss": 3.6583,
    "perplexity": 38.79,
    "sample_story": "Once upon a time, Lily went to the park. There Lily met a little dog.",
    "base_model": None,
    "datasets": [],
    "validation_source": {"kind": "held_out", "percentage": 10.0},
}


def normalise(card: str) -> str:
    """A rendered card without what may change from run to run. Its YAML (the model-index values, the configs) is
    kept but for Parquet byte sizes; in the text, the sampled story, the training time and every number (Parquet
    sizes, and the tiny model's shape, which conftest owns; other tests pin the values)."""
    _, header, text = card.split("---\n", 2)
    header = re.sub(r"(num_bytes|download_size|dataset_size): \d+", r"\1: <bytes>", header)
    text = re.sub(r"(```text\n).*?(\n```)", r"\1<sample story>\2", text, flags=re.DOTALL)
    text = re.sub(r"\| training time \| [^|]+ \|", "| training time | <time> |", text)
    return "---\n" + header + "---\n" + re.sub(r"\d[\d,]*(\.\d+)?", "<n>", text)


def check_fixture(name: str, rendered: str) -> None:
    path = os.path.join(FIXTURES, name)
    if REGEN:
        os.makedirs(FIXTURES, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(rendered)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert normalise(rendered) == normalise(expected), f"{name} changed: regenerate it (see this file's docstring)"


def test_fixture_normalisation_keeps_the_model_index():
    card = (
        "---\nmodel-index:\n- results:\n  - metrics:\n    - value: 7.1\n---\n\nEval loss 3.6583\n```text\nstory\n```\n"
    )
    assert normalise(card) != normalise(card.replace("7.1", "7.3"))
    assert normalise(card) == normalise(card.replace("3.6583", "3.7").replace("story", "tale"))


def test_model_card_fixture(model_dir, tmp_path):
    (model_dir / "all_results.json").write_text(json.dumps(FIXTURE_RESULTS))
    results = []
    for i, value in enumerate((GPT_EVAL_DEFAULT, GPT_EVAL_INSTRUCT)):
        path = tmp_path / f"results{i}.json"
        path.write_text(json.dumps(value))
        results.append(str(path))
    card = hub.render_model_card(model_dir, hub.load_eval_results(results), "your-name/tinystories-tiny")
    check_fixture("model_card.md", str(card))


def test_dataset_card_fixture(generated_dataset):
    card = hub.render_dataset_card(str(generated_dataset), "your-name/tinystories-fake")
    assert (
        str(card).replace("your-name/tinystories-fake", "REPO_OR_FOLDER")
        == (generated_dataset / "README.md").read_text()
    )  # the same card generate wrote, with the Hub id
    check_fixture("dataset_card.md", str(card))
