"""``tinystories generate RECIPE.yaml``: a TinyStories(-Instruct) dataset from a teacher LLM, as a Hub-layout folder.

The run streams in chunks of ``chunk_size`` prompts; each chunk goes through the blocks, one concern each: prompts
(``prompts``) -> stories through the LLM engine (``missing_words``: a story missing a required word is re-asked,
kept with a flag, or dropped) -> for Instruct, a summary per story -> quality filters and duplicates against every
story before (``filters``, ``dedup``) -> each story's split -> its Parquet shards and completion marker
(``dataset_folder``, ``shards``); a chunk is filtered and written while the next one is requested. Memory holds
two chunks and the duplicate index, whatever ``num_stories``.
A re-run skips the chunks with a marker (no request, no cache lookup) and redoes the others from the request cache;
``generation.json``, the run's summary, is assembled from the markers (``merge``: docs/generation.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import GenerationError
from ..llm import LLMEngine
from ..llm.failures import BUDGET, TIMEOUT, failure_table, reason_of
from ..logging_setup import logging_from_argv
from ..run_lock import RunLock
from .arguments import GenerateArguments, parse_generate_args
from .dataset_folder import CONFIGS, remove_shard, shard_path, write_shard
from .dedup import KEPT, save_block
from .filters import FilterConfig, StoryFilter, missing_words
from .instruct import instruct_example, summary_messages
from .merge import assemble, cross_worker_dedup, restore_block, write_summary
from .prompts import PromptSampler
from .shards import chunk_name, dedup_dir, read_markers, remove_run, write_marker
from .vocabulary import Vocabulary, load_vocabulary

logger = logging.getLogger("tinystories.generate")

SPLITS = ("train", "validation")


@contextlib.contextmanager
def teacher_engine(args: GenerateArguments) -> Iterator[LLMEngine]:
    """The run's one engine: every chunk's stories and summaries go through it, so ``budget_usd`` caps the whole
    run and the concurrency it learned carries over from chunk to chunk; its cache is closed at the end."""
    engine = LLMEngine(args.teacher_llm())
    try:
        yield engine
    finally:
        if engine.cache is not None:
            engine.cache.close()


def _run(engine: LLMEngine, args: GenerateArguments, requests, **params):
    """Live requests, or the Batch API when ``use_batch_api`` (same cache, validation and accounting)."""
    if args.use_batch_api:
        from ..llm.batch_api import BatchRunner

        return BatchRunner(engine, poll_interval=args.batch_poll_interval).run(requests, **params)
    return engine.run(requests, **params)


def prompt_sampler(args: GenerateArguments, vocabulary: Vocabulary) -> PromptSampler:
    return PromptSampler(
        vocabulary, seed=args.seed, template=args.template, feature_probability=args.feature_probability
    )


def filter_config(args: GenerateArguments) -> FilterConfig:
    """``missing_words: keep`` lets a story missing a required word through; reask and drop filter it out (with
    reask the engine has already asked again)."""
    require = args.missing_words != "keep"
    return FilterConfig(args.min_words, args.max_words, args.max_out_of_vocabulary, require, args.dedup_threshold)


def _retry_later(result) -> bool:
    """A request lost to the endpoint or the budget (not to its reply's content): its chunk stays incomplete."""
    reason = reason_of(result.error)
    return reason in (TIMEOUT, BUDGET) or reason.startswith(("HTTP", "connection"))


def generate_records(args: GenerateArguments, prompts, engine: LLMEngine) -> tuple[list[dict], dict, bool]:
    """Stories (and summaries) of ``prompts`` in the released schema (plus ``missing_words`` and the internal
    ``_index``), the engine statistics of these requests, and whether every request got an answer or a content
    verdict."""

    def validate(text: str, position: int) -> str | None:
        missing = missing_words(text, prompts[position].words)
        return f"misses required word(s): {', '.join(missing)}" if missing else None

    reask = args.missing_words == "reask"
    engine.validate = validate if reask else None  # with reask, a story the engine returns has every word
    requests = [[{"role": "user", "content": p.prompt}] for p in prompts]
    results = _run(engine, args, requests, temperature=args.temperature, max_tokens=args.max_tokens)
    records = [
        {
            "story": result.text.strip(),
            "instruction": prompt.instruction(),
            "summary": "",
            "source": args.model,
            "request_id": (result.response or {}).get("id", ""),
            "missing_words": [] if reask else missing_words(result.text, prompt.words),
            "_index": prompt.index,
        }
        for prompt, result in zip(prompts, results)
        if result.ok
    ]
    stats = {"stories": engine.take_stats().as_dict()}
    complete = not stats["stories"]["budget_stopped"] and not any(_retry_later(r) for r in results if not r.ok)
    if args.instruct and records:
        engine.validate = None
        summaries = _run(
            engine,
            args,
            [summary_messages(r["story"]) for r in records],
            temperature=args.temperature,
            max_tokens=120,
        )
        for record, summary in zip(records, summaries):
            record["summary"] = summary.text.strip() if summary.ok else ""
        stats["summaries"] = engine.take_stats().as_dict()
        complete = complete and not stats["summaries"]["budget_stopped"]
        complete = complete and not any(_retry_later(r) for r in summaries if not r.ok)
    return records, stats, complete


def in_validation(seed: int, index: int, fraction: float) -> bool:
    """Story ``index``'s split, from a hash of the seed and the index alone: the same whatever the chunking, the
    workers or what the filters removed around it (a share of ``fraction`` in expectation)."""
    digest = hashlib.sha256(f"{seed}:validation:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def example_rows(records: list[dict], config: str, seed: int, ood: bool = False) -> list[dict]:
    """Rows of a config: the released schema plus ``text`` (the story, or the Instruct example, its parts drawn by
    a generator seeded by the seed and the story's prompt index)."""
    if config == "instruct":
        return [
            dict(r, text=instruct_example(r, random.Random(f"{seed}:instruct:{r.get('_index', i)}"), ood=ood))
            for i, r in enumerate(records)
        ]
    return [dict(r, text=r["story"]) for r in records]


def configs_of(args: GenerateArguments) -> tuple[str, ...]:
    return CONFIGS if args.instruct else CONFIGS[:1]


def splits_of(args: GenerateArguments) -> tuple[str, ...]:
    return SPLITS if args.validation_fraction > 0 else SPLITS[:1]


@dataclass
class RequestedChunk:
    """A chunk's prompts and the records its requests gave, before the filters: what ``write_chunk`` needs."""

    chunk: int
    prompts: list
    records: list[dict]
    stats: dict
    complete: bool


def request_chunk(args: GenerateArguments, sampler: PromptSampler, engine: LLMEngine, chunk: int) -> RequestedChunk:
    prompts = [sampler.prompt(i) for i in args.chunk_range(chunk)]
    records, stats, complete = generate_records(args, prompts, engine)
    return RequestedChunk(chunk, prompts, records, stats, complete)


def write_chunk(args: GenerateArguments, story_filter: StoryFilter, requested: RequestedChunk) -> dict:
    """Filter, split and write one requested chunk; returns (and writes, last) its completion marker. Chunks are
    written in order (the duplicate index takes each one's candidates)."""
    chunk, prompts = requested.chunk, requested.prompts
    screened = story_filter.screen(requested.records)
    by_split: dict[str, list[dict]] = {split: [] for split in SPLITS}
    splits, rows = [], []
    for record, status in zip(screened.candidates, screened.status):
        split = "validation" if in_validation(args.seed, record["_index"], args.validation_fraction) else "train"
        splits.append(SPLITS.index(split))
        rows.append(len(by_split[split]) if status == KEPT else -1)
        if status == KEPT:
            by_split[split].append(record)
    files = {}
    for config in configs_of(args):
        for split in splits_of(args):
            path = shard_path(config, split, chunk, args.num_chunks)
            if not by_split[split]:  # no empty shard: datasets cannot read a Parquet file without rows
                remove_shard(args.output_dir, path)
                continue
            rows_out = example_rows(by_split[split], config, args.seed, ood=args.ood)
            files[f"{config}/{split}"] = {"path": path, **write_shard(args.output_dir, path, rows_out)}
    sig_path = save_block(
        dedup_dir(args.output_dir),
        chunk_name(chunk),
        screened.hashes,
        screened.signatures,
        screened.status,
        splits,
        rows,
        screened.shares,
    )
    story_filter.index.swap_last_block(sig_path)
    marker = {
        "chunk": chunk,
        "prompts": [prompts[0].index, prompts[-1].index + 1],
        "complete": requested.complete,
        "worker": args.worker,
        "plan": args.plan(),
        "files": files,
        "engine": requested.stats,
        "filters": screened.report.state(),
    }
    write_marker(args.output_dir, chunk, marker)
    return marker


def _check_plan(args: GenerateArguments, markers: dict[int, dict]) -> dict[int, dict]:
    """The markers made under this run's plan; shards of another plan (another num_stories, seed, filter ...) are
    removed first (rebuilt from the request cache, so nothing paid is lost)."""
    if any(m.get("plan") != args.plan() for m in markers.values()):
        logger.warning(
            "%s holds shards generated with other settings: rebuilding them (paid replies come from the cache)",
            args.output_dir,
        )
        remove_run(args.output_dir, CONFIGS)
        return {}
    return markers


def _finish_writing(writing: Future | None, markers: dict[int, dict], args: GenerateArguments, mine) -> None:
    """Wait for the chunk being written (if any), record its marker and say so."""
    if writing is None:
        return
    marker = writing.result()
    markers[marker["chunk"]] = marker
    done = sum(markers.get(c, {}).get("complete", False) for c in mine)
    logger.info(
        "Chunk %d of %d written (%d of this worker's %d done)", marker["chunk"] + 1, args.num_chunks, done, len(mine)
    )


def generate_shards(args: GenerateArguments, vocabulary: Vocabulary) -> dict[int, dict]:
    """This worker's chunks, in order: a chunk with a complete marker is restored into the duplicate index (its
    requests are never read), the others are made. A chunk is filtered and written in a thread while the next one's
    requests are in flight (at most two chunks of records in memory); the markers are written in order. Stops after
    an incomplete chunk (budget, endpoint failures)."""
    markers = _check_plan(args, read_markers(args.output_dir))
    sampler = prompt_sampler(args, vocabulary)
    story_filter = StoryFilter(vocabulary, filter_config(args))
    mine = args.my_chunks()
    todo = [c for c in mine if not markers.get(c, {}).get("complete")]
    with teacher_engine(args) as engine:
        if todo:
            sample = [[{"role": "user", "content": sampler.prompt(i).prompt}] for i in args.chunk_range(todo[0])]
            stories = sum(len(args.chunk_range(c)) for c in todo)
            estimate = engine.estimate_cost(sample, args.max_tokens) * stories / len(sample)
            print(
                f"Requesting {stories} stories in {len(todo)} chunk(s) from {args.model}: at most ~${estimate:.4f} "
                f"(estimate before cache; {len(mine) - len(todo)} chunk(s) already written)"
            )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-chunk") as writer:
            writing: Future | None = None  # the chunk being filtered and written while the next one is requested
            for position, chunk in enumerate(mine):
                if markers.get(chunk, {}).get("complete"):
                    _finish_writing(writing, markers, args, mine)
                    writing = None
                    restore_block(story_filter.index, args.output_dir, chunk)
                    continue
                requested = request_chunk(args, sampler, engine, chunk)
                _finish_writing(writing, markers, args, mine)  # in order: the duplicate index takes it first
                writing = writer.submit(write_chunk, args, story_filter, requested)
                if not requested.complete:
                    _finish_writing(writing, markers, args, mine)
                    writing = None
                    logger.warning(
                        "Chunk %d is incomplete (budget reached or requests lost to the endpoint): its shards are "
                        "written, the %d chunk(s) after it are not; run again to finish it (paid replies are cached).",
                        chunk,
                        len(mine) - position - 1,
                    )
                    break
            _finish_writing(writing, markers, args, mine)
    return markers


def build_splits(args: GenerateArguments, vocabulary: Vocabulary) -> tuple[dict[str, list[dict]], dict, dict]:
    """All in memory, nothing written (the ``datasets`` builder): ``({"train": records, "validation": records},
    engine stats, filter report)``, chunk by chunk as a run makes them."""
    from .filters import FilterReport
    from .shards import sum_stats

    sampler = prompt_sampler(args, vocabulary)
    story_filter = StoryFilter(vocabulary, filter_config(args))
    splits: dict[str, list[dict]] = {split: [] for split in SPLITS}
    stats, report = [], FilterReport()
    with teacher_engine(args) as engine:
        for chunk in range(args.num_chunks):
            requested = request_chunk(args, sampler, engine, chunk)
            screened = story_filter.screen(requested.records)
            for record in screened.kept:
                validation = in_validation(args.seed, record["_index"], args.validation_fraction)
                splits["validation" if validation else "train"].append(record)
            stats.append(requested.stats)
            report.merge(screened.report)
    engine = {name: sum_stats([s[name] for s in stats if name in s]) for name in ("stories", "summaries")}
    return splits, {k: v for k, v in engine.items() if v}, report.as_dict()


def run(args: GenerateArguments) -> dict:
    """Generate this worker's shards (or, with ``merge``, only assemble every worker's), then write
    ``generation.json`` and the folder's minimal card; returns the summary (the recipe, counts, engine statistics,
    filter report, the card's metadata, an example prompt, the shards' state)."""
    cache_dir = args.teacher_llm().cache_dir
    if args.num_workers > 1 and not args.merge:  # workers share the folders: each holds its own part of them
        part = f"{args.worker_index}-of-{args.num_workers}"
        folders = [os.path.join(args.output_dir, ".shards", "workers", part), os.path.join(cache_dir, "workers", part)]
    else:
        folders = [args.output_dir, cache_dir]
    with RunLock(*folders, purpose=f"generate (worker {args.worker})"):
        vocabulary = load_vocabulary(args.vocabulary_file)
        if args.merge:
            markers = _check_plan(args, read_markers(args.output_dir))
        else:
            markers = generate_shards(args, vocabulary)
        if args.merge or args.num_workers == 1:
            cross_worker_dedup(args, markers)
        example = prompt_sampler(args, vocabulary).prompt(0).prompt
        summary = assemble(args, markers, len(vocabulary), example)
        if not summary["filters"]["kept"]:
            failures = ", ".join(f"{k}: {v}" for k, v in summary["engine"]["stories"]["failures"].items()) or "none"
            raise GenerationError(
                f"No story survived generation and filtering: {summary['filters']['total']} of {args.num_stories} "
                f"requests gave a story (failures: {failures}) and the filters kept none "
                f"({summary['filters']}). Paid replies are cached in {cache_dir}."
            )
        write_summary(args, summary)
    print(failure_table(summary["engine"]))
    print(
        f"Wrote {args.output_dir}: " + ", ".join(f"{c['config']}/{c['split']} {c['rows']}" for c in summary["counts"])
    )
    return summary


def main(argv: list[str] | None = None) -> dict:
    argv = logging_from_argv(sys.argv[1:] if argv is None else argv)
    return run(parse_generate_args(argv))
