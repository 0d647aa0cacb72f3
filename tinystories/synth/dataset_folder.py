"""The dataset folder: Parquet shards per config and split in the Hub's naming (``default/train-00003-of-00270.parquet``),
and the YAML that makes ``load_dataset(folder)`` and ``load_dataset(folder, "instruct")`` find them (``configs``, with
a glob per split, and ``dataset_info`` with each split's size).

``tinystories generate`` then writes the full card over the README (``tinystories.hub``, from ``generation.json``);
a folder written from Python by ``tinystories.synth.run`` keeps this minimal one, which loads the same way.
"""

from __future__ import annotations

import os
from typing import Any

#: Configs in their order on the card: ``default`` (stories) first.
CONFIGS = ("default", "instruct")


def parquet_path(config: str, split: str) -> str:
    """The files of a split of a config inside the folder: a glob over its shards."""
    return f"{config}/{split}-*.parquet"


def shard_path(config: str, split: str, shard: int, num_shards: int) -> str:
    """One shard of a split, named as the Hub names them."""
    return f"{config}/{split}-{shard:05d}-of-{num_shards:05d}.parquet"


def row_features():
    """The rows' schema (the released one, ``text`` and ``missing_words``), the same in every shard: a shard whose
    stories have no features would otherwise store ``instruction.features`` as a list of nulls."""
    import datasets

    return datasets.Features(
        {
            "text": datasets.Value("string"),
            "story": datasets.Value("string"),
            "instruction": {
                "prompt:": datasets.Value("string"),
                "words": datasets.List(datasets.Value("string")),
                "features": datasets.List(datasets.Value("string")),
            },
            "summary": datasets.Value("string"),
            "source": datasets.Value("string"),
            "request_id": datasets.Value("string"),
            "missing_words": datasets.List(datasets.Value("string")),
        }
    )


def write_shard(output_dir: str, path: str, rows: list[dict]) -> dict[str, int]:
    """One Parquet shard, written atomically (a temporary file, then ``os.replace``); returns its rows and bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = row_features()
    target = os.path.join(output_dir, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    columns = {name: [row.get(name) for row in rows] for name in features}
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    tmp = f"{target}.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, target)
    return {"rows": len(rows), "bytes": os.path.getsize(target)}


def remove_shard(output_dir: str, path: str) -> None:
    try:
        os.remove(os.path.join(output_dir, path))
    except FileNotFoundError:
        pass


def read_shard(output_dir: str, path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(os.path.join(output_dir, path)).to_pylist()


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` examples (``n<1K``, ``1K<n<10K``, ... ``n>1T``)."""
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    if rows < 1000:
        return "n<1K"
    for i, upper in enumerate(bounds[1:]):
        if rows < 10 ** (i + 4):
            return f"{bounds[i]}<n<{upper}"
    return "n>1T"


def dataset_metadata(
    counts: list[dict[str, Any]], num_bytes: dict[str, int], files: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The card YAML that locates the data: ``configs`` (a glob of shards by split) and ``dataset_info`` (each
    split's bytes and examples, as on the Hub: datasets verifies them, and they keep its cache of one folder from
    serving another folder of the same name and layout, since its cache key hashes this metadata, not the paths).
    ``counts``: one row per config and split, ``{"config", "split", "rows"}``; ``num_bytes``: ``{"config/split":
    bytes}``, both summed over the shards; ``files``: ``{"config/split": [paths]}`` to list the shards one by one
    (one worker's part of a dataset) instead of the glob of all of a split's shards."""
    names = sorted({c["config"] for c in counts}, key=CONFIGS.index)
    configs, dataset_info = [], []
    for config in names:
        rows = [c for c in counts if c["config"] == config]
        configs.append(
            {
                "config_name": config,
                "data_files": [
                    {
                        "split": c["split"],
                        "path": files[f"{config}/{c['split']}"] if files else parquet_path(config, c["split"]),
                    }
                    for c in rows
                ],
                **({"default": True} if config == "default" else {}),
            }
        )
        splits = [
            {"name": c["split"], "num_bytes": num_bytes[f"{config}/{c['split']}"], "num_examples": c["rows"]}
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
