"""``tinystories reproduce`` end to end at toy scale against the scripted local judge: every stage, the report's
tables and plots, a re-run that skips everything, a changed width that re-runs one model, a killed run that resumes
its model from the last checkpoint, the push dry run and the recipe errors."""

import json
import os
import signal
import subprocess
import sys
import threading

import datasets
import numpy as np
import pytest
import yaml
from conftest import REPO, assert_png_of, make_stories, write_v2
from openai_server import FakeOpenAIServer
from transformers import AutoTokenizer

from tinystories.errors import RecipeError
from tinystories.reproduce import Reproduction, load_reproduce_recipe, main
from tinystories.reproduce.plots import DPI, heatmap_figure, scores_figure
from tinystories.reproduce.stages import diversity_file
from tinystories.story_formats import load_data_file

SHAPES = [[16, 1], [16, 2], [32, 2]]


def judge(request):
    """An assessment, then grades that depend on the completion's length (so that the table's cells differ)."""
    messages = request["messages"]
    if len(messages) == 1:
        return "The completion is short but readable."
    shown = messages[0]["content"]
    completion = shown.split("\n\nPlease provide")[0].rsplit("***", 1)[-1]  # the template ends in "***." too
    return f"Grammar: {2 + len(completion) % 7}/10, Creativity: {3 + len(completion) % 5}/10, Consistency: 5/10, Age group: B"


def stories_file(root):
    """The training stories, written once (a rewrite would change the data stage's input)."""
    path = root / "stories.txt"
    return str(path) if path.exists() else write_v2(path, make_stories(240, seed=7))


def toy_recipe(root, base_url, **changes):
    recipe = {
        "name": "toy",
        "output_dir": str(root / "run"),
        "data": {"train_file": stories_file(root), "validation_split_percentage": 10, "max_eval_samples": 16},
        "tokenizer": {"vocab_size": 300},
        "models": {"shapes": SHAPES, "num_heads": 2, "config_overrides": {"max_position_embeddings": 256}},
        "train": {
            "max_tokens": 4 * 8 * 32,  # 4 steps of 8 x 32 tokens
            "block_size": 32,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 64,
            "learning_rate": 3e-3,
            "save_strategy": "steps",
            "save_steps": 2,
            "eval_strategy": "no",
            "report_to": "none",
            "use_cpu": True,
            "disable_tqdm": True,
            "sample_max_new_tokens": 8,
        },
        "evaluate": {
            "judge_model": "fake-judge",
            "base_url": base_url,
            "max_prompts": 2,
            "num_completions": 2,
            "max_new_tokens": 12,
            "max_concurrency": 4,
            "progress": False,
        },
    }
    for key, value in changes.items():
        section, _, name = key.partition(".")
        recipe[section][name] = value
    path = root / "reproduce.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """One run of the toy recipe and a second one, against one judge server: (recipe path, server, summaries)."""
    root = tmp_path_factory.mktemp("reproduce")
    with FakeOpenAIServer(responder=judge) as server:
        path = toy_recipe(root, server.base_url)
        first = main([path])
        sent = server.num_requests
        second = main([path])
        yield {"path": path, "root": root, "server": server, "first": first, "second": second, "sent": sent}


def read_report(root):
    return json.loads((root / "run" / "report" / "report.json").read_text())


def test_every_stage_runs_and_the_report_holds_every_model_with_figure4_cells(toy):
    assert toy["first"]["ran"][:2] == ["data", "tokenizer"] and toy["first"]["ran"][-1] == "report"
    assert 0 < toy["sent"] <= 3 * 2 * 2 * 2  # 3 models x 4 completions x 2 turns (identical requests cached)
    report = read_report(toy["root"])
    models = {m["name"]: m for m in report["models"]}
    assert list(models) == ["h16-l1", "h16-l2", "h32-l2"]
    for model in models.values():
        assert model["tokens"] == 4 * 8 * 32 and model["global_step"] == 4
        assert 0 < model["eval_loss"] < 7  # a real loss on the shared validation set
        evaluation = model["evaluations"]["default"]
        assert evaluation["num_graded"] == 4 and set(evaluation["scores"]) == {"grammar", "creativity", "consistency"}
        assert sum(p["total"] for p in evaluation["probes"].values()) > 0
        results = json.loads((toy["root"] / "run" / "eval" / "default" / model["name"] / "results.json").read_text())
        assert evaluation["scores"]["grammar"] == results["scores"]["grammar"]
    assert len({m["num_parameters"] for m in models.values()}) == 3

    table = report["tables"]["default"]["grammar"]
    assert table["hidden_sizes"] == [16, 32] and table["layers"] == [1, 2]
    grammar = {name: m["evaluations"]["default"]["scores"]["grammar"] for name, m in models.items()}
    assert table["cells"] == [[grammar["h16-l1"], grammar["h16-l2"]], [None, grammar["h32-l2"]]]
    low, high = min(grammar.values()), max(grammar.values())
    assert high > low  # the judge's grades differ between models, so b spans [0, 1]
    for row, norms in zip(table["cells"], table["normalized"]):
        for a, b in zip(row, norms):
            if a is None or high == low:
                assert b is None
            else:
                assert b == pytest.approx((a - low) / (high - low))
    loss = report["loss_table"]
    assert loss["cells"][0] == [models["h16-l1"]["eval_loss"], models["h16-l2"]["eval_loss"]]

    markdown = (toy["root"] / "run" / "report" / "report.md").read_text()
    for name in models:
        assert f"| {name} |" in markdown
    a, b = table["cells"][0][0], table["normalized"][0][0]
    assert f"| 16 | {a:.2f}/" + ("–" if b is None else f"{b:.2f}") in markdown
    assert "## Eval loss by width and depth" in markdown and "fake-judge" in markdown
    assert "docs/fidelity.md" in markdown and report["judge"]["prompt_style"]["default"] in markdown


def test_the_plots_show_the_report_numbers(toy):
    report = read_report(toy["root"])
    folder = toy["root"] / "run" / "report"
    assert set(report["files"]["plots"]) == {
        "scores_vs_parameters.png",
        "heatmaps_default.png",
        "heatmap_eval_loss.png",
    }

    figure = heatmap_figure(report["tables"]["default"], "GPT-Eval")
    assert [ax.get_title() for ax in figure.axes[:3]] == ["grammar", "creativity", "consistency"]
    shown = figure.axes[0].images[0].get_array()
    cells = report["tables"]["default"]["grammar"]["cells"]
    assert shown.mask.tolist() == [[v is None for v in row] for row in cells]
    assert np.ma.filled(shown, -1).tolist() == [[-1 if v is None else v for v in row] for row in cells]
    assert_png_of(str(folder / "heatmaps_default.png"), figure, DPI)

    figure = scores_figure(report)
    scores_ax, loss_ax = figure.axes
    models = sorted(report["models"], key=lambda m: m["num_parameters"])
    (line,) = [ln for ln in scores_ax.lines if ln.get_label() == "grammar (default)"]
    assert list(line.get_xdata()) == [m["num_parameters"] for m in models]
    assert list(line.get_ydata()) == [m["evaluations"]["default"]["scores"]["grammar"] for m in models]
    assert list(loss_ax.lines[0].get_ydata()) == [m["eval_loss"] for m in models]
    assert_png_of(str(folder / "scores_vs_parameters.png"), figure, DPI)


def test_a_second_run_skips_every_stage_and_sends_no_request(toy):
    assert toy["second"]["ran"] == []
    assert toy["second"]["skipped"] == toy["first"]["ran"]
    assert toy["server"].num_requests == toy["sent"]


def test_changing_one_width_reruns_only_that_model_and_the_report(toy, capsys):
    root, server = toy["root"], toy["server"]
    kept = root / "run" / "models" / "h16-l1" / "model.safetensors"
    before = kept.stat().st_mtime_ns
    path = toy_recipe(root, server.base_url, **{"models.shapes": [[16, 1], [16, 2], [24, 2]]})
    summary = main([path])
    assert summary["ran"] == ["model-h24-l2", "eval-default-h24-l2", "report"]
    assert "skipping 6 stages done before" in capsys.readouterr().out
    assert kept.stat().st_mtime_ns == before
    report = read_report(root)
    assert [m["name"] for m in report["models"]] == ["h16-l1", "h16-l2", "h24-l2"]
    assert report["tables"]["default"]["grammar"]["hidden_sizes"] == [16, 24]
    toy_recipe(root, server.base_url)  # the recipe of the other tests again


def test_push_dry_run_without_a_token_lists_every_model_and_the_report(toy, monkeypatch, tmp_path, capsys):
    from huggingface_hub import HfApi, constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "none" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "none" / "stored_tokens"))
    monkeypatch.setattr(HfApi, "create_commit", lambda *a, **k: pytest.fail("a dry run uploaded"))
    summary = main([toy["path"], "--push", "my-org"])
    assert set(summary["ran"]) <= {"report"}  # the report again when the width test ran before
    pushes = {p["repo_id"]: p for p in summary["pushes"]}
    assert set(pushes) == {"my-org/toy-h16-l1", "my-org/toy-h16-l2", "my-org/toy-h32-l2", "my-org/toy-report"}
    model = pushes["my-org/toy-h16-l1"]
    assert model["url"] is None and "model.safetensors" in model["files"] and "gpt_eval_results.json" in model["files"]
    assert not any("checkpoint-" in f for f in model["files"])
    report = pushes["my-org/toy-report"]
    assert {"README.md", "report.json", "heatmaps_default.png"} <= set(report["files"])
    out = capsys.readouterr().out
    assert "dry run" in out and "would push model my-org/toy-h32-l2" in out


def test_a_killed_run_resumes_the_second_model_from_its_last_checkpoint(tmp_path, capsys):
    path = toy_recipe(
        tmp_path,
        "http://127.0.0.1:9/v1",
        **{"models.shapes": [[16, 1], [16, 2]], "train.max_tokens": 8 * 8 * 32},
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinystories", "reproduce", path, "--until", "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:  # synchronised on the line the checkpoint callback prints once it is written
            lines.append(line)
            if "checkpoint saved: h16-l2 step 4" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        watchdog.cancel()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    model = tmp_path / "run" / "models" / "h16-l2"
    assert (model / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (model / "all_results.json").exists()

    summary = main([path, "--until", "models"])
    assert summary["ran"] == ["model-h16-l2"] and summary["skipped"] == ["data", "tokenizer", "model-h16-l1"]
    out = capsys.readouterr().out
    assert "resuming h16-l2 from" in out
    manifest = json.loads((tmp_path / "run" / "manifests" / "model-h16-l2.json").read_text())
    resumed = manifest["result"]["resumed_from"]
    assert resumed in ("checkpoint-4", "checkpoint-6")  # the kill may land after the next save
    state = json.loads((model / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    results = json.loads((model / "all_results.json").read_text())
    assert results["num_input_tokens_seen"] == 8 * 8 * 32  # the resumed run counts the tokens before the kill


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"train.max_stepz": 3}, "Unknown key in section train: 'max_stepz' (did you mean max_steps"),
        ({"evaluate.judge_modle": "x"}, "Unknown key in section evaluate: 'judge_modle' (did you mean judge_model"),
        ({"models.hiden_sizes": [8]}, "Unknown key in section models: 'hiden_sizes' (did you mean hidden_sizes"),
        ({"train.output_dir": "x"}, "'output_dir' is set by tinystories reproduce"),
        ({"evaluate.configs": ["bogus"]}, "evaluate.configs must list distinct configs"),
        ({"models.num_heads": 3}, "hidden size 16 does not split into 3 heads"),
        ({"train.learning_rate": "fast"}, "learning_rate must be a float"),
    ],
)
def test_recipe_errors_name_the_section_and_key(tmp_path, changes, message):
    path = toy_recipe(tmp_path, "http://127.0.0.1:9/v1", **changes)
    with pytest.raises(RecipeError) as error:
        Reproduction(load_reproduce_recipe(path))
    assert message in str(error.value)


def test_the_shipped_recipes_parse_and_the_paper_grid_is_estimated(capsys):
    toy = Reproduction(load_reproduce_recipe(os.path.join(REPO, "recipes", "reproduce", "cpu-toy.yaml")))
    assert [s.name for s in toy.specs] == ["h32-l1", "h32-l2", "h64-l2"]
    assert [s.num_heads for s in toy.specs] == [2, 2, 4]
    paper = os.path.join(REPO, "recipes", "reproduce", "paper-figure4.yaml")
    summary = main([paper, "--estimate_only", "--evaluate.prompts_file", "null"])  # the bundled 50 beginnings
    training, (judge_cost,) = summary["estimate"]["training"], summary["estimate"]["judges"]
    assert len(training["models"]) == 30 and training["gpu_hours"] > 1
    assert {m["tokens"] for m in training["models"]} == {983_040_000}
    assert judge_cost["requests"] == 30 * 50 * 10 * 2 and judge_cost["usd"] > 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "gpt-4o" in out


def test_the_data_stage_can_generate_the_dataset_and_a_rerun_pays_nothing(tmp_path):
    """``data.generate``: the stories come from a teacher (the scripted server), the shared tokenizer is trained on
    them; a second run skips both stages and sends no request."""
    with FakeOpenAIServer() as teacher:
        generate = {"model": "fake-gpt", "base_url": teacher.base_url, "num_stories": 24, "max_concurrency": 4}
        generate.update(min_words=10, max_out_of_vocabulary=0.6, dedup_threshold=0.97, validation_fraction=0.2)
        path = toy_recipe(tmp_path, "http://127.0.0.1:9/v1", **{"data.generate": generate})
        recipe = yaml.safe_load(open(path))
        del recipe["data"]["train_file"]  # generate instead
        open(path, "w").write(yaml.safe_dump(recipe))
        first = main([path, "--until", "tokenizer"])
        sent = teacher.num_requests
        second = main([path, "--until", "tokenizer"])
        assert teacher.num_requests == sent == 24  # every story asked once, none again
    assert first["ran"] == ["data", "tokenizer"] and second["ran"] == []
    rows = datasets.load_dataset(str(tmp_path / "run" / "data"))
    assert len(rows["train"]) > 0 and set(rows["train"].column_names) >= {"text", "instruction", "missing_words"}
    # the diversity check searches the generated training shards
    assert load_data_file(diversity_file(load_reproduce_recipe(path)))["text"] == rows["train"]["text"]
    assert len(AutoTokenizer.from_pretrained(tmp_path / "run" / "tokenizer")) == 300
