"""Fixtures of the Hub tests: huggingface_hub intercepted at ``HfApi`` level (offline), a copy of the trained tiny
model, and a dataset folder written by ``tinystories generate`` against the fake OpenAI server."""

import os
import shutil

import pytest
from huggingface_hub import HfApi
from openai_server import FakeOpenAIServer

from .hub_testing import SENTINEL, FakeHub


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """``create_repo``, ``repo_info``, ``create_branch``, ``create_commit`` and the README YAML check replaced by a
    ``FakeHub`` (every ``HfApi`` made is recorded too); any other request to the Hub fails (offline mode on).
    ``HF_TOKEN`` is the sentinel, and no token file may be written."""
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


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    """A copy of the trained tiny model (tests add files to it)."""
    path = tmp_path / "tiny-model"
    shutil.copytree(tiny_model, path)
    return path


@pytest.fixture(scope="session")
def generated_dataset(tmp_path_factory):
    """A TinyStories(-Instruct) folder written by `tinystories generate` against the fake OpenAI server."""
    from tinystories.cli import generate

    out = tmp_path_factory.mktemp("generated") / "tinystories-fake"
    with pytest.MonkeyPatch.context() as environment, FakeOpenAIServer() as server:
        environment.setenv("OPENAI_API_KEY", "sk-test")  # for this fixture only
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
