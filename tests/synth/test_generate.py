"""`tinystories generate` end to end against a local OpenAI-compatible server; the folder loads with datasets."""

import json
import os

import datasets
from openai_server import WORDS_RE, FakeOpenAIServer

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
    # the finished shard was not made again: the summary is the one assembled from its marker, as after the first run
    assert again["engine"] == summary["engine"] and again["filters"] == summary["filters"]
    assert again["shards"] == summary["shards"] == {**summary["shards"], "complete": 1, "num_shards": 1}

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


def instruct_parts(out):
    """The instruction parts (Summary, Features, Random sentence, Words) of each Instruct example in ``out``."""
    loaded = datasets.load_dataset(str(out), "instruct")
    texts = [text for split in loaded.values() for text in split["text"]]
    return [{line.split(": ", 1)[0] for line in text.split("Story: \n", 1)[0].splitlines()} for text in texts]


def test_ood_never_puts_summary_with_words_in_the_instruct_config(tmp_path):
    shared = ["--instruct", "--cache_dir", str(tmp_path / "cache")]  # the same stories and summaries, paid once
    with FakeOpenAIServer() as server:
        run_generate(server, tmp_path / "iid", *shared)
        sent = server.num_requests
        summary = run_generate(server, tmp_path / "ood", *shared, "--ood")
        assert server.num_requests == sent
    iid, ood = instruct_parts(tmp_path / "iid"), instruct_parts(tmp_path / "ood")
    assert len(ood) == len(iid) == summary["filters"]["kept"]
    assert any({"Summary", "Words"} <= parts for parts in iid)  # without --ood the combination is common
    assert not any({"Summary", "Words"} <= parts for parts in ood)
    assert any("Summary" in parts for parts in ood) and any("Words" in parts for parts in ood)  # each still used
    assert summary["arguments"]["ood"] is True


def story_prompts(server):
    return [r["messages"][0]["content"] for r in server.requests if "Summarize" not in r["messages"][0]["content"]]


def test_template_changes_the_prompts_sent(tmp_path):
    sent = {}
    with FakeOpenAIServer() as server:
        for template in ("gpt4", "paper", "gpt3.5"):
            server.reset_counters()
            summary = run_generate(server, tmp_path / template, "--template", template)
            sent[template] = story_prompts(server)
            assert summary["example_prompt"] in sent[template]
            rows = datasets.load_dataset(str(tmp_path / template))["train"]
            assert all(row["instruction"]["prompt:"] in sent[template] for row in rows)  # the prompt each story got
    assert all(len(prompts) == len(set(prompts)) == 40 for prompts in sent.values())
    assert all(p.endswith("Remember to only use simple words!\n\nPossible story:") for p in sent["gpt4"])
    assert all("a 3 year old child would likely understand." in p for p in sent["paper"])
    for template in ("paper", "gpt3.5"):
        assert all(p.endswith("Remember to only use simple words!") for p in sent[template])
    assert not any("likely" in p for p in sent["gpt3.5"] + sent["gpt4"])

    def words(prompt):  # the seed draws the same words and features whatever the wording
        features = (
            prompt.split("following features: ", 1)[1].split(". Remember", 1)[0] if "features:" in prompt else ""
        )
        return WORDS_RE.search(prompt).groups(), features

    assert sorted(map(words, sent["paper"])) == sorted(map(words, sent["gpt3.5"])) == sorted(map(words, sent["gpt4"]))


def test_the_budget_caps_the_whole_run_not_each_chunk(tmp_path):
    """Chunks of 5 stories cost ~$0.15 each, under the $0.50 budget: only a run-long count stops the run."""
    priced = ["--prices", "{fake-gpt: [1, 1000]}", "--chunk_size", "5", "--max_concurrency", "2"]
    with FakeOpenAIServer() as server:
        summary = run_generate(server, tmp_path / "data", "--budget_usd", "0.5", *priced)
    stories = summary["engine"]["stories"]
    assert stories["budget_stopped"] and server.num_succeeded < 25  # 40 with a budget per chunk
    assert stories["sent"] == server.num_requests
    assert 0.5 <= stories["cost_usd"] < 0.5 + 2 * 0.06  # at most the requests in flight when it was reached
    assert summary["shards"]["incomplete"]  # the chunk the budget cut stays to be finished by a re-run


def test_budget_stops_sending_says_so_and_a_rerun_loses_nothing_paid(tmp_path, caplog):
    out = tmp_path / "data"
    priced = ["--prices", "{fake-gpt: [1, 1000]}"]  # ~60 words a story at $1000 per 1M output tokens: ~$0.06
    with FakeOpenAIServer() as server:
        first = run_generate(server, out, "--budget_usd", "0.5", *priced)["engine"]["stories"]
        paid, sent = server.num_succeeded, server.num_requests
        assert first["budget_stopped"] and 0 < first["succeeded"] < 40
        assert first["failures"]["budget"] == 40 - first["succeeded"]  # refused, never sent
        assert sent == first["sent"] == paid == first["succeeded"]
        assert first["cost_usd"] >= 0.5
        assert "Budget of $0.50 reached" in caplog.text and "will not be paid again" in caplog.text

        again = run_generate(server, out, "--budget_usd", "100", *priced)["engine"]["stories"]
        assert server.num_requests == 40  # only the stories the budget refused were sent
        assert server.repeated_identical_requests() == 0
    assert again["cached"] == paid and again["sent"] == 40 - paid and again["succeeded"] == 40 - paid
    assert not again["budget_stopped"]
    rows = datasets.load_dataset(str(out))
    assert len(rows["train"]) + len(rows["validation"]) > first["succeeded"]
