"""The dataset folder: Parquet per config and split, and the YAML that makes ``load_dataset(folder)`` and
``load_dataset(folder, "instruct")`` find them (``configs``, and ``dataset_info`` with each split's size).

``tinystories generate`` then writes the full card over the README (``tinystories.hub``, from ``generation.json``);
a folder written from Python by ``tinystories.synth.run`` keeps this minimal one, which loads the same way.
"""

from __future__ import annotations

import os
from typing import Any

#: Configs in their order on the card: ``default`` (stories) first.
CONFIGS = ("default", "instruct")


def parquet_path(config: str, split: str) -> str:
    """Where a split of a config lies inside the folder."""
    return f"{config}/{split}.parquet"


def write_split(output_dir: str, config: str, split: str, rows: list[dict]) -> dict[str, Any]:
    """One Parquet file; returns its count row ``{"config", "split", "rows"}``."""
    import datasets

    path = os.path.join(output_dir, parquet_path(config, split))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(path)
    return {"config": config, "split": split, "rows": len(rows)}


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` examples (``n<1K``, ``1K<n<10K``, ... ``n>1T``)."""
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    if rows < 1000:
        return "n<1K"
    for i, upper in enumerate(bounds[1:]):
        if rows < 10 ** (i + 4):
            return f"{bounds[i]}<n<{upper}"
    return "n>1T"


def dataset_metadata(output_dir: str, counts: list[dict[str, Any]]) -> dict[str, Any]:
    """The card YAML that locates the data: ``configs`` (files by split) and ``dataset_info`` (each split's bytes
    and examples, as on the Hub: datasets verifies them, and they keep its cache of one folder from serving another
    folder of the same name and layout, since its cache key hashes this metadata, not the paths)."""
    names = sorted({c["config"] for c in counts}, key=CONFIGS.index)
    configs, dataset_info = [], []
    for config in names:
        rows = [c for c in counts if c["config"] == config]
        configs.append(
            {
                "config_name": config,
                "data_files": [{"split": c["split"], "path": parquet_path(config, c["split"])} for c in rows],
                **({"default": True} if config == "default" else {}),
            }
        )
        splits = [
            {
                "name": c["split"],
                "num_bytes": os.path.getsize(os.path.join(output_dir, parquet_path(config, c["split"]))),
                "num_examples": c["rows"],
            }
            for c in rows
        ]
        total = sum(split["num_bytes"] for split in splits)
        dataset_info.append({"config_name": config, "splits": splits, "download_size": total, "dataset_size": total})
    stories = sum(c["rows"] for c in counts if c["config"] == "default")
    return {"configs": configs, "dataset_info": dataset_info, "size_categories": size_category(stories)}


def write_layout_card(output_dir: str, metadata: dict[str, Any], title: str) -> None:
    """A README whose YAML declares ``metadata`` (``dataset_metadata``) and a line of text."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(language="en", task_categories=["text-generation"], tags=["tinystories", "synthetic"])
    for key, value in metadata.items():
        setattr(data, key, value)
    body = f"# {title}\n\nGenerated with `tinystories generate`; `generation.json` holds its settings and report.\n"
    DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(os.path.join(output_dir, "README.md"))
