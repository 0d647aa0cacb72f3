"""`tinystories push` and the Hub cards, offline: huggingface_hub's HTTP calls are intercepted at `HfApi` level.

`create_repo`, `create_branch`, `create_commit` and the README YAML check are replaced by fakes that record what they
get; `upload_folder` itself runs for real (its file selection), so the tests see the exact commit operations.
Any other request to the Hub fails (offline mode on).

The rendered example cards in tests/fixtures/ are compared after normalising what changes from run to run (losses,
timings, the sampled story, Parquet byte sizes). Regenerate them after changing a template:
    TINYSTORIES_REGEN_FIXTURES=1 python -m pytest tests/test_hub.py -k fixture
"""

import json
import os
import re
import shutil

import pytest
from huggingface_hub import CommitInfo, DatasetCard, HfApi, ModelCard, RepoUrl, SpaceCard
from openai_server import FakeOpenAIServer

from tinystories import hub
from tinystories.hub import main as push

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
    """Records the repositories, branches and commits a push makes; no HTTP."""

    def __init__(self):
        self.repos, self.branches, self.commits = [], [], []

    def create_repo(self, api, repo_id, **kwargs):
        assert api.token in (None, SENTINEL)
        self.repos.append({"repo_id": repo_id, **kwargs})
        repo_id = repo_id if "/" in repo_id else f"tester/{repo_id}"
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(kwargs.get("repo_type"), "")
        return RepoUrl(f"https://huggingface.co/{prefix}{repo_id}")

    def create_branch(self, api, repo_id, **kwargs):
        self.branches.append({"repo_id": repo_id, **kwargs})

    def create_commit(self, api, repo_id, operations, **kwargs):
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
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # anything not intercepted below fails loudly
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)  # upload_folder -> create_commit
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: fake.create_repo(api, repo_id, **kw))
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


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    """A copy of the trained tiny model (pushing writes its README.md)."""
    path = tmp_path / "tiny-model"
    shutil.copytree(tiny_model, path)
    return path


@pytest.fixture(scope="module")
def generated_dataset(tmp_path_factory):
    """A TinyStories(-Instruct) folder written by `tinystories generate` against the fake OpenAI server."""
    from tinystories.generate import main as generate

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
    model_dir, tmp_path, fake_hub
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
    (model_dir / hub.GPT_EVAL_FILE).write_text(json.dumps(GPT_EVAL_DEFAULT))
    instruct = tmp_path / "instruct_results.json"
    instruct.write_text(json.dumps(GPT_EVAL_INSTRUCT))

    result = push(
        [
            *("model", str(model_dir), "me/tinystories-tiny", "--eval_results", str(instruct)),
            *("--private", "--revision", "v1", "--commit_message", "First push"),
        ]
    )

    assert fake_hub.repos == [
        {"repo_id": "me/tinystories-tiny", "repo_type": "model", "private": True, "exist_ok": True}
    ]
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
        "model.safetensors",
        "recipe.yaml",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_state.json",
    ]
    assert result["files"] == sorted(commit["files"])
    assert result["url"] == "https://huggingface.co/me/tinystories-tiny/tree/v1"

    card = uploaded_card(commit["files"], ModelCard)
    assert commit["files"]["README.md"] == (model_dir / "README.md").read_bytes()  # the card is also kept locally
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
    assert scores["default", "creativity"].metric_value == 6.04
    text = card.text
    assert "| custom | 32 | 2 | 2 | 256 |" in text  # the architecture table
    assert "7.10 [6.90, 7.30]" in text and "5.50 [5.20, 5.80]" in text  # the GPT-Eval table
    assert 'AutoModelForCausalLM.from_pretrained("me/tinystories-tiny")' in text and "model.generate(" in text
    assert "eldan2023tinystories" in text and "Eval loss **" in text
    assert ".env" not in commit["files"]
    os.remove(model_dir / ".env")  # the only file that held the token: everything else must be clean
    assert_no_token(tmp_path, commit["files"])


def test_model_card_yaml_names_the_base_model_and_hub_datasets_and_the_eval_loss(model_dir, fake_hub):
    results = json.loads((model_dir / "all_results.json").read_text())
    results.update(base_model="roneneldan/TinyStories-1M", datasets=["roneneldan/TinyStories"])
    (model_dir / "all_results.json").write_text(json.dumps(results))
    (model_dir / "recipe.yaml").write_text(
        "model_name_or_path: roneneldan/TinyStories-1M\ndataset_name: roneneldan/TinyStories\nlearning_rate: 5.0e-4\n"
    )

    push(["model", str(model_dir), "me/tiny-finetuned", "--license", "mit", "--tags", "fine-tuned"])

    data = uploaded_card(fake_hub.commit["files"], ModelCard).data
    assert data.base_model == "roneneldan/TinyStories-1M" and data.datasets == ["roneneldan/TinyStories"]
    assert data.license == "mit" and "fine-tuned" in data.tags
    (loss,) = data.eval_results
    assert (loss.metric_type, loss.dataset_type, loss.dataset_split) == (
        "loss",
        "roneneldan/TinyStories",
        "validation",
    )
    assert loss.metric_value == round(results["eval_loss"], 4)
    text = (model_dir / "README.md").read_text()
    assert "fine-tuned from [`roneneldan/TinyStories-1M`](https://huggingface.co/roneneldan/TinyStories-1M)" in text
    assert "[`roneneldan/TinyStories`](https://huggingface.co/datasets/roneneldan/TinyStories)" in text


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


def test_training_sources_are_hub_ids_only(tmp_path):
    from types import SimpleNamespace

    local = tmp_path / "data"
    local.mkdir()
    model = SimpleNamespace(model_name_or_path="roneneldan/TinyStories-33M")
    data = SimpleNamespace(
        dataset_name=str(local),
        train_file="hf://datasets/roneneldan/TinyStories@main/TinyStoriesV2-GPT4-train.txt",
        validation_file=None,
    )
    assert hub.training_sources(model, data) == {
        "base_model": "roneneldan/TinyStories-33M",
        "datasets": ["roneneldan/TinyStories"],
    }
    model = SimpleNamespace(model_name_or_path=str(tmp_path))
    data = SimpleNamespace(dataset_name="roneneldan/TinyStories", train_file=None, validation_file=None)
    assert hub.training_sources(model, data) == {"base_model": None, "datasets": ["roneneldan/TinyStories"]}


def test_find_preset_matches_the_shape_not_the_vocabulary():
    from tinystories.models import PRESETS, tinystories_config

    for name in PRESETS:
        config = tinystories_config(name, vocab_size=10_000, max_position_embeddings=512).to_dict()
        assert hub.find_preset(config) == name
    assert hub.find_preset(tinystories_config("8M", num_layers=4).to_dict()) == "custom"
    assert hub.find_preset(tinystories_config("8M", hidden_size=320).to_dict()) == "custom"


def test_training_with_push_to_hub_pushes_once_with_this_card(tmp_path, fake_hub):
    from conftest import REPO, make_stories, write_v2

    from tinystories.train import main as train

    out = tmp_path / "run"
    train(
        [
            os.path.join(REPO, "recipes", "smoke", "pretrain.yaml"),
            *("--train_file", write_v2(tmp_path / "stories.txt", make_stories(120, seed=5))),
            *("--output_dir", str(out), "--config_overrides", "{hidden_size: 32, num_layers: 2, num_heads: 2}"),
            *("--block_size", "64", "--tokenizer_vocab_size", "300", "--max_steps", "10", "--eval_steps", "10"),
            *("--save_steps", "5", "--report_to", "none", "--push_to_hub", "--hub_model_id", "me/pushed-by-train"),
        ]
    )
    assert [r["repo_id"] for r in fake_hub.repos] == ["me/pushed-by-train"]  # not the Trainer's own repo/push
    files = fake_hub.commit["files"]
    assert "README.md" in files and "model.safetensors" in files and "recipe.yaml" in files
    assert not [f for f in files if f.startswith("checkpoint-") or f == "training_args.bin"]
    assert os.path.isdir(out / "checkpoint-10")
    card = uploaded_card(files, ModelCard)
    assert "## Training recipe" in card.text and "tinystories" in card.data.tags  # ours, not the Trainer's
    recipe = files["recipe.yaml"].decode()
    assert "push_to_hub: true" in recipe and "hub_model_id: me/pushed-by-train" in recipe and "_token:" not in recipe
    assert_no_token(out, files)


def test_training_with_push_to_hub_and_no_token_stops_before_training(tmp_path, fake_hub, monkeypatch):
    from conftest import REPO

    from tinystories.arguments import RecipeError
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

    push(["dataset", str(dataset_dir), "me/tinystories-fake"])

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
    assert_no_token(os.path.dirname(GPT_EVAL), files)


def test_the_staged_metric_module_loads_with_evaluate(tmp_path):
    import evaluate

    hub.stage_metric(hub.metric_folder("default"), str(tmp_path), "me/gpt_eval")
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
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    message = error(["model", str(model_dir), "me/x"])
    assert "set HF_TOKEN or run `hf auth login`" in message and len(message.strip().splitlines()) == 1
    assert fake_hub.repos == [] and fake_hub.commits == []


def test_dry_run_renders_and_lists_without_a_token_or_network(model_dir, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    (model_dir / "training_args.bin").write_bytes(b"pickle")
    result = push(["model", str(model_dir), "me/tiny", "--dry_run"])
    assert "README.md" in result["files"] and "training_args.bin" not in result["files"]
    assert "Dry run: would push" in capsys.readouterr().out
    card = ModelCard.load(model_dir / "README.md")
    assert card.text.startswith("\n# tiny\n") and "model_name" not in card.data.to_dict()  # no model-index


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


def normalise(card: str) -> str:
    """A rendered card without what changes from run to run: the sampled story, the training time and every number
    (losses, Parquet sizes, and the tiny model's shape, which conftest owns; other tests pin the values)."""
    card = re.sub(r"(```text\n).*?(\n```)", r"\1<sample story>\2", card, flags=re.DOTALL)
    card = re.sub(r"\| training time \| [^|]+ \|", "| training time | <time> |", card)
    return re.sub(r"\d[\d,]*(\.\d+)?", "<n>", card)


def check_fixture(name: str, rendered: str) -> None:
    path = os.path.join(FIXTURES, name)
    if REGEN:
        os.makedirs(FIXTURES, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(rendered)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert normalise(rendered) == normalise(expected), f"{name} changed: regenerate it (see this file's docstring)"


def test_model_card_fixture(model_dir, tmp_path):
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
