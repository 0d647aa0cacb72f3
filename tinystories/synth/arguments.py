"""The keys of a ``tinystories generate`` recipe: what to generate (``GenerateArguments``) and which teacher LLM to ask
(``LLMConfig``'s keys: ``model``, ``base_url``, ``max_concurrency``, ``cache_dir``, ``budget_usd`` ...)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..llm import LLMConfig, llm_arguments
from ..recipes import RecipeParser
from .prompts import TEMPLATES

#: What ``missing_words`` may say.
MISSING_WORDS = ("reask", "keep", "drop")

TeacherArguments = llm_arguments(
    "TeacherArguments", __name__, "model", "gpt-4o-mini", "The teacher model, as the server knows it."
)


@dataclass
class GenerateArguments(TeacherArguments):
    """Recipe keys of ``tinystories generate``: the teacher's ``LLMConfig`` keys and these."""

    num_stories: int = field(default=100, metadata={"help": "Stories to request (before filtering)."})
    seed: int = field(default=0, metadata={"help": "Seed of the prompts (words, features) and the split."})
    output_dir: str = field(default="tinystories-data", metadata={"help": "Folder of the dataset (Hub layout)."})
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
    missing_words: str = field(
        default="reask",
        metadata={
            "help": "A story missing a required word: 'reask' (rejected and asked again, up to the engine's content "
            "retries), 'keep' (kept, its row's missing_words names them) or 'drop' (not re-asked; filtered out)."
        },
    )
    chunk_size: int = field(
        default=2_000,
        metadata={
            "help": "Stories per chunk: each is generated, filtered and written as one Parquet shard per config and "
            "split; memory holds two chunks at most (~25 KB a story), so a larger one means fewer, larger shards."
        },
    )
    worker: str = field(
        default="0/1",
        metadata={
            "help": "'i/N': this process makes only chunks c with c % N == i (N processes or machines split one "
            "dataset without coordination; then run once with --merge)."
        },
    )
    merge: bool = field(
        default=False,
        metadata={
            "help": "Generate nothing: assemble generation.json and the card from every worker's shards (and drop "
            "the near duplicates across workers)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_stories < 1:
            raise ValueError(f"num_stories must be at least 1, got {self.num_stories}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.missing_words not in MISSING_WORDS:
            raise ValueError(f"missing_words must be one of {', '.join(MISSING_WORDS)}, got {self.missing_words!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        self.worker_index, self.num_workers = parse_worker(self.worker)

    @property
    def num_chunks(self) -> int:
        """Chunks (and so Parquet shards per config and split) of the whole dataset, over all workers."""
        return -(-self.num_stories // self.chunk_size)

    def chunk_range(self, chunk: int) -> range:
        """The prompt indices of a chunk."""
        return range(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, self.num_stories))

    def my_chunks(self) -> list[int]:
        """The chunks this worker makes."""
        return [c for c in range(self.num_chunks) if c % self.num_workers == self.worker_index]

    def recipe(self) -> dict[str, Any]:
        """The run as one flat recipe mapping (``generation.json`` records it; it reruns the run), the endpoint
        without credentials."""
        return {**dataclasses.asdict(self), "base_url": self.base_url and self.llm_config().public_base_url()}

    def plan(self) -> dict[str, Any]:
        """The settings that decide the stories of every shard (recorded in each completion marker): a re-run whose
        plan differs cannot reuse the shards (it rebuilds them, from the request cache)."""
        keys = (
            "model", "num_stories", "chunk_size", "seed", "template", "feature_probability", "vocabulary_file",
            "temperature", "max_tokens", "instruct", "ood", "validation_fraction", "min_words", "max_words",
            "max_out_of_vocabulary", "dedup_threshold", "missing_words",
        )  # fmt: skip
        return {key: getattr(self, key) for key in keys}

    def teacher_llm(self) -> LLMConfig:
        """The teacher's ``LLMConfig``, its request cache defaulting to ``output_dir/.cache``."""
        return self.llm_config().with_cache_dir(os.path.join(self.output_dir, ".cache"))


def parse_worker(worker: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)``, with ``0 <= i < N``."""
    try:
        index, total = (int(part) for part in str(worker).split("/"))
    except ValueError:
        raise ValueError(f"worker must be 'i/N' (e.g. 0/2), got {worker!r}") from None
    if not 0 <= index < total:
        raise ValueError(f"worker {worker!r}: need 0 <= i < N")
    return index, total


def parse_generate_args(argv: list[str]) -> GenerateArguments:
    """``[RECIPE.yaml] [--key value ...]`` of ``tinystories generate``."""
    (args,) = RecipeParser((GenerateArguments,), "tinystories generate", __doc__).parse(argv)
    return args
