"""`tinystories generate` end to end against a local OpenAI-compatible server; the folder loads with datasets."""

import json
import os

import datasets
from openai_server import FakeOpenAIServer

from tinystories.cli import generate

LENIENT = ["--min_words", "10", "--max_out_of_vocabulary", "0.6", "--dedup_threshold", "0.97"]


def run_generate(server, out, *extra):
    return generate(
        [
            "--model",
            "fake-gpt",
            "--base_url",
            server.base_url,
            "--num_stories",
            "40",
            "--output_dir",
            str(out),
            "--max_concurrency",
            "8",
            "--validation_fraction",
            "0.1",
            *LENIENT,
            *extra,
        ]
    )


def test_generate_writes_a_folder_load_dataset_reads_in_both_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "data"
    with FakeOpenAIServer(fail_first={"429": 1}) as server:
        summary = run_generate(server, out, "--instruct")
        assert server.repeated_identical_requests() == 0
        sent = server.num_requests
        again = run_generate(server, out, "--instruct")  # a second run pays for nothing
        assert server.num_requests == sent
    assert again["engine"]["stories"]["sent"] == 0 and again["engine"]["stories"]["cached"] == 40

    default = datasets.load_dataset(str(out))
    assert set(default) == {"train", "validation"}
    row = default["train"][0]
    assert set(row) >= {"story", "instruction", "summary", "source", "request_id", "text"}
    assert set(row["instruction"]) == {"prompt:", "words", "features"} and row["source"] == "fake-gpt"
    assert all(word in row["story"] for word in row["instruction"]["words"])
    assert row["summary"]  # instruct: the second request's summary
    instruct = datasets.load_dataset(str(out), "instruct")
    text = instruct["train"][0]["text"]
    assert "Story: \n" in text and text.endswith(instruct["train"][0]["story"])
    assert len(default["train"]) + len(default["validation"]) == summary["filters"]["kept"]

    card = (out / "README.md").read_text()
    assert "config_name: instruct" in card and "fake-gpt" in card and "Possible story:" in card
    assert "sk-test" not in card and "sk-test" not in json.dumps(summary)
    for name in os.listdir(out / ".cache"):
        assert b"sk-test" not in (out / ".cache" / name).read_bytes()


def test_training_accepts_a_generated_folder(tmp_path):
    from tinystories.train import main as train

    out = tmp_path / "data"
    with FakeOpenAIServer() as server:
        run_generate(server, out)
    results = train(
        [
            "--model_preset",
            "1M",
            "--config_overrides",
            "{hidden_size: 32, num_layers: 2}",
            "--dataset_name",
            str(out),
            "--tokenizer_vocab_size",
            "300",
            "--block_size",
            "32",
            "--max_steps",
            "3",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--output_dir",
            str(tmp_path / "model"),
        ]
    )
    assert results["global_step"] == 3 and results["train_stories"] > 0


def test_generator_based_builder_in_both_configs(tmp_path):
    from tinystories.synth import TinyStoriesGenerator

    with FakeOpenAIServer() as server:
        generation = {
            "model": "fake-gpt",
            "base_url": server.base_url,
            "num_stories": 20,
            "validation_fraction": 0.1,
            "output_dir": str(tmp_path / "gen"),
            "min_words": 10,
            "max_out_of_vocabulary": 0.6,
            "dedup_threshold": 0.97,
        }
        loaded = {}
        for config in ("default", "instruct"):
            builder = TinyStoriesGenerator(config_name=config, generation=generation, cache_dir=str(tmp_path / "hf"))
            builder.download_and_prepare()
            loaded[config] = builder.as_dataset()
        stories_sent = server.num_requests
    assert stories_sent == 20 + 20  # instruct adds the summaries; its stories came from the request cache
    default, instruct = loaded["default"], loaded["instruct"]
    assert len(default["train"]) + len(default["validation"]) == 20
    assert default["train"][0]["text"] == default["train"][0]["story"]
    assert set(default["train"][0]["instruction"]) == {"prompt:", "words", "features"}
    assert "Story: \n" in instruct["train"][0]["text"] and instruct["train"][0]["summary"]
