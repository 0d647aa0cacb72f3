"""``tinystories generate RECIPE.yaml``: a TinyStories(-Instruct) dataset from a teacher LLM, as a Hub-layout folder.

Blocks, each one concern: prompts (``prompts``) -> stories through the LLM engine (a story missing a required word is
rejected and re-asked) -> for Instruct, a summary per story -> quality filters with a report (``filters``) ->
train/validation split -> the dataset folder (``dataset_folder``) and ``generation.json``, the run's summary.
Everything paid for is in the request cache: the same recipe again sends only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys

from ..errors import GenerationError
from ..llm import LLMEngine
from ..recipes import GENERATION_FILE
from .arguments import GenerateArguments, parse_generate_args
from .dataset_folder import CONFIGS, dataset_metadata, write_layout_card, write_split
from .filters import FilterConfig, filter_stories, missing_words
from .instruct import instruct_example, summary_messages
from .prompts import PromptSampler
from .vocabulary import Vocabulary, load_vocabulary

logger = logging.getLogger("tinystories.generate")

TITLE = "TinyStories-style synthetic stories"


def _engine(args: GenerateArguments, validate=None) -> LLMEngine:
    return LLMEngine(args.teacher_llm(), validate=validate)


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


def generate_records(args: GenerateArguments, vocabulary: Vocabulary) -> tuple[list[dict], dict]:
    """Stories (and summaries) in the released schema, plus the engine statistics."""
    prompts = prompt_sampler(args, vocabulary).prompts(args.num_stories)

    def validate(text: str, index: int) -> str | None:
        missing = missing_words(text, prompts[index].words)
        return f"story misses the required word(s) {', '.join(missing)}" if missing else None

    engine = _engine(args, validate)
    requests = [[{"role": "user", "content": p.prompt}] for p in prompts]
    estimate = engine.estimate_cost(requests, args.max_tokens)
    print(f"Requesting {len(requests)} stories from {args.model}: at most ~${estimate:.4f} (estimate before cache)")
    results = _run(engine, args, requests, temperature=args.temperature, max_tokens=args.max_tokens)
    records = [
        {
            "story": result.text.strip(),
            "instruction": prompt.instruction(),
            "summary": "",
            "source": args.model,
            "request_id": (result.response or {}).get("id", ""),
        }
        for prompt, result in zip(prompts, results)
        if result.ok
    ]
    stats = {"stories": engine.stats.as_dict()}
    if args.instruct and records:
        summarizer = _engine(args)
        summaries = _run(
            summarizer,
            args,
            [summary_messages(r["story"]) for r in records],
            temperature=args.temperature,
            max_tokens=120,
        )
        for record, summary in zip(records, summaries):
            record["summary"] = summary.text.strip() if summary.ok else ""
        stats["summaries"] = summarizer.stats.as_dict()
    return records, stats


def split_records(records: list[dict], validation_fraction: float, seed: int) -> dict[str, list[dict]]:
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_validation = round(len(records) * validation_fraction) if len(records) > 1 else 0
    if validation_fraction > 0 and len(records) > 1:
        n_validation = max(1, n_validation)
    validation = sorted(order[:n_validation])
    train = sorted(order[n_validation:])
    return {"train": [records[i] for i in train], "validation": [records[i] for i in validation]}


def example_rows(records: list[dict], config: str, seed: int, ood: bool = False) -> list[dict]:
    """Rows of a config: the released schema plus ``text`` (the story, or the Instruct example)."""
    if config == "instruct":
        rng = random.Random(seed)
        return [dict(r, text=instruct_example(r, rng, ood=ood)) for r in records]
    return [dict(r, text=r["story"]) for r in records]


def build_splits(args: GenerateArguments, vocabulary: Vocabulary) -> tuple[dict[str, list[dict]], dict, dict]:
    """Generate, filter and split: ``({"train": records, "validation": records}, engine stats, filter report)``."""
    records, stats = generate_records(args, vocabulary)
    kept, report = filter_stories(
        records,
        vocabulary,
        FilterConfig(args.min_words, args.max_words, args.max_out_of_vocabulary, True, args.dedup_threshold),
    )
    if not kept:
        failures = ", ".join(f"{k}: {v}" for k, v in stats["stories"]["failures"].items()) or "none"
        raise GenerationError(
            f"No story survived generation and filtering: {len(records)} of {args.num_stories} requests gave a "
            f"story (failures: {failures}) and the filters kept none ({report.as_dict()}); nothing written. "
            f"Paid replies are cached in {args.teacher_llm().cache_dir}."
        )
    return split_records(kept, args.validation_fraction, args.seed), stats, report.as_dict()


def write_dataset(args: GenerateArguments, splits: dict[str, list[dict]]) -> list[dict]:
    """Parquet per config and split; returns the row counts."""
    counts = []
    for config in CONFIGS if args.instruct else CONFIGS[:1]:
        for split, records in splits.items():
            if records:
                rows = example_rows(records, config, seed=args.seed + (split == "validation"), ood=args.ood)
                counts.append(write_split(args.output_dir, config, split, rows))
    return counts


def run(args: GenerateArguments) -> dict:
    """Generate, filter, split and write the dataset folder; returns the summary written to ``generation.json``
    (the recipe, counts, engine statistics, filter report, the card's metadata, an example prompt)."""
    vocabulary = load_vocabulary(args.vocabulary_file)
    splits, stats, report = build_splits(args, vocabulary)
    counts = write_dataset(args, splits)
    metadata = dataset_metadata(args.output_dir, counts)
    summary = {
        "arguments": args.recipe(),
        "counts": counts,
        "engine": stats,
        "filters": report,
        "metadata": metadata,
        "title": TITLE,
        "vocabulary_size": len(vocabulary),
        "example_prompt": prompt_sampler(args, vocabulary).prompt(0).prompt,
    }
    write_layout_card(args.output_dir, metadata, TITLE)
    with open(os.path.join(args.output_dir, GENERATION_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"Wrote {args.output_dir}: " + ", ".join(f"{c['config']}/{c['split']} {c['rows']}" for c in counts))
    return summary


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    return run(parse_generate_args(sys.argv[1:] if argv is None else argv))
