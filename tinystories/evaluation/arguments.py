"""The keys of a ``tinystories evaluate`` recipe: the models, their sampling, the checks, and the judge (whose keys
are ``LLMConfig``'s, with ``judge_model`` for its model, and ``JudgeSettings``': the same as the metric's)."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..llm import LLMConfig
from ..recipes import RecipeParser
from .judge import JudgeArguments, JudgeSettings

CONFIGS = ("default", "instruct")


@dataclass
class EvaluateArguments(JudgeSettings, JudgeArguments):
    """Recipe keys of ``tinystories evaluate``: the judge's (``LLMConfig``'s keys, ``judge_model`` for ``model``,
    and ``JudgeSettings``'), and these."""

    model_name_or_path: list[str] = field(
        default_factory=list,
        metadata={"help": "Model folder(s) or Hub id(s) to evaluate; several models also get a comparison."},
    )
    config_name: str = field(
        default="default",
        metadata={"help": "default: complete story beginnings; instruct: write stories from instructions."},
    )
    prompts_file: str | None = field(
        default=None,
        metadata={
            "help": "Prompts: a YAML/JSON list or JSONL of strings or objects, or 'official' (the paper's "
            "Evaluation prompts.yaml from the Hub); default: the bundled set of the config."
        },
    )
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})
    num_completions: int = field(default=10, metadata={"help": "Completions sampled per prompt."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the model (0: greedy)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the model (1: pure sampling)."})
    max_new_tokens: int = field(default=200, metadata={"help": "Longest completion (tokens)."})
    batch_size: int = field(default=64, metadata={"help": "Rows per generate call."})
    seed: int = field(default=42, metadata={"help": "Seed of the sampling."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if any)."})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16."})
    output_dir: str = field(default="outputs/gpt_eval", metadata={"help": "Where results are written."})
    probes: bool = field(default=True, metadata={"help": "Run the factual/reasoning/context probes (no judge)."})
    probes_file: str | None = field(default=None, metadata={"help": "JSONL of probes (default: the bundled set)."})
    diversity_file: str | None = field(
        default=None,
        metadata={"help": "Training stories (.txt/.jsonl/.parquet): run the diversity check on cut stories."},
    )
    diversity_num_stories: int = field(default=100, metadata={"help": "Training stories cut and completed."})
    diversity_max_train_stories: int | None = field(
        default=100_000, metadata={"help": "Training stories searched for the closest one (null: all)."}
    )
    progress: bool = field(default=True, metadata={"help": "Progress bars."})

    def __post_init__(self) -> None:
        JudgeArguments.__post_init__(self)
        JudgeSettings.__post_init__(self)
        if isinstance(self.model_name_or_path, str):
            self.model_name_or_path = [self.model_name_or_path]
        if self.config_name not in CONFIGS:
            raise ValueError(f"config_name must be one of {', '.join(CONFIGS)}, got {self.config_name!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        self.sampling()  # checks num_completions, temperature, top_p, max_new_tokens, batch_size

    def sampling(self, **overrides: Any):
        """The model's sampling settings (``SamplingSettings``: the recipe keys of the same names)."""
        from .sampling import SamplingSettings

        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(SamplingSettings)}
        return SamplingSettings(**{**settings, **overrides})

    def judge_llm(self) -> LLMConfig:
        """The judge's ``LLMConfig``, its request cache defaulting to ``output_dir/.cache``."""
        return self.llm_config().with_cache_dir(os.path.join(self.output_dir, ".cache"))


def parse_evaluate_args(argv: list[str] | None = None) -> EvaluateArguments:
    """``[RECIPE.yaml] [--key value ...]`` of ``tinystories evaluate``."""
    parser = RecipeParser((EvaluateArguments,), "tinystories evaluate", __doc__)
    (args,) = parser.parse(sys.argv[1:] if argv is None else argv)
    return args
