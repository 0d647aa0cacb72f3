"""Training on a streamed, sharded dataset folder (``streaming: true``): the layout ``tinystories generate`` writes."""

import json
import math
import os
from types import SimpleNamespace

import datasets
import pytest
from conftest import SMOKE, TINY, launch_two_cpu_processes, make_stories
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinystories.errors import RecipeError
from tinystories.synth.dataset_folder import dataset_metadata, shard_path, write_layout_card, write_shard
from tinystories.train import main
from tinystories.training import parse_train_args
from tinystories.training.data import iter_texts, load_raw_datasets, pack_dataset
from tinystories.training.train import check_streamed_sharding


def sharded_folder(root, stories, validation=None, num_shards=3):
    """A folder as ``tinystories generate`` writes it: ``default/train-0000i-of-0000n.parquet`` shards and a card
    whose configs name each split's shards by glob."""
    folder = root / "generated"
    counts, num_bytes = [], {}
    for split, part in (("train", stories), ("validation", validation)):
        if part is None:
            continue
        for shard in range(num_shards):
            rows = [{"text": s, "story": s, "missing_words": []} for s in part[shard::num_shards]]
            written = write_shard(str(folder), shard_path("default", split, shard, num_shards), rows)
            num_bytes[f"default/{split}"] = num_bytes.get(f"default/{split}", 0) + written["bytes"]
        counts.append({"config": "default", "split": split, "rows": len(part)})
    write_layout_card(str(folder), dataset_metadata(counts, num_bytes), "test")
    assert os.path.isfile(folder / "default" / f"train-00000-of-0000{num_shards}.parquet")
    return str(folder)


def streamed(folder, *extra):
    return [SMOKE, "--train_file", "null", "--dataset_name", folder, "--streaming", "true", *TINY, *extra]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def test_streamed_training_on_sharded_folder_learns_and_records_what_it_read(tmp_path):
    stories = make_stories(140, seed=4)
    folder = sharded_folder(tmp_path, stories[:120], validation=stories[120:])
    out = tmp_path / "model"
    results = main(
        [
            *streamed(folder),
            "--max_train_samples",
            "30",  # a short stream (~65 blocks): 12 steps of 8 blocks read past its end
            "--max_tokenizer_samples",
            "60",
            "--max_steps",
            "12",
            "--learning_rate",
            "3e-3",
            "--save_strategy",
            "no",
            "--eval_strategy",
            "no",
            "--output_dir",
            str(out),
        ]
    )
    history = read_json(out / "trainer_state.json")["log_history"]
    losses = {h["step"]: h["loss"] for h in history if "loss" in h}
    assert sorted(losses) == list(range(1, 13)) and all(math.isfinite(v) for v in losses.values())
    assert losses[12] < losses[1] - 0.5, losses
    on_disk = read_json(out / "all_results.json")
    assert on_disk["global_step"] == results["global_step"] == 12
    tokenizer = AutoTokenizer.from_pretrained(out)
    one_pass = load_raw_datasets(dataset_name=folder, streaming=True, max_train_samples=30)
    blocks_per_pass = len(list(pack_dataset(one_pass, tokenizer, block_size=64)["train"]))
    assert 12 * 8 > blocks_per_pass  # the 12 steps read past the stream's end: it restarts from its start
    batches = ([8] * (blocks_per_pass // 8) + [blocks_per_pass % 8] * bool(blocks_per_pass % 8)) * 2
    assert on_disk["train_streamed"] is True and on_disk["train_blocks_seen"] == sum(batches[:12])
    assert on_disk["num_input_tokens_seen"] == sum(batches[:12]) * 64  # the last batch of a pass is short
    assert "train_stories" not in on_disk and "train_blocks" not in on_disk  # a stream has no length
    assert math.isfinite(on_disk["eval_loss"]) and on_disk["eval_loss"] < math.log(300)
    assert on_disk["validation_source"] == {"kind": "split", "split": "validation"}
    assert on_disk["datasets"] == []  # a local folder is no Hub id
    assert len(tokenizer) == 300
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == 300
    with open(out / "recipe.yaml") as f:
        recipe = f.read()
    assert "streaming: true" in recipe and "max_tokenizer_samples: 60" in recipe
    rerun = parse_train_args([str(out / "recipe.yaml")])
    assert rerun.data.streaming and rerun.data.dataset_name == folder and rerun.data.train_file is None


def test_streamed_folder_without_validation_holds_out_its_first_stories(tmp_path):
    stories = make_stories(100, seed=5)
    folder = sharded_folder(tmp_path, stories)
    out = tmp_path / "held_out"
    results = main(
        [*streamed(folder), "--max_eval_samples", "20", "--max_steps", "2", "--save_strategy", "no"]
        + ["--eval_strategy", "no", "--output_dir", str(out)]
    )
    assert results["validation_source"] == {"kind": "held_out", "stories": 20}
    assert results["global_step"] == 2 and math.isfinite(results["eval_loss"])
    # the held-out stories are the first 20 of the stream, and the train stream starts after them
    raw = load_raw_datasets(dataset_name=folder, streaming=True, max_eval_samples=20)
    held_out = [r["text"] for r in raw["validation"]]
    assert len(held_out) == 20 and not set(held_out) & {r["text"] for r in raw["train"]}
    assert list(iter_texts(raw["train"], "text", 3)) == [r["text"] for r in raw["train"].take(3)]


def test_streaming_without_max_steps_or_from_a_file_is_a_clear_recipe_error(tmp_path):
    folder = sharded_folder(tmp_path, make_stories(30))
    with pytest.raises(RecipeError, match="streaming: true needs max_steps"):
        parse_train_args([*streamed(folder), "--max_steps", "-1", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(RecipeError, match="streaming reads dataset_name"):
        parse_train_args([SMOKE, "--streaming", "true", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(RecipeError, match="max_tokenizer_samples must be at least 1"):
        parse_train_args([SMOKE, "--max_tokenizer_samples", "0", "--output_dir", str(tmp_path / "o")])


def test_per_process_shards_are_refused_where_take_and_skip_would_split_per_shard(tmp_path):
    # why: with several shards, datasets applies skip/take per shard when each process reads its own
    folder = sharded_folder(tmp_path, make_stories(30), num_shards=3)
    raw = load_raw_datasets(dataset_name=folder, streaming=True, max_eval_samples=6)
    held_out = {r["text"] for r in raw["validation"]}
    rank0 = {r["text"] for r in raw["train"].shard(num_shards=3, index=0)}
    assert rank0 & held_out  # held-out stories in rank 0's training stream: the leak the check prevents

    def training(world_size, dispatch):
        return SimpleNamespace(world_size=world_size, accelerator_config=SimpleNamespace(dispatch_batches=dispatch))

    data = SimpleNamespace(max_train_samples=None)
    carved = datasets.Dataset.from_dict({"text": ["a"]}, split="train")
    own_split = datasets.Dataset.from_dict({"text": ["a"]}, split="validation")
    with pytest.raises(RecipeError, match="held-out validation stories would be trained on"):
        check_streamed_sharding(training(2, False), data, carved)
    with pytest.raises(RecipeError, match="max_train_samples would count per shard"):
        check_streamed_sharding(training(2, False), SimpleNamespace(max_train_samples=10), own_split)
    for world_size, dispatch in ((2, None), (2, True), (1, False)):
        check_streamed_sharding(training(world_size, dispatch), data, carved)  # dispatched, or one process
    check_streamed_sharding(training(2, False), data, own_split)  # its own validation split: shards are fine


@pytest.mark.distributed
def test_two_process_streamed_training_runs_every_step_on_both_ranks(tmp_path):
    stories = make_stories(140, seed=6)
    folder = sharded_folder(tmp_path, stories[:120], validation=stories[120:], num_shards=2)
    out = tmp_path / "ddp"
    proc = launch_two_cpu_processes(
        [*streamed(folder), "--max_steps", "6", "--per_device_train_batch_size", "4"]
        + ["--save_strategy", "no", "--eval_strategy", "no", "--output_dir", str(out)]
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = read_json(out / "all_results.json")
    assert results["world_size"] == 2 and "Process rank 0 of 2" in proc.stdout
    assert results["num_input_tokens_seen"] == 6 * 4 * 64 * 2  # both ranks trained on full batches every step
    assert results["train_blocks_seen"] == 6 * 4 * 2 and results["train_streamed"] is True
    assert math.isfinite(results["eval_loss"])
    assert len(AutoTokenizer.from_pretrained(out)) == 300  # made once, on rank 0, loaded by rank 1
