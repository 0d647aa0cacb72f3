"""The bookkeeping of a sharded generation run, inside ``output_dir/.shards`` (datatrove's ``completions/`` idea):

- ``completions/00003``: the completion marker of chunk 3, a JSON file written (atomically) after its Parquet
  shards: the plan it was made under, its rows and bytes per config and split, its engine statistics and its filter
  report's full state. A chunk with a marker is done: a re-run skips it without reading its requests.
- ``dedup/00003.npz`` and ``dedup/00003.sig.npy``: its candidates for duplicate detection (``dedup.save_block``),
  from which a re-run (or ``--merge``) restores the index of everything written before.

The run's summary (``generation.json``) and card are always assembled from the markers, so they say the same after a
crash and resume, and across workers.
"""

from __future__ import annotations

import json
import os
from typing import Any

SHARDS_DIR = ".shards"


def marker_dir(output_dir: str) -> str:
    return os.path.join(output_dir, SHARDS_DIR, "completions")


def dedup_dir(output_dir: str) -> str:
    return os.path.join(output_dir, SHARDS_DIR, "dedup")


def chunk_name(chunk: int) -> str:
    return f"{chunk:05d}"


def write_marker(output_dir: str, chunk: int, marker: dict[str, Any]) -> str:
    """The completion marker of ``chunk`` (tmp + ``os.replace``: it exists in full or not at all)."""
    folder = marker_dir(output_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, chunk_name(chunk))
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(marker, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_markers(output_dir: str) -> dict[int, dict[str, Any]]:
    """``{chunk: marker}`` of every complete chunk in the folder (any worker's)."""
    folder = marker_dir(output_dir)
    markers = {}
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.isdigit():
                with open(os.path.join(folder, name)) as f:
                    markers[int(name)] = json.load(f)
    return markers


def remove_run(output_dir: str, configs: tuple[str, ...]) -> None:
    """Forget the shards of another plan: markers, dedup blocks and the configs' Parquet shards."""
    import shutil

    shutil.rmtree(os.path.join(output_dir, SHARDS_DIR), ignore_errors=True)
    for config in configs:
        folder = os.path.join(output_dir, config)
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.endswith(".parquet") or ".parquet.tmp-" in name:
                    os.remove(os.path.join(folder, name))


def sum_stats(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Engine statistics (``EngineStats.as_dict()``) of several chunks as one: numbers add up (``max_*`` and
    ``peak*`` keys take the largest), booleans are true if any is, mappings are summed key by key."""
    total: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if key not in total:
                total[key] = sum_stats([value]) if isinstance(value, dict) else value
            elif isinstance(value, bool) or isinstance(total[key], bool):
                total[key] = bool(total[key]) or bool(value)
            elif isinstance(value, (int, float)) and isinstance(total[key], (int, float)):
                if key.startswith(("max_", "peak")):
                    total[key] = max(total[key], value)
                else:
                    total[key] = total[key] + value
            elif isinstance(value, dict) and isinstance(total[key], dict):
                total[key] = sum_stats([total[key], value])
            else:
                total[key] = value
    if isinstance(total.get("cost_usd"), float):
        total["cost_usd"] = round(total["cost_usd"], 6)
    return total


__all__ = ["SHARDS_DIR", "chunk_name", "dedup_dir", "marker_dir", "read_markers", "sum_stats", "write_marker"]
