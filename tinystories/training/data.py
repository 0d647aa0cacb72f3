"""Training data: stories from a Hub dataset, a local dataset folder or files, split into train and validation,
then packed into fixed-length blocks of tokens (transformers' ``group_texts``)."""

from __future__ import annotations

import logging
import os
from itertools import chain
from typing import Any

import datasets
from datasets import DatasetDict

from ..errors import DataError
from ..story_formats import check_text_column, load_data_file

logger = logging.getLogger(__name__)


def _is_saved_to_disk(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in ("dataset_dict.json", "state.json"))


def load_named_dataset(
    name: str, config_name: str | None = None, cache_dir: str | None = None, revision: str | None = None
) -> DatasetDict:
    """A Hub dataset id or a local folder (``save_to_disk`` output, or data files with configs) as a DatasetDict."""
    if os.path.isdir(name) and _is_saved_to_disk(name):
        loaded = datasets.load_from_disk(name)
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
    if os.path.isdir(name) and not os.listdir(name):
        raise DataError(f"Dataset folder is empty: {name}")
    try:
        return datasets.load_dataset(name, config_name, cache_dir=cache_dir, revision=revision)
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
) -> DatasetDict:
    """``train`` and ``validation`` splits of stories, holding only ``text_column``.

    Without a validation split or file, ``validation_split_percentage`` percent of train becomes validation
    (a seeded split, so every process and every run carve the same stories).
    """
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


def pack_dataset(
    raw: DatasetDict,
    tokenizer: Any,
    block_size: int = 512,
    text_column: str = "text",
    num_proc: int | None = None,
    batch_size: int = 1000,
) -> DatasetDict:
    """Tokenized ``input_ids``/``labels`` blocks of ``block_size`` tokens, EOS between stories; cached by datasets."""
    packed = raw.map(
        _Packer(tokenizer, text_column, block_size),
        batched=True,
        batch_size=batch_size,
        remove_columns=raw["train"].column_names,
        num_proc=num_proc,
        desc=f"Tokenizing and packing into blocks of {block_size}",
    )
    for split, dataset in packed.items():
        if len(dataset) == 0:
            raise DataError(
                f"The {split} split has fewer than block_size={block_size} tokens in total; lower block_size or "
                "give more stories"
            )
    return packed
