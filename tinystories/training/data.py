"""Training data: stories from a Hub dataset, a local dataset folder (e.g. ``tinystories generate``'s Parquet shards)
or files, split into train and validation, then packed into fixed-length blocks of tokens (transformers'
``group_texts``), batch by batch: memory holds one batch, whatever the corpus (docs/training.md, "Data")."""

from __future__ import annotations

import logging
import os
from itertools import chain
from typing import Any

import datasets
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

from ..errors import DataError
from ..story_formats import check_text_column, load_data_file

logger = logging.getLogger(__name__)


def _is_saved_to_disk(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in ("dataset_dict.json", "state.json"))


def load_named_dataset(
    name: str,
    config_name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    streaming: bool = False,
) -> DatasetDict | IterableDatasetDict:
    """A Hub dataset id or a local folder (``save_to_disk`` output, or data files with configs) as a DatasetDict
    (an IterableDatasetDict with ``streaming``: read shard by shard, nothing converted to Arrow first)."""
    if os.path.isdir(name) and _is_saved_to_disk(name):
        loaded = datasets.load_from_disk(name)
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
    if os.path.isdir(name) and not os.listdir(name):
        raise DataError(f"Dataset folder is empty: {name}")
    try:
        return datasets.load_dataset(name, config_name, cache_dir=cache_dir, revision=revision, streaming=streaming)
    except (FileNotFoundError, ValueError, ConnectionError) as e:
        raise DataError(
            f"Could not load dataset {name!r}" + (f" (config {config_name!r})" if config_name else "") + f": {e}"
        ) from e


def load_raw_datasets(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    text_column: str = "text",
    validation_split_percentage: float = 5.0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
    cache_dir: str | None = None,
    revision: str | None = None,
    streaming: bool = False,
) -> DatasetDict | IterableDatasetDict:
    """``train`` and ``validation`` splits of stories, holding only ``text_column``.

    Without a validation split or file, ``validation_split_percentage`` percent of train becomes validation
    (a seeded split, so every process and every run carve the same stories). With ``streaming`` (a dataset name
    only) the splits are iterable and never fully read here; without a validation split, the first
    ``max_eval_samples`` (default 1,000) stories of train become validation.
    """
    if streaming:
        return _streamed(
            dataset_name, dataset_config_name, text_column, max_train_samples, max_eval_samples, cache_dir, revision
        )
    if dataset_name:
        raw = load_named_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir, revision=revision)
        if "train" not in raw:
            raise DataError(f"Dataset {dataset_name!r} has no 'train' split (splits: {', '.join(raw)})")
        splits = {"train": raw["train"]}
        for name in ("validation", "valid", "test"):
            if name in raw:
                splits["validation"] = raw[name]
                break
    else:
        splits = {"train": load_data_file(train_file, text_column, cache_dir)}
    if validation_file:
        splits["validation"] = load_data_file(validation_file, text_column, cache_dir)
    for split, dataset in splits.items():
        check_text_column(dataset, text_column, f"{dataset_name or train_file} [{split}]")
        if len(dataset) == 0:
            raise DataError(f"The {split} split of {dataset_name or train_file} has no stories")
    if "validation" not in splits:
        if len(splits["train"]) < 2:
            raise DataError("Need at least 2 training stories to carve a validation split; give validation_file")
        carved = splits["train"].train_test_split(test_size=validation_split_percentage / 100, seed=seed)
        splits = {"train": carved["train"], "validation": carved["test"]}
    if max_train_samples is not None:
        splits["train"] = splits["train"].select(range(min(max_train_samples, len(splits["train"]))))
    if max_eval_samples is not None:
        splits["validation"] = splits["validation"].select(range(min(max_eval_samples, len(splits["validation"]))))
    return DatasetDict(
        {
            split: ds.select_columns([text_column]) if ds.column_names != [text_column] else ds
            for split, ds in splits.items()
        }
    )


def _streamed(name, config_name, text_column, max_train_samples, max_eval_samples, cache_dir, revision):
    if not name:
        raise DataError("streaming reads a dataset (dataset_name: a Hub id or a folder), not train_file")
    raw = load_named_dataset(name, config_name, cache_dir=cache_dir, revision=revision, streaming=True)
    if "train" not in raw:
        raise DataError(f"Dataset {name!r} has no 'train' split (splits: {', '.join(raw)})")
    splits = {"train": raw["train"]}
    validation = next((raw[s] for s in ("validation", "valid", "test") if s in raw), None)
    if validation is None:
        carved = max_eval_samples or 1000
        validation, splits["train"] = splits["train"].take(carved), splits["train"].skip(carved)
    splits["validation"] = validation
    if max_train_samples is not None:
        splits["train"] = splits["train"].take(max_train_samples)
    if max_eval_samples is not None:
        splits["validation"] = splits["validation"].take(max_eval_samples)
    for split, dataset in splits.items():
        if dataset.column_names is not None:
            check_text_column(dataset, text_column, f"{name} [{split}]")
    return IterableDatasetDict({split: ds.select_columns([text_column]) for split, ds in splits.items()})


def group_texts(token_lists: list[list[int]], block_size: int) -> dict[str, list[list[int]]]:
    """Concatenate tokenized stories and cut them into ``block_size`` chunks; the remainder is dropped."""
    concatenated = list(chain.from_iterable(token_lists))
    total = (len(concatenated) // block_size) * block_size
    blocks = [concatenated[i : i + block_size] for i in range(0, total, block_size)]
    return {"input_ids": blocks, "labels": [list(b) for b in blocks]}


class _Packer:
    """Batched ``map`` function: tokenize stories, add EOS after each, pack into blocks.

    A class (not a closure) so datasets can hash it for its cache: same tokenizer and block size, same cache.
    """

    def __init__(self, tokenizer: Any, text_column: str, block_size: int):
        if tokenizer.eos_token_id is None:
            raise ValueError("The tokenizer has no EOS token; stories could not be separated")
        self.tokenizer = tokenizer
        self.text_column = text_column
        self.block_size = block_size

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        texts = [t for t in batch[self.text_column] if t and t.strip()]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        return group_texts([story + [eos] for story in ids], self.block_size)


def materialize(dataset: Dataset | IterableDataset, what: str = "validation") -> Dataset:
    """A streamed split read into memory as a ``Dataset`` (a small validation set: eval loss needs a fixed set),
    keeping its split name; a ``Dataset`` is returned as is."""
    if isinstance(dataset, Dataset):
        return dataset
    rows = list(dataset)
    if not rows:
        raise DataError(f"The streamed {what} split has no stories")
    columns = dataset.column_names or list(rows[0])
    return Dataset.from_dict({c: [row[c] for row in rows] for c in columns}, split=dataset.split)


def iter_texts(dataset: Dataset | IterableDataset, column: str, limit: int | None = None, batch_size: int = 1000):
    """The first ``limit`` texts of a split (all without ``limit``), read a batch at a time; a streamed split is
    read from its start, never indexed or measured."""
    if isinstance(dataset, IterableDataset):
        for row in dataset.take(limit) if limit is not None else dataset:
            yield row[column]
        return
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, total, batch_size):
        yield from dataset[start : min(start + batch_size, total)][column]


def pack_dataset(
    raw: DatasetDict | IterableDatasetDict | dict,
    tokenizer: Any,
    block_size: int = 512,
    text_column: str = "text",
    num_proc: int | None = None,
    batch_size: int = 1000,
) -> DatasetDict | IterableDatasetDict | dict:
    """Tokenized ``input_ids``/``labels`` blocks of ``block_size`` tokens, EOS between stories; cached by datasets.

    ``map(batched=True)`` tokenizes and packs ``batch_size`` stories at a time and writes each batch's blocks to
    datasets' Arrow cache file (``num_proc`` processes, one cache file each), so memory holds a batch, not the corpus.
    A streamed split (``IterableDataset``) is packed lazily, batch by batch, as training reads it. A mapping of
    both kinds (a streamed train split, a materialised validation set) is packed split by split, into a plain dict.
    """
    packer = _Packer(tokenizer, text_column, block_size)
    packed: dict[str, Dataset | IterableDataset] = {}
    for split, dataset in raw.items():
        if isinstance(dataset, IterableDataset):
            packed[split] = dataset.map(packer, batched=True, batch_size=batch_size, remove_columns=[text_column])
            continue
        packed[split] = dataset.map(
            packer,
            batched=True,
            batch_size=batch_size,
            remove_columns=dataset.column_names,
            num_proc=num_proc,
            desc=f"Tokenizing and packing {split} into blocks of {block_size}",
        )
        if len(packed[split]) == 0:
            raise DataError(
                f"The {split} split has fewer than block_size={block_size} tokens in total; lower block_size or "
                "give more stories"
            )
    if all(isinstance(d, IterableDataset) for d in packed.values()):
        return IterableDatasetDict(packed)
    if all(isinstance(d, Dataset) for d in packed.values()):
        return DatasetDict(packed)
    return packed
