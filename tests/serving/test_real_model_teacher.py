"""A real model as the teacher and as the judge, not a scripted one: the tiny GPT-Neo the suite trains (``tiny_model``),
given a chat template and served by ``tinystories serve`` (a subprocess on port 0), answers ``tinystories generate``
and GPT-Eval. A 30-step model writes no usable story and no grades: the runs must still finish, say why they rejected
what they got, and keep what they can.

What the user sees: a generate run where no story survives ends with one line (exit 2) naming the rejection reasons
and that the paid replies are cached; the same run again with ``missing_words: keep`` pays for nothing and writes
the stories that were only missing words (each row naming them). GPT-Eval with this judge grades nothing and says why
in ``results.json`` (``ungraded_reasons``), in each sample of ``samples.jsonl`` and in the printed summary.
"""

import json
import os
import shutil

import pytest
from serve_helpers import start_server, stop_server
from transformers import AutoTokenizer

from tinystories.cli import main

SERVED_NAME = "tiny-teacher"
#: A chat template as a plain instruct model has one: the messages, then the assistant's turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: Once upon a time{% endif %}"
)
#: How the engine and the judge name what they reject (the reason tables' short forms).
CONTENT_REASONS = ("missing", "cut", "empty")


@pytest.fixture(scope="module")
def teacher(tiny_model, tmp_path_factory):
    """``tiny_model`` with a chat template, served on a free port; the server's base URL."""
    pytest.importorskip("fastapi")
    root = tmp_path_factory.mktemp("teacher")
    folder = root / "model"
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    # the judge's prompts are longer than this model's context: keep their last tokens, as a small local model would
    options = ["--served_model_name", SERVED_NAME, "--truncate_prompts", "true", "--max_batch_size", "16"]
    server = start_server(str(folder), str(root / "server.log"), *options)
    yield server.base_url
    stop_server(server)


def generate_args(base_url, out, *extra):
    return [
        "generate",
        "--model",
        SERVED_NAME,
        "--base_url",
        base_url,
        "--num_stories",
        "6",
        "--max_tokens",
        "160",
        "--max_retries",
        "0",
        "--max_content_retries",
        "1",
        "--request_timeout",
        "300",
        "--min_words",
        "3",
        "--max_out_of_vocabulary",
        "1.0",
        "--dedup_threshold",
        "1.0",
        "--validation_fraction",
        "0",
        "--output_dir",
        str(out),
        *extra,
    ]


def test_generate_against_a_real_model_reports_its_rejections_and_keeps_what_it_can(teacher, tmp_path, capsys):
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as exited:
        main(generate_args(teacher, out))
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()[-1]
    # nothing survives: one line, exit 2, the reasons and where the paid replies are
    assert exited.value.code == 2, captured.out + captured.err
    assert error.startswith("tinystories generate: error: No story survived") and "Traceback" not in captured.err
    assert "cached in" in error and any(reason in error for reason in CONTENT_REASONS), error
    assert not (out / "generation.json").exists()

    # the same prompts, keeping stories that miss a word: every reply comes from the cache, none is paid again
    main(generate_args(teacher, out, "--missing_words", "keep"))
    printed = capsys.readouterr().out
    with open(out / "generation.json") as f:
        summary = json.load(f)
    stories = summary["engine"]["stories"]
    assert stories["sent"] == 0, stories
    kept = summary["filters"]["kept"]
    assert kept >= 1, summary["filters"]
    import datasets

    rows = datasets.load_dataset(str(out), split="train")
    assert len(rows) == kept
    assert all(row["missing_words"] for row in rows)  # flagged: a tiny model never writes the required words
    # every story is accounted for: kept, refused by the engine (cut, empty) or removed by a named filter
    filters = summary["filters"]
    assert filters["total"] == 6 - stories["failed"]
    assert kept + sum(filters["removed"].values()) == filters["total"], filters
    if stories["failed"]:  # cut (or empty) replies are never kept, and say so in the summary and the printed table
        assert sum(stories["failures"].values()) == stories["failed"], stories
        assert any(reason in printed for reason in CONTENT_REASONS), printed


def test_gpt_eval_with_a_real_model_as_judge_says_why_nothing_was_graded(teacher, tiny_model, tmp_path, capsys):
    out = tmp_path / "eval"
    main(
        [
            "evaluate",
            "--model_name_or_path",
            tiny_model,
            "--judge_model",
            SERVED_NAME,
            "--base_url",
            teacher,
            "--max_prompts",
            "3",
            "--num_completions",
            "1",
            "--max_new_tokens",
            "24",
            "--judge_max_tokens",
            "48",
            "--max_reasks",
            "0",
            "--probes",
            "false",
            "--progress",
            "false",
            "--output_dir",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    (folder,) = [f for f in os.listdir(out) if os.path.isdir(out / f) and not f.startswith(".")]
    with open(out / folder / "results.json") as f:
        results = json.load(f)
    scores = results["scores"]
    assert scores["num_graded"] + scores["num_ungraded"] == 3
    assert scores["num_ungraded"] >= 1  # a 30-step model does not write "Grammar: 8/10"
    reasons = scores["ungraded_reasons"]
    assert sum(reasons.values()) == scores["num_ungraded"] and all(reasons), reasons
    assert results["usage"]["requests_sent"] >= 3
    with open(out / folder / "samples.jsonl") as f:
        samples = [json.loads(line) for line in f if not json.loads(line).get("probe")]
    ungraded = [s for s in samples if s.get("grades") is None]
    assert len(ungraded) == scores["num_ungraded"]
    assert all(s["ungraded_reason"] in reasons for s in ungraded)
    assert sum("ungraded_example" in s for s in ungraded) == len(reasons)  # one example reply per reason
    assert f"ungraded {scores['num_ungraded']}" in printed
    assert all(reason in printed for reason in reasons), printed
