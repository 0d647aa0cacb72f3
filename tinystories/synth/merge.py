"""From shards to one dataset: the duplicate index restored from the shards' candidates, the cross-worker duplicate
pass, and the run's summary (``generation.json``) and minimal card assembled from the completion markers.

Workers (``worker: i/N``) each check duplicates against their own earlier chunks only: they cannot see one another.
Since a story is a duplicate when it matches any earlier candidate (kept or not, ``dedup``), the decision one run
over every chunk would take is a function of the candidates of the earlier chunks, which every shard keeps
(``.shards/dedup``). ``--merge`` (and a plain run that finds chunks made by workers) replays the index over all
chunks in order and removes the stories a single run would have removed, rewriting only the shards that change: the
merged folder is then exactly that single run's.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from ..recipes import GENERATION_FILE
from .arguments import GenerateArguments
from .dataset_folder import CONFIGS, dataset_metadata, read_shard, remove_shard, write_layout_card, write_shard
from .dedup import EXACT_DUPLICATE, KEPT, NEAR_DUPLICATE, DedupIndex, load_block, save_block
from .filters import FilterReport
from .shards import chunk_name, dedup_dir, sum_stats, write_marker

logger = logging.getLogger("tinystories.generate")

TITLE = "TinyStories-style synthetic stories"
SPLITS = ("train", "validation")


def restore_block(index: DedupIndex, output_dir: str, chunk: int) -> dict[str, np.ndarray]:
    """Add a written chunk's candidates to ``index`` (their signatures stay memory-mapped); returns the block."""
    block = load_block(dedup_dir(output_dir), chunk_name(chunk))
    index.add(block["hashes"], block["signatures"], block["status"])
    return block


def _rewrite_chunk(args: GenerateArguments, marker: dict, block: dict, status: np.ndarray) -> None:
    """Apply the merged outcome ``status`` to one chunk: drop the newly found duplicates from its shards, renumber
    its candidates' rows, and recount its filter report from the rows left."""
    drop = (block["status"] == KEPT) & (status != KEPT)
    rows = block["rows"].copy()
    stories: list[dict] = []
    for s, split in enumerate(SPLITS):
        in_split = block["splits"] == s
        gone = set(rows[drop & in_split].tolist())
        kept_here = in_split & (status == KEPT)
        rows[in_split & (status != KEPT)] = -1
        rows[kept_here] = np.argsort(np.argsort(rows[kept_here]))  # same order, positions without the gaps
        for config in CONFIGS:
            entry = marker["files"].get(f"{config}/{split}")
            if entry is None:
                continue
            old = read_shard(args.output_dir, entry["path"])
            new = [row for i, row in enumerate(old) if i not in gone]
            if gone and new:
                entry.update(write_shard(args.output_dir, entry["path"], new))
            elif gone:  # every story of the shard was a duplicate: no empty shard
                remove_shard(args.output_dir, entry["path"])
                del marker["files"][f"{config}/{split}"]
            if config == "default":
                stories += new
    report = FilterReport.from_state(marker["filters"])
    report.removed["exact duplicate"] = int((status == EXACT_DUPLICATE).sum())
    report.removed["near duplicate"] = int((status == NEAR_DUPLICATE).sum())
    unique = status != EXACT_DUPLICATE
    report.oov_sum, report.oov_count = float(block["shares"][unique].sum()), int(unique.sum())
    report.kept, report.words_sum = 0, 0
    report.openers.clear(), report.feature_counts.clear(), report.required_words.clear()
    report.count_kept(stories)
    marker["filters"] = report.state()
    marker["merged"] = True
    save_block(
        dedup_dir(args.output_dir),
        chunk_name(marker["chunk"]),
        block["hashes"],
        block["signatures"],
        status,
        block["splits"],
        rows,
        block["shares"],
    )
    write_marker(args.output_dir, marker["chunk"], marker)


def cross_worker_dedup(args: GenerateArguments, markers: dict[int, dict]) -> list[int]:
    """Replay duplicate detection over every chunk in order when some were made by workers of a split; returns the
    chunks whose outcome changed (their shards rewritten). A no-op for chunks all made by one process."""
    if all(m.get("worker", "0/1") == "0/1" for m in markers.values()):
        return []
    index = DedupIndex(threshold=args.dedup_threshold)
    changed = []
    for chunk in sorted(markers):
        block = load_block(dedup_dir(args.output_dir), chunk_name(chunk))
        status = index.classify(block["hashes"], block["signatures"])
        index.add(block["hashes"], block["signatures"], status)
        if (status != block["status"]).any():
            _rewrite_chunk(args, markers[chunk], block, status)
            changed.append(chunk)
    if changed:
        logger.info("Duplicates across workers removed from %d chunk(s): %s", len(changed), changed)
    return changed


def assemble(args: GenerateArguments, markers: dict[int, dict], vocabulary_size: int, example: str) -> dict:
    """The run's summary from the markers: every chunk's (a plain run, ``--merge``) or this worker's."""
    whole = args.merge or args.num_workers == 1
    scope = list(range(args.num_chunks)) if whole else args.my_chunks()
    present = [c for c in scope if c in markers]
    rows: dict[str, int] = {}
    num_bytes: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    for chunk in present:
        for name, entry in markers[chunk]["files"].items():
            rows[name] = rows.get(name, 0) + entry["rows"]
            num_bytes[name] = num_bytes.get(name, 0) + entry["bytes"]
            files.setdefault(name, []).append(entry["path"])
    counts = [
        {"config": config, "split": split, "rows": rows[f"{config}/{split}"]}
        for config in CONFIGS
        for split in SPLITS
        if rows.get(f"{config}/{split}")
    ]
    listed = None if whole else {f"{c['config']}/{c['split']}": files[f"{c['config']}/{c['split']}"] for c in counts}
    report = FilterReport()
    for chunk in present:
        report.merge(FilterReport.from_state(markers[chunk]["filters"]))
    engine = {
        name: sum_stats([markers[c]["engine"][name] for c in present if name in markers[c]["engine"]])
        for name in ("stories", "summaries")
    }
    incomplete = [c for c in present if not markers[c].get("complete")]
    missing = [c for c in scope if c not in markers]
    if missing:
        logger.warning("%d chunk(s) of %d are not made yet: %s", len(missing), len(scope), _ranges(missing))
    return {
        "arguments": args.recipe(),
        "counts": counts,
        "engine": {name: stats for name, stats in engine.items() if stats} or {"stories": {}},
        "filters": report.as_dict(),
        "metadata": dataset_metadata(counts, num_bytes, listed),
        "title": TITLE,
        "vocabulary_size": vocabulary_size,
        "example_prompt": example,
        "shards": {
            "num_shards": args.num_chunks,
            "chunk_size": args.chunk_size,
            "worker": "merged" if args.merge else args.worker,
            "complete": len(present) - len(incomplete),
            "incomplete": incomplete,
            "missing": _ranges(missing),
        },
    }


def _ranges(chunks: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts, start = [], None
    for i, c in enumerate(chunks):
        if start is None:
            start = c
        if i + 1 == len(chunks) or chunks[i + 1] != c + 1:
            parts.append(f"{start}" if start == c else f"{start}-{c}")
            start = None
    return ", ".join(parts)


def write_summary(args: GenerateArguments, summary: dict[str, Any]) -> None:
    """``generation.json`` (atomically) and the minimal card (``tinystories generate`` then writes the full one)."""
    write_layout_card(args.output_dir, summary["metadata"], TITLE)
    path = os.path.join(args.output_dir, GENERATION_FILE)
    with open(f"{path}.tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(f"{path}.tmp", path)
