"""``tinystories push metric``: an evaluate module as a Gradio Space (module, app, requirements, card)."""

import os

import pytest
from huggingface_hub import SpaceCard

from tinystories.hub import PushOptions, push_metric
from tinystories.hub import main as push
from tinystories.hub import push as push_module
from tinystories.hub.metric_space import metric_folder, stage_metric

from .hub_testing import assert_no_token, tinystories_push, uploaded_card


def test_push_metric_creates_a_gradio_space_with_the_module_app_and_requirements(fake_hub):
    from tinystories.metrics import GPT_EVAL

    push(["metric", "-", "me/gpt-eval", "--space_requirement", "tinystories @ git+https://example.org/ts.git"])

    (repo,) = fake_hub.repos
    assert repo["repo_type"] == "space" and repo["space_sdk"] == "gradio" and repo["exist_ok"] is True
    assert fake_hub.commit["commit_message"] == "Upload metric Space with tinystories push"
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
        tinystories_push(["metric", "-", "me/gpt-eval"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert len(message.strip().splitlines()) == 1 and "not on PyPI" in message
    assert '--space_requirement "tinystories @ git+https://github.com/OWNER/tinystories"' in message
    assert fake_hub.calls == []
    # a dry run stages a placeholder that installs nothing, in the staging folder given (no temporary folder)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(push_module.tempfile, "TemporaryDirectory", None)
    result = push_metric("-", "me/gpt-eval", PushOptions(dry_run=True), staging_dir=str(tmp_path / "space"))
    assert result["files"] == ["README.md", "app.py", "gpt-eval.py", "requirements.txt"]
    lines = (tmp_path / "space" / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["evaluate>=0.4.6"]
    assert any("PLACEHOLDER" in line for line in lines)
    assert fake_hub.calls == []


def test_the_staged_metric_module_loads_with_evaluate(tmp_path):
    import evaluate

    stage_metric(metric_folder("default"), str(tmp_path), "me/gpt_eval", "tinystories @ git+https://x/y")
    module = evaluate.load(str(tmp_path / "gpt_eval.py"))
    assert set(module.features) == {"predictions", "references"}
