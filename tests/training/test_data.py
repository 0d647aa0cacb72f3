import json
import os

import datasets
import pytest
from conftest import make_stories, write_v2

from tinystories.errors import DataError
from tinystories.story_formats import iter_stories, load_data_file
from tinystories.training.data import group_texts, load_raw_datasets, pack_dataset


def test_iter_stories_splits_on_separator_across_read_chunks(tmp_path):
    stories = make_stories(30)
    path = write_v2(tmp_path / "s.txt", stories)
    # a 7-character read size puts separators across chunk boundaries
    assert list(iter_stories(path, chunk_chars=7)) == stories
    # separators inline and missing final separator, blank stories skipped
    (tmp_path / "inline.txt").write_text("First story.<|endoftext|>  <|endoftext|>Second\nstory.")
    assert list(iter_stories(str(tmp_path / "inline.txt"))) == ["First story.", "Second\nstory."]


def test_v2_sample_loads_every_story(v2_sample):
    ds = load_data_file(v2_sample)
    assert len(ds) == 786
    assert ds[0]["text"].startswith("Once upon a time")
    assert all("<|endoftext|>" not in t for t in ds["text"][:50])


def test_jsonl_and_parquet_files_load(tmp_path, stories):
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("\n".join(json.dumps({"story": s, "source": "test"}) for s in stories))
    assert load_data_file(str(jsonl), text_column="story")["story"] == stories
    parquet = tmp_path / "s.parquet"
    datasets.Dataset.from_dict({"text": stories}).to_parquet(str(parquet))
    raw = load_raw_datasets(train_file=str(parquet), validation_file=str(jsonl).replace(".jsonl", ".parquet"))
    assert raw["train"]["text"] == stories and raw["validation"]["text"] == stories


def test_validation_is_carved_from_train_reproducibly(stories_txt):
    a = load_raw_datasets(train_file=stories_txt, validation_split_percentage=10, seed=3)
    b = load_raw_datasets(train_file=stories_txt, validation_split_percentage=10, seed=3)
    assert (len(a["train"]), len(a["validation"])) == (108, 12)
    assert a["validation"]["text"] == b["validation"]["text"]
    assert not set(a["validation"]["text"]) & set(a["train"]["text"])
    limited = load_raw_datasets(train_file=stories_txt, max_train_samples=5, max_eval_samples=2)
    assert (len(limited["train"]), len(limited["validation"])) == (5, 2)


def test_save_to_disk_folder_and_configs_folder(tmp_path, stories):
    folder = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": stories[:100], "n": list(range(100))}),
            "validation": datasets.Dataset.from_dict({"text": stories[100:], "n": list(range(20))}),
        }
    ).save_to_disk(str(folder))
    raw = load_raw_datasets(dataset_name=str(folder))
    assert raw["train"].column_names == ["text"]  # extra columns dropped
    assert (len(raw["train"]), len(raw["validation"])) == (100, 20)

    # a Hub-layout folder: Parquet per config and split, configs declared in the README card
    hub = tmp_path / "hub"
    for config, prefix in (("default", "Plain"), ("instruct", "Words: dog\nStory:")):
        os.makedirs(hub / config)
        for split, part in (("train", stories[:100]), ("validation", stories[100:])):
            datasets.Dataset.from_dict({"text": [f"{prefix} {s}" for s in part]}).to_parquet(
                str(hub / config / f"{split}.parquet")
            )
    (hub / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  default: true\n  data_files:\n"
        "  - {split: train, path: default/train.parquet}\n  - {split: validation, path: default/validation.parquet}\n"
        "- config_name: instruct\n  data_files:\n  - {split: train, path: instruct/train.parquet}\n"
        "  - {split: validation, path: instruct/validation.parquet}\n---\n# test data\n"
    )
    assert load_raw_datasets(dataset_name=str(hub))["train"][0]["text"].startswith("Plain ")
    instruct = load_raw_datasets(dataset_name=str(hub), dataset_config_name="instruct")
    assert instruct["validation"][0]["text"].startswith("Words: dog\nStory:")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", "", "Data file is empty"),
        ("seps.txt", "<|endoftext|>\n\n<|endoftext|>\n", "No stories found"),
        ("bad.jsonl", '{"text": "fine"}\n{"text": "broken\n', "Could not read .*bad.jsonl"),
        ("notext.jsonl", '{"story": "a"}\n{"story": "b"}\n', "no column 'text' .*columns: story"),
        ("bad.parquet", "this is not parquet", "Could not read .*bad.parquet"),
        ("stories.csv", "text\nhello\n", "Unsupported data file"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_raw_datasets(train_file=str(path))


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="Data file not found"):
        load_raw_datasets(train_file=str(tmp_path / "nope.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="Dataset folder is empty"):
        load_raw_datasets(dataset_name=str(tmp_path / "empty"))


def test_group_texts_drops_only_the_remainder():
    out = group_texts([[1, 2, 3], [4, 5], [6, 7, 8, 9]], block_size=4)
    assert out["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert out["labels"] == out["input_ids"]


def test_packing_puts_eos_between_stories_and_is_cached(stories_txt, small_tokenizer):
    raw = load_raw_datasets(train_file=stories_txt, validation_split_percentage=10)
    packed = pack_dataset(raw, small_tokenizer, block_size=32)
    train = packed["train"]
    assert train.column_names == ["input_ids", "labels"]
    assert all(len(ids) == 32 for ids in train["input_ids"])
    assert train["labels"] == train["input_ids"]
    eos = small_tokenizer.eos_token_id
    stream = [t for block in train["input_ids"] for t in block]
    expected = []
    for story in raw["train"]["text"]:
        expected += small_tokenizer(story, add_special_tokens=False)["input_ids"] + [eos]
    assert stream == expected[: len(stream)]  # same order, EOS after every story, only the tail dropped
    assert len(expected) - len(stream) < 32
    decoded = small_tokenizer.decode(stream)
    assert decoded.split("<|endoftext|>")[0] == raw["train"][0]["text"]
    # the second identical call is served from datasets' cache
    again = pack_dataset(raw, small_tokenizer, block_size=32)
    assert again["train"].cache_files == train.cache_files


def test_packing_too_few_tokens_is_a_clear_error(tmp_path, small_tokenizer):
    path = write_v2(tmp_path / "tiny.txt", ["A cat.", "A dog.", "A hat."])
    raw = load_raw_datasets(train_file=path, validation_file=path)
    with pytest.raises(DataError, match="fewer than block_size=512 tokens"):
        pack_dataset(raw, small_tokenizer, block_size=512)


def test_urls_are_read_through_fsspec_like_hf_paths(stories_txt, stories):
    # hf://datasets/<repo>/<file> takes this same path (fsspec, provided by huggingface_hub), streamed
    assert load_data_file("file://" + stories_txt)["text"] == stories


def _sharded_folder(tmp_path, stories):
    """A folder as ``tinystories generate`` writes it: Hub-named shards per split, globs in the card's configs."""
    from tinystories.synth.dataset_folder import dataset_metadata, shard_path, write_layout_card, write_shard

    folder = tmp_path / "sharded"
    counts, num_bytes = [], {}
    for split, part in (("train", stories[:100]), ("validation", stories[100:])):
        for shard in range(3):
            rows = [{"text": s, "story": s, "missing_words": []} for s in part[shard::3]]
            written = write_shard(str(folder), shard_path("default", split, shard, 3), rows)
            num_bytes[f"default/{split}"] = num_bytes.get(f"default/{split}", 0) + written["bytes"]
        counts.append({"config": "default", "split": split, "rows": len(part)})
    write_layout_card(str(folder), dataset_metadata(counts, num_bytes), "test")
    return folder


def test_a_sharded_generated_folder_loads_and_streams(tmp_path, stories, small_tokenizer):
    folder = _sharded_folder(tmp_path, stories)
    raw = load_raw_datasets(dataset_name=str(folder))
    assert (len(raw["train"]), len(raw["validation"])) == (100, 20)
    assert sorted(raw["train"]["text"]) == sorted(stories[:100]) and raw["train"].column_names == ["text"]
    streamed = load_raw_datasets(dataset_name=str(folder), streaming=True, max_train_samples=50)
    assert isinstance(streamed, datasets.IterableDatasetDict)
    assert sorted(r["text"] for r in streamed["validation"]) == sorted(stories[100:])
    assert len(list(streamed["train"])) == 50
    packed = pack_dataset(streamed, small_tokenizer, block_size=32)
    blocks = list(packed["train"])
    assert blocks and all(len(b["input_ids"]) == 32 and b["labels"] == b["input_ids"] for b in blocks)
    eager = pack_dataset(load_raw_datasets(dataset_name=str(folder), max_train_samples=50), small_tokenizer, 32)
    assert [b["input_ids"] for b in blocks] == eager["train"]["input_ids"]  # the same blocks, read lazily
    with pytest.raises(DataError, match="streaming reads a dataset"):
        load_raw_datasets(train_file=str(tmp_path / "x.txt"), streaming=True)


def test_a_glob_of_parquet_shards_loads_as_one_file_and_bad_globs_say_why(tmp_path):
    stories = make_stories(12)
    (tmp_path / "default").mkdir()
    for i, part in enumerate((stories[:5], stories[5:])):
        datasets.Dataset.from_dict({"text": part}).to_parquet(tmp_path / "default" / f"train-0000{i}-of-00002.parquet")
    assert load_data_file(str(tmp_path / "default" / "train-*.parquet"))["text"] == stories
    with pytest.raises(DataError, match="No data file matches"):
        load_data_file(str(tmp_path / "default" / "validation-*.parquet"))
    write_v2(tmp_path / "a.txt", stories)
    with pytest.raises(DataError, match="glob of .txt files is not supported"):
        load_data_file(str(tmp_path / "*.txt"))
    odd = write_v2(tmp_path / "stories[1].txt", stories)  # a real file whose name looks like a pattern
    assert load_data_file(odd)["text"] == stories
