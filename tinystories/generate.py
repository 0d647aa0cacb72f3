"""``tinystories generate RECIPE.yaml``: a TinyStories(-Instruct) dataset from a teacher LLM, as a Hub-layout folder.

Pipeline (each block one concern): prompts (three random words + random features, ``tinystories.prompts``) ->
stories through the LLM engine (cache, retries, budget; a story missing a required word is rejected and
re-asked) -> for Instruct, a summary per story (a second request) -> quality filters with a report ->
train/validation split -> Parquet per config and split, and a README card declaring the configs, so that
``load_dataset(folder)`` and ``load_dataset(folder, "instruct")`` load it and ``tinystories train`` trains on it.

Everything paid for is in the request cache (``cache_dir``): running the same recipe again, after a crash or with a
larger ``num_stories``, sends only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from dataclasses import asdict, dataclass, field

from .engine import EngineConfig, LLMEngine
from .filters import FilterConfig, filter_stories, missing_words
from .hub import card_template  # the Jinja card templates of hub_cards/ (hub imports generate lazily, no cycle)
from .instruct import instruct_example, summary_messages
from .prompts import TEMPLATES, PromptSampler
from .vocabulary import Vocabulary, load_vocabulary

logger = logging.getLogger("tinystories.generate")

CONFIGS = ("default", "instruct")


class GenerationError(RuntimeError):
    """A run that produced nothing usable (every request failed or every story was filtered out)."""


@dataclass
class GenerateArguments:
    """Recipe keys of ``tinystories generate``."""

    model: str = field(default="gpt-4o-mini", metadata={"help": "Teacher model name, as the server knows it."})
    base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible endpoint(s), comma-separated (default: OPENAI_BASE_URL or OpenAI)."},
    )
    num_stories: int = field(default=100, metadata={"help": "Stories to request (before filtering)."})
    seed: int = field(default=0, metadata={"help": "Seed of the prompts (words, features) and the split."})
    output_dir: str = field(default="tinystories-data", metadata={"help": "Folder of the dataset (Hub layout)."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Request cache folder (default: output_dir/.cache). Never pay twice."}
    )
    max_concurrency: int = field(default=16, metadata={"help": "Requests in flight at once."})
    max_retries: int = field(default=6, metadata={"help": "Retries of a failed request."})
    request_timeout: float = field(default=120.0, metadata={"help": "Seconds before a request times out."})
    budget_usd: float | None = field(default=None, metadata={"help": "Hard cap on the money spent by this run."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the teacher."})
    max_tokens: int = field(default=800, metadata={"help": "Longest story (tokens); a cut story is rejected."})
    instruct: bool = field(default=False, metadata={"help": "Also write the TinyStories-Instruct config."})
    ood: bool = field(default=False, metadata={"help": "Instruct: never combine Summary and Words."})
    use_batch_api: bool = field(
        default=False, metadata={"help": "Use the OpenAI Batch API (half price, within 24 h); a re-run resumes."}
    )
    batch_poll_interval: float = field(default=30.0, metadata={"help": "Seconds between Batch API status checks."})
    template: str = field(default="gpt4", metadata={"help": f"Prompt wording: one of {', '.join(TEMPLATES)}."})
    feature_probability: float = field(default=0.3, metadata={"help": "Chance of each story feature."})
    vocabulary_file: str | None = field(default=None, metadata={"help": "Word list (default: the bundled one)."})
    validation_fraction: float = field(default=0.05, metadata={"help": "Share of stories in the validation split."})
    min_words: int = field(default=50, metadata={"help": "Shortest story kept (words)."})
    max_words: int = field(default=600, metadata={"help": "Longest story kept (words)."})
    max_out_of_vocabulary: float = field(
        default=0.2, metadata={"help": "Largest share of words outside the vocabulary."}
    )
    dedup_threshold: float = field(
        default=0.7, metadata={"help": "MinHash similarity above which a story is a near duplicate."}
    )
    prices: dict | str | None = field(
        default=None, metadata={"help": "USD per 1M tokens for models not in the built-in table: {model: [in, out]}."}
    )

    def __post_init__(self) -> None:
        if self.num_stories < 1:
            raise ValueError(f"num_stories must be at least 1, got {self.num_stories}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if isinstance(self.prices, str):
            import yaml

            self.prices = yaml.safe_load(self.prices)


def _engine(args: GenerateArguments, validate=None) -> LLMEngine:
    prices = {model: tuple(price) for model, price in (args.prices or {}).items()}
    config = EngineConfig(
        model=args.model,
        base_url=args.base_url,
        max_concurrency=args.max_concurrency,
        max_retries=args.max_retries,
        request_timeout=args.request_timeout,
        budget_usd=args.budget_usd,
        cache_dir=args.cache_dir or os.path.join(args.output_dir, ".cache"),
        prices=prices,
    )
    return LLMEngine(config, validate=validate)


def _run(engine: LLMEngine, args: GenerateArguments, requests, **params):
    """Live requests, or the Batch API when ``use_batch_api`` (same cache, validation and accounting)."""
    if args.use_batch_api:
        from .batch import BatchRunner

        return BatchRunner(engine, poll_interval=args.batch_poll_interval).run(requests, **params)
    return engine.run(requests, **params)


def generate_records(args: GenerateArguments, vocabulary: Vocabulary) -> tuple[list[dict], dict]:
    """Stories (and summaries) in the released schema, plus the engine statistics."""
    sampler = PromptSampler(
        vocabulary, seed=args.seed, template=args.template, feature_probability=args.feature_probability
    )
    prompts = sampler.prompts(args.num_stories)

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
    stats = {"stories": _stats(engine)}
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
        stats["summaries"] = _stats(summarizer)
    return records, stats


def _stats(engine: LLMEngine) -> dict:
    s = engine.stats
    return {
        "sent": s.sent,
        "cached": s.cached,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "retries": s.retries,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "cost_usd": round(s.cost_usd, 6),
        "failures": dict(s.failures),
        "budget_stopped": s.budget_stopped,
    }


def split_records(records: list[dict], validation_fraction: float, seed: int) -> dict[str, list[dict]]:
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_validation = round(len(records) * validation_fraction) if len(records) > 1 else 0
    if validation_fraction > 0 and len(records) > 1:
        n_validation = max(1, n_validation)
    validation = sorted(order[:n_validation])
    train = sorted(order[n_validation:])
    return {"train": [records[i] for i in train], "validation": [records[i] for i in validation]}


def write_dataset(args: GenerateArguments, splits: dict[str, list[dict]], stats: dict, report: dict) -> list[dict]:
    """Parquet per config and split, and the README card; returns the row counts."""
    import datasets

    counts = []
    configs = CONFIGS if args.instruct else ("default",)
    for config in configs:
        os.makedirs(os.path.join(args.output_dir, config), exist_ok=True)
        for split, records in splits.items():
            if not records:
                continue
            rows = example_rows(records, config, seed=args.seed + (split == "validation"), ood=args.ood)
            datasets.Dataset.from_list(rows).to_parquet(os.path.join(args.output_dir, config, f"{split}.parquet"))
            counts.append({"config": config, "split": split, "rows": len(rows)})
    write_card(args, counts, stats, report)
    return counts


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` examples (``n<1K``, ``1K<n<10K``, ... ``n>1T``)."""
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    if rows < 1000:
        return "n<1K"
    for i, upper in enumerate(bounds[1:]):
        if rows < 10 ** (i + 4):
            return f"{bounds[i]}<n<{upper}"
    return "n>1T"


def write_card(args: GenerateArguments, counts: list[dict], stats: dict, report: dict) -> None:
    dataset_card(args, counts, stats, report).save(os.path.join(args.output_dir, "README.md"))


def dataset_card(
    args: GenerateArguments,
    counts: list[dict],
    stats: dict,
    report: dict,
    repo_id: str | None = None,
    license: str = "cdla-sharing-1.0",
):
    """The README card of a dataset folder (``hub_cards/dataset_card.md``): configs, schema, teacher, prompt
    template, counts, cost and filter report. ``tinystories push dataset`` renders it again with the Hub id."""
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = []
    for config in sorted({c["config"] for c in counts}, key=CONFIGS.index):
        files = [
            {"split": c["split"], "path": f"{config}/{c['split']}.parquet"} for c in counts if c["config"] == config
        ]
        configs.append(
            {"config_name": config, "data_files": files, **({"default": True} if config == "default" else {})}
        )
    # per-config split sizes, as on the Hub: datasets verifies them, and they keep its cache of one folder from
    # serving another folder of the same name and layout (its cache key hashes this metadata, not the paths)
    dataset_info = []
    for config in [c["config_name"] for c in configs]:
        splits = []
        for c in counts:
            if c["config"] == config:
                size = os.path.getsize(os.path.join(args.output_dir, config, f"{c['split']}.parquet"))
                splits.append({"name": c["split"], "num_bytes": size, "num_examples": c["rows"]})
        total = sum(split["num_bytes"] for split in splits)
        dataset_info.append({"config_name": config, "splits": splits, "download_size": total, "dataset_size": total})
    total_rows = sum(c["rows"] for c in counts if c["config"] == "default")
    card_data = DatasetCardData(
        language="en",
        license=license,
        task_categories=["text-generation"],
        size_categories=size_category(total_rows),
        pretty_name="TinyStories-style synthetic stories",
        configs=configs,
        dataset_info=dataset_info,
        tags=["tinystories", "synthetic"],
    )
    story_stats = stats.get("stories", {})
    cost = sum(s.get("cost_usd", 0.0) for s in stats.values())
    filter_rows = ["| step | stories |", "| --- | --- |", f"| generated | {report['total']} |"]
    filter_rows += [f"| removed: {reason} | {count} |" for reason, count in report["removed"].items()]
    filter_rows += [f"| kept | {report['kept']} |"]
    filter_rows += [
        "",
        f"Mean length {report['mean_words']} words; mean share of words outside the vocabulary "
        f"{report['mean_out_of_vocabulary']:.2%}; {report['distinct_required_words']} distinct required words; "
        f"features: {json.dumps(report['feature_counts'])}; most common openers: "
        f"{json.dumps(report['top_openers'])}.",
    ]
    vocabulary = load_vocabulary(args.vocabulary_file)
    example = PromptSampler(vocabulary, seed=args.seed, template=args.template).prompt(0)
    return DatasetCard.from_template(
        card_data,
        template_str=card_template("dataset_card.md"),
        repo_id=repo_id,
        pretty_name="TinyStories-style synthetic stories",
        teacher=args.model,
        vocabulary_size=len(vocabulary),
        counts=counts,
        instruct=args.instruct,
        ood=args.ood,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        template_name=args.template,
        example_prompt=example.prompt,
        requests=story_stats.get("sent", 0) + stats.get("summaries", {}).get("sent", 0),
        cached=story_stats.get("cached", 0) + stats.get("summaries", {}).get("cached", 0),
        failed=story_stats.get("failed", 0),
        failure_reasons=", ".join(f"{k}: {v}" for k, v in story_stats.get("failures", {}).items()) or "none",
        prompt_tokens=sum(s.get("prompt_tokens", 0) for s in stats.values()),
        completion_tokens=sum(s.get("completion_tokens", 0) for s in stats.values()),
        cost=f"{cost:.4f}",
        filter_table="\n".join(filter_rows),
    )


def build_splits(args: GenerateArguments) -> tuple[dict[str, list[dict]], dict, dict]:
    """Generate, filter and split: ``({"train": records, "validation": records}, engine stats, filter report)``."""
    vocabulary = load_vocabulary(args.vocabulary_file)
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
            f"Paid replies are cached in {args.cache_dir or os.path.join(args.output_dir, '.cache')}."
        )
    return split_records(kept, args.validation_fraction, args.seed), stats, report.as_dict()


def example_rows(records: list[dict], config: str, seed: int, ood: bool = False) -> list[dict]:
    """Rows of a config: the released schema plus ``text`` (the story, or the Instruct example)."""
    if config == "instruct":
        rng = random.Random(seed)
        return [dict(r, text=instruct_example(r, rng, ood=ood)) for r in records]
    return [dict(r, text=r["story"]) for r in records]


def run(args: GenerateArguments) -> dict:
    """Generate, filter, split and write the dataset; returns a summary (also in ``output_dir/generation.json``)."""
    splits, stats, report = build_splits(args)
    counts = write_dataset(args, splits, stats, report)
    summary = {"arguments": asdict(args), "counts": counts, "engine": stats, "filters": report}
    with open(os.path.join(args.output_dir, "generation.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"Wrote {args.output_dir}: " + ", ".join(f"{c['config']}/{c['split']} {c['rows']}" for c in counts))
    return summary


def main(argv: list[str] | None = None) -> dict:
    from .arguments import RecipeParser

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = RecipeParser(classes=(GenerateArguments,), prog="tinystories generate").parse(
        sys.argv[1:] if argv is None else argv
    )
    return run(args)
