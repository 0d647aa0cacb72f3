"""``tinystories evaluate`` end to end: a tiny model trained in the tests, completions sampled in batches, graded by a
local judge server through the real openai client, results written and re-runs served from the caches."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO, assert_png_of
from matplotlib.container import ErrorbarContainer
from openai_server import FakeOpenAIServer

from tinystories.evaluation import EvaluateArguments, comparison_table, instruct_prompt, model_folders, model_slug
from tinystories.evaluation.plots import DPI, comparison_figure, scores_figure
from tinystories.evaluation.sampling import SamplingSettings, sample_completions


def judge(request):
    """A judge: an assessment first; then grades that depend on the completion's length, so they vary."""
    messages = request["messages"]
    if len(messages) == 1:
        return "The student's completion is short but readable."
    shown = messages[0]["content"].split("\n\nPlease provide your general assessment")[0]
    completion = shown.rsplit("***", 1)[-1] if "***" in shown else ""
    grammar = 3 + len(completion) % 6
    return f"Grammar: {grammar}/10, Creativity: 4/10, Consistency: 5/10, Plot: 6/10, Age group: B"


def tick_labels(ax):
    return [label.get_text() for label in ax.get_xticklabels()]


def check_scores_figure(results, png):
    """The figure of ``results`` shows its scores (bars, 95% intervals, age groups), names the model and the judge,
    and ``png`` is that figure."""
    figure = scores_figure(results)
    figure.draw_without_rendering()  # lays out the categorical tick labels
    grades, ages = figure.axes
    scores = results["scores"]
    axes = tick_labels(grades)
    assert axes == [a for a in ("grammar", "creativity", "consistency", "plot") if a in scores]
    assert [bar.get_height() for bar in grades.patches] == pytest.approx([scores[a] for a in axes])
    (errorbars,) = [c for c in grades.containers if isinstance(c, ErrorbarContainer)]
    intervals = errorbars.lines[2][0].get_segments()
    ends = [end for segment in intervals for end in segment[:, 1]]  # each interval's low and high end
    assert ends == pytest.approx([end for a in axes for end in scores[f"{a}_ci"]])
    shares = dict(zip(tick_labels(ages), (bar.get_height() for bar in ages.patches)))
    assert shares == pytest.approx(scores["age_group"])
    assert results["judge_model"] in grades.get_title()
    assert figure._suptitle.get_text().startswith(f"{results['model_name_or_path']}: {scores['num_graded']} graded")
    assert_png_of(png, figure, DPI)


def run_cli(*args, cwd=REPO):
    proc = subprocess.run(
        [sys.executable, "-m", "tinystories", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TQDM_DISABLE": "1", "OPENAI_API_KEY": "sk-test-SECRET-never-written"},
        timeout=300,
    )
    return proc


def common(server, out, *extra):
    return [
        "--judge_model",
        "fake-judge",
        "--base_url",
        server.base_url,
        "--max_prompts",
        "3",
        "--num_completions",
        "2",
        "--max_new_tokens",
        "16",
        "--output_dir",
        out,
        *extra,
    ]


def test_evaluate_cli_writes_every_result_and_a_rerun_pays_nothing(tiny_model, tmp_path):
    out = tmp_path / "eval"
    with FakeOpenAIServer(responder=judge) as server:
        proc = run_cli("--model_name_or_path", tiny_model, *common(server, out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        first_requests = server.num_requests
        proc = run_cli("--model_name_or_path", tiny_model, *common(server, out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.num_requests == first_requests  # same completions reused, every judge reply cached
        base_url = server.base_url
    assert first_requests == 3 * 2 * 2  # 6 completions, an assessment and a grade request each
    assert "Reusing the 6 completions" in proc.stdout

    folder = out / model_slug(tiny_model)
    results = json.loads((folder / "results.json").read_text())
    for key in (
        "model_name_or_path",
        "num_parameters",
        "config_name",
        "judge_model",
        "base_url",
        "num_prompts",
        "num_completions",
        "scores",
        "usage",
        "cost",
        "probes",
        "settings",
        "files",
        "created_at",
    ):
        assert key in results, key
    scores = results["scores"]
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    graded = [s for s in samples if not s.get("probe")]
    assert len(graded) == 6 and scores["num_graded"] == 6 and scores["num_ungraded"] == 0
    grammar = [3 + len(s["completion"]) % 6 for s in graded]  # what the judge gave each completion
    assert [s["grades"]["grammar"] for s in graded] == grammar
    assert scores["grammar"] == pytest.approx(sum(grammar) / 6)
    assert scores["grammar_ci"][0] <= scores["grammar"] <= scores["grammar_ci"][1]
    assert scores["creativity"] == 4.0 and scores["consistency"] == 5.0
    assert scores["plot"] == 6.0 and scores["num_plot"] == 6  # the paper's grade turn asks for it; the judge gave it
    assert results["prompt_style"] == scores["prompt_style"] == results["settings"]["prompt_style"] == "paper"
    assert scores["ci_method"] == "cluster" and scores["num_groups"] == 3 and scores["ungraded_reasons"] == {}
    assert scores["age_group"]["B"] == 1.0
    assert results["usage"]["requests_sent"] == 0 and results["usage"]["requests_cached"] == 12  # the re-run
    assert results["cost"]["requests_per_completion"] == 2.0
    assert results["settings"]["num_completions"] == 2 and results["settings"]["temperature"] == 1.0
    assert results["num_parameters"] > 0 and results["base_url"] == base_url
    assert set(results["probes"]) == {"factual", "reasoning", "context"}
    assert sum(p["total"] for p in results["probes"].values()) == 30
    assert len([s for s in samples if s.get("probe")]) == 30
    check_scores_figure(results, folder / "gpt_eval.png")
    # the model card of `tinystories push model ... --eval_results results.json` reads these very results
    from tinystories.hub import load_eval_results, render_model_card

    card = render_model_card(tiny_model, load_eval_results([str(folder / "results.json")]))
    metrics = {m["type"]: m["value"] for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    assert metrics["grammar"] == pytest.approx(scores["grammar"], abs=0.01) and metrics["creativity"] == 4.0
    for path in folder.rglob("*"):  # the API key reaches no output
        if path.is_file():
            assert b"SECRET-never-written" not in path.read_bytes(), path


def test_several_models_get_a_comparison(tiny_model, tmp_path):
    other = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model, other)
    out = tmp_path / "eval"
    with FakeOpenAIServer(responder=judge) as server:
        proc = run_cli(
            "--model_name_or_path",
            tiny_model,
            other,
            *common(server, out, "--num_completions", "1", "--probes", "false"),
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    assert [m["model_name_or_path"] for m in comparison["models"]] == [tiny_model, str(other)]
    table = (out / "comparison.md").read_text()
    assert table.count("\n| `") == 2 and "grammar" in table
    assert (out / "tiny-copy" / "results.json").is_file()
    every = [json.loads((out / name / "results.json").read_text()) for name in (model_slug(tiny_model), "tiny-copy")]
    figure = comparison_figure(every)
    (ax,) = figure.axes
    assert "fake-judge" in ax.get_title()
    lines = {container.get_label(): container.lines[0] for container in ax.containers}
    assert set(lines) == {"grammar", "creativity", "consistency", "plot"}  # the judge gives a plot grade
    for axis, line in lines.items():  # one point per model at its size, at its mean grade
        assert list(line.get_xdata()) == pytest.approx([r["num_parameters"] / 1e6 for r in every])
        assert list(line.get_ydata()) == pytest.approx([r["scores"][axis] for r in every])
    assert {text.get_text() for text in ax.texts} == {os.path.basename(tiny_model), "tiny-copy"}
    assert_png_of(out / "comparison.png", figure, DPI)


def test_instruct_config_grades_stories_against_instructions(tiny_model, tmp_path):
    from tinystories.evaluation import run

    seen = []

    def instruct_judge(request):
        seen.append(request["messages"][0]["content"])
        return judge(request)

    with FakeOpenAIServer(responder=instruct_judge) as server:
        args = EvaluateArguments(
            model_name_or_path=tiny_model,
            config_name="instruct",
            judge_model="fake-judge",
            base_url=server.base_url,
            max_prompts=2,
            num_completions=1,
            max_new_tokens=12,
            probes=False,
            output_dir=str(tmp_path / "eval"),
            progress=False,
        )
        (results,) = run(args)
    assert results["scores"]["plot"] == 6.0 and results["scores"]["num_graded"] == 2
    first = [text for text in seen if "Lily plays with her red ball" in text]
    assert first and first[0].startswith("Your task is to evaluate the performance of a student.")
    assert "The general plot of the story should be: Lily plays with her red ball" in first[0]  # the paper's exercise
    assert "The story should contain the words: jump, ball, red." in first[0]


def test_an_official_format_yaml_evaluates_end_to_end(tiny_model, tmp_path, capsys):
    """A YAML list of beginnings, the layout of the release's `Evaluation prompts.yaml`, through `tinystories
    evaluate` (the CLI's command function), with the baselines' 4-gram truncation on."""
    from tinystories.cli import main
    from tinystories.evaluation.truncation import truncate_repeated_ngram

    beginnings = ["Once upon a time, Lily went to", "Tom saw a big dog and", "Sue had a red ball. She"]
    prompts = tmp_path / "Evaluation prompts.yaml"
    prompts.write_text("".join(f"- {b}\n" for b in beginnings))
    out = tmp_path / "eval"
    with FakeOpenAIServer(responder=judge) as server:
        extra = ("--prompts_file", prompts, "--truncate_repeated_ngram", "4", "--probes", "false")
        main(["evaluate", "--model_name_or_path", tiny_model, *map(str, common(server, out, *extra))])
        shown = [r["messages"][0]["content"] for r in server.requests if len(r["messages"]) == 1]
    folder = out / model_slug(tiny_model)
    results = json.loads((folder / "results.json").read_text())
    assert results["num_prompts"] == 3 and results["scores"]["num_graded"] == 6
    assert results["settings"]["truncate_repeated_ngram"] == 4 and results["settings"]["prompts_file"] == str(prompts)
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    sampled = [json.loads(line) for line in (folder / "completions.jsonl").read_text().splitlines()[1:]]
    assert [s["prompt"] for s in samples] == [b for b in beginnings for _ in range(2)]
    assert [s["completion"] for s in samples] == [c["completion"] for c in sampled]  # kept untruncated
    assert [s["group"] for s in samples] == [0, 0, 1, 1, 2, 2]
    for sample in samples:  # the judge saw the truncated completion, recorded when it differs
        graded = truncate_repeated_ngram(sample["completion"], 4)
        assert sample.get("graded_completion", sample["completion"]) == graded
        assert any(f"{sample['prompt']}***{graded}\n\n" in text for text in shown)
    assert results["scores"]["num_truncated"] == sum("graded_completion" in s for s in samples)
    assert "graded 6, ungraded 0" in capsys.readouterr().out


def test_instruct_prompt_uses_the_training_layout():
    prompt, shown = instruct_prompt({"words": ["run", "dog", "big"], "features": ["Dialogue"], "summary": "A dog."})
    assert prompt == "Summary: A dog.\nFeatures: Dialogue\nWords: run, dog, big\nStory: \n"
    assert shown == "Summary: A dog.\nFeatures: Dialogue\nWords: run, dog, big"


def test_batched_sampling_is_reproducible_and_independent_of_prompt_order(tiny_model):
    from transformers import AutoTokenizer

    from tinystories.models import load_model

    model, tokenizer = load_model(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    prompts = ["Once upon a time, Lily went to the", "Tom had a big", "The cat"]
    settings = SamplingSettings(num_completions=3, max_new_tokens=12, batch_size=4, seed=7)
    first = sample_completions(model, tokenizer, prompts, settings, progress=False)
    assert first == sample_completions(model, tokenizer, prompts, settings, progress=False)
    assert [len(c) for c in first] == [3, 3, 3]
    assert len({c for texts in first for c in texts}) > 3  # sampled, not greedy copies
    greedy = SamplingSettings(num_completions=1, temperature=0.0, max_new_tokens=12, batch_size=3)
    batched = sample_completions(model, tokenizer, prompts, greedy, progress=False)
    for prompt, (text,) in zip(prompts, batched):  # left padding changes nothing: same as one prompt alone
        ids = tokenizer(prompt, return_tensors="pt")
        alone = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert text == tokenizer.decode(alone[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert torch.is_grad_enabled()


def test_comparison_table_is_sorted_by_size():
    def result(name, size, grammar):
        ci = [grammar - 0.5, grammar + 0.5]
        scores = {"grammar": grammar, "grammar_ci": ci, "num_graded": 10, "num_ungraded": 0}
        return {"model_name_or_path": name, "num_parameters": size, "scores": scores, "usage": {"cost_usd": 0.1}}

    table = comparison_table([result("big", 33e6, 8.0), result("small", 1e6, 5.0)])
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `small` | 1.00M | 5.00 [4.50, 5.50]") and "`big`" in rows[1]
    with_plot = result("plotted", 2e6, 6.0)
    with_plot["scores"].update(plot=7.0, plot_ci=[6.5, 7.5])  # a judge that gave plot grades to one model only
    header = comparison_table([with_plot, result("small", 1e6, 5.0)]).splitlines()[0]
    assert "grammar" in header and "plot" not in header
    assert "| plot |" in comparison_table([with_plot]).splitlines()[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model_name_or_path", "/nonexistent/model"], "cannot load the model /nonexistent/model"),
        (["--model_name_or_path", "x", "--prompts_file", "/nonexistent.jsonl"], "prompts_file /nonexistent.jsonl"),
        (["--model_name_or_path", "x", "--config_name", "other"], "config_name must be one of"),
        (["--judge_model", "x"], "model_name_or_path is required"),
    ],
)
def test_user_errors_are_one_clear_line(args, message, tmp_path, capsys):
    from tinystories.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", *args, "--output_dir", str(tmp_path / "o")])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    assert re.search(r"^tinystories evaluate: error: ", stderr, re.MULTILINE)


def test_a_prompt_longer_than_the_context_is_one_clear_line(tiny_model, tmp_path, capsys):
    from tinystories.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            ["evaluate", "--model_name_or_path", tiny_model, "--max_new_tokens", "5000", "--output_dir", str(tmp_path)]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "exceeds the model's context of 1024 tokens" in err


def test_a_broken_prompts_file_names_the_line(tmp_path, capsys):
    from tinystories.cli import main

    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"id": "a", "beginning": "Tom went to the"}\n{"id": "b", "beginning": \n')
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model_name_or_path", "x", "--prompts_file", str(bad), "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "line 2: not valid JSON" in capsys.readouterr().err


def test_diversity_check_on_cut_training_stories(tiny_model, tmp_path):
    from conftest import make_stories, write_v2

    from tinystories.evaluation import run

    train_file = write_v2(tmp_path / "train.txt", make_stories(200, seed=3))  # the stories tiny_model learned
    with FakeOpenAIServer(responder=judge) as server:
        args = EvaluateArguments(
            model_name_or_path=tiny_model,
            judge_model="fake-judge",
            base_url=server.base_url,
            max_prompts=1,
            num_completions=1,
            max_new_tokens=24,
            probes=False,
            diversity_file=train_file,
            diversity_num_stories=12,
            output_dir=str(tmp_path / "eval"),
            progress=False,
        )
        (results,) = run(args)
    diversity = results["diversity"]
    assert diversity["num_stories"] == 12 and diversity["num_train_stories"] == 200
    folder = tmp_path / "eval" / model_slug(tiny_model)
    saved = json.loads((folder / "diversity.json").read_text())
    assert len(saved["samples"]) == 12
    for sample in saved["samples"]:  # each beginning is a real cut of the training story it names
        story = make_stories(200, seed=3)[sample["story_index"]]
        assert story == sample["beginning"] + sample["true_continuation"]
    for measure in ("rouge_vs_truth", "max_rouge_vs_others", "closest_train_rouge"):
        values = saved["report"][measure]
        assert len(values) == 12 and all(0.0 <= v <= 1.0 for v in values)
    from tinystories.evaluation.diversity import DiversityReport, diversity_figure

    report = DiversityReport(**{k: v for k, v in saved["report"].items() if k != "summary"})
    figure = diversity_figure(report)
    assert [bar.get_height() for bar in figure.axes[0].patches] == saved["summary"]["rouge_vs_truth"]["histogram"]
    assert_png_of(folder / "diversity.png", figure, dpi=100)


def test_completions_are_reused_only_for_the_same_weights(tiny_model, tmp_path, capsys):
    from tinystories.evaluation import run

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    with FakeOpenAIServer(responder=judge) as server:
        args = EvaluateArguments(
            model_name_or_path=str(model),
            judge_model="fake-judge",
            base_url=server.base_url.replace("http://", "http://user:pass@"),
            max_prompts=1,
            num_completions=2,
            max_new_tokens=8,
            probes=False,
            output_dir=str(tmp_path / "eval"),
            progress=False,
        )
        (first,) = run(args)
        (second,) = run(args)
        assert "Reusing the 2 completions" in capsys.readouterr().out
        weights = model / "model.safetensors"
        os.utime(weights, (weights.stat().st_atime, weights.stat().st_mtime + 10))  # retrained in place
        run(args)
        assert "Reusing" not in capsys.readouterr().out
    assert second["usage"]["requests_sent"] == 0 and first["usage"]["requests_sent"] == 4
    assert "user" not in first["base_url"] and "pass" not in json.dumps(first)


def test_models_with_the_same_name_get_distinct_folders(tmp_path):
    first, second = tmp_path / "a" / "final", tmp_path / "b" / "final"
    first.mkdir(parents=True), second.mkdir(parents=True)
    assert model_folders([str(first), str(second), str(first)]) == ["final", "final-2", "final-3"]
    assert model_folders(["roneneldan/TinyStories-8M"]) == ["roneneldan__TinyStories-8M"]
