"""The ``tinystories reproduce`` recipe: a YAML of sections, each a dataclass parsed through ``tinystories.recipes``.

``data``, ``tokenizer``, ``models`` and ``report`` are this command's own sections; ``train`` and ``evaluate`` hold
any key of ``tinystories train`` / ``tinystories evaluate`` (passed through to those pipelines' recipe dataclasses)
plus a few keys of this command (``max_tokens``, ``accelerate_config`` ...; ``configs``, ``diversity``), and
``data.generate`` any key of ``tinystories generate``. Unknown keys are named in a ``RecipeError``. docs/reproduce.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import RecipeError
from ..recipes import RecipeParser, load_recipe

SECTIONS = ("data", "tokenizer", "models", "train", "evaluate", "report")
TOP_KEYS = ("name", "output_dir", *SECTIONS)
#: Stages in their order; ``--until`` stops after one of them.
STAGES = ("data", "tokenizer", "models", "evaluate", "report")


@dataclass
class DataSection:
    """Where the stories come from: ``generate`` (a ``tinystories generate`` recipe) or an existing dataset."""

    generate: dict | str | None = field(
        default=None,
        metadata={"help": "Keys of a `tinystories generate` recipe (output_dir is set): generate the data first."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset id or local dataset folder."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Config of dataset_name."})
    train_file: str | None = field(default=None, metadata={"help": "Training stories (.txt V2 format, .jsonl ...)."})
    validation_file: str | None = field(default=None, metadata={"help": "The validation set shared by all models."})
    text_column: str = field(default="text", metadata={"help": "Column holding the story text."})
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of train used as validation when the data has none."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training stories."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation stories."})

    def __post_init__(self) -> None:
        if isinstance(self.generate, str):
            self.generate = yaml.safe_load(self.generate)
        sources = [k for k in ("generate", "dataset_name", "train_file") if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError(
                "set exactly one of generate (a tinystories generate recipe), dataset_name (Hub id or "
                f"folder) or train_file (V2 .txt and other files); got {', '.join(sources) or 'none'}"
            )


@dataclass
class TokenizerSection:
    """The one tokenizer every model shares, made once."""

    vocab_size: int = field(default=10_000, metadata={"help": "Tokens of the shared tokenizer (the paper: 10K)."})
    name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Prune this tokenizer to vocab_size (EleutherAI/gpt-neo-125M: the paper's recipe); "
            "null: train a byte-level BPE of vocab_size on the training stories."
        },
    )
    max_texts: int | None = field(
        default=100_000, metadata={"help": "Training stories the tokenizer is trained (or counted) on; null: all."}
    )

    def __post_init__(self) -> None:
        if self.vocab_size < 257:
            raise ValueError(f"vocab_size must be at least 257, got {self.vocab_size}")


@dataclass
class ModelsSection:
    """The family: released presets and/or a width x depth grid."""

    presets: list[str] = field(default_factory=list, metadata={"help": "Preset names (1M, 3M, 8M, 28M, 33M ...)."})
    hidden_sizes: list[int] = field(default_factory=list, metadata={"help": "Widths of the grid (rows)."})
    layers: list[int] = field(default_factory=list, metadata={"help": "Depths of the grid (columns)."})
    shapes: list | str | None = field(
        default=None,
        metadata={
            "help": "Single grid points as [hidden_size, layers] pairs (besides the full grid), e.g. [[64, 2]]."
        },
    )
    num_heads: str = field(
        default="16",
        metadata={
            "help": "Heads of the grid's models: a number (16, the released models'), or 'hidden/N' for "
            "hidden_size // N heads (head size N). Presets keep their 16."
        },
    )
    config_overrides: dict | str | None = field(
        default=None, metadata={"help": "GPTNeoConfig fields for every model, e.g. {max_position_embeddings: 512}."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.config_overrides, str):
            self.config_overrides = yaml.safe_load(self.config_overrides)
        self.config_overrides = dict(self.config_overrides or {})
        self.num_heads = str(self.num_heads)  # a number, or hidden/N
        if bool(self.hidden_sizes) != bool(self.layers):
            raise ValueError("a grid needs both hidden_sizes and layers")
        if isinstance(self.shapes, str):
            self.shapes = yaml.safe_load(self.shapes)
        self.shapes = list(self.shapes or [])
        if any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in self.shapes):
            raise ValueError(f"shapes must be [hidden_size, layers] pairs, got {self.shapes}")
        self.shapes = [[int(h), int(n)] for h, n in self.shapes]
        if not self.presets and not self.hidden_sizes and not self.shapes:
            raise ValueError("list presets, shapes and/or a grid (hidden_sizes and layers)")
        for hidden in [*self.hidden_sizes, *(h for h, _ in self.shapes)]:
            heads = self.heads(hidden)
            if heads < 1 or hidden % heads:
                raise ValueError(f"hidden size {hidden} does not split into {heads} heads")

    def grid_points(self) -> list[tuple[int, int]]:
        """(hidden_size, layers) of every grid model: the full grid, then the single shapes not in it."""
        points = [(h, n) for h in self.hidden_sizes for n in self.layers]
        return points + [(h, n) for h, n in self.shapes if (h, n) not in points]

    def heads(self, hidden_size: int) -> int:
        if self.num_heads.isdigit():
            return int(self.num_heads)
        text = str(self.num_heads).replace(" ", "")
        if not text.startswith("hidden/") or not text[7:].isdigit():
            raise ValueError(f"num_heads must be a number or 'hidden/N', got {self.num_heads!r}")
        return max(1, hidden_size // int(text[7:]))


@dataclass
class TrainExtras:
    """The ``train`` section's keys of this command (its other keys are ``tinystories train``'s)."""

    max_tokens: int | None = field(
        default=None, metadata={"help": "Token budget of every model: max_steps = ceil(max_tokens / tokens a step)."}
    )
    accelerate_config: str | None = field(
        default=None, metadata={"help": "Train each model with `accelerate launch --config_file` this file."}
    )
    launcher: str = field(
        default="auto",
        metadata={"help": "auto (accelerate with accelerate_config, else in-process), inprocess, subprocess."},
    )
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-* folders of trained models."})

    def __post_init__(self) -> None:
        if self.launcher not in ("auto", "inprocess", "subprocess", "accelerate"):
            raise ValueError(f"launcher must be auto, inprocess, subprocess or accelerate: {self.launcher!r}")
        if self.launcher == "accelerate" and not self.accelerate_config:
            raise ValueError("launcher accelerate needs accelerate_config")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")


@dataclass
class EvaluateExtras:
    """The ``evaluate`` section's keys of this command (its other keys are ``tinystories evaluate``'s)."""

    configs: list[str] = field(
        default_factory=lambda: ["default"],
        metadata={"help": "GPT-Eval settings: [default], [instruct] or both; [] skips GPT-Eval (loss only)."},
    )
    diversity: bool = field(default=False, metadata={"help": "Run the diversity check against the training data."})


@dataclass
class ReportSection:
    """The report, and the assumptions of the estimate printed before a run."""

    gpu_flops: float = field(
        default=5.0e13,
        metadata={"help": "Sustained training FLOP/s of one GPU for the GPU-hours estimate (6 N D FLOPs)."},
    )
    judge_reply_tokens: int = field(
        default=250, metadata={"help": "Assumed length of the judge's assessment reply, for the cost estimate."}
    )


def _unknown(keys: list[str], known, where: str) -> RecipeError:
    parts = []
    for key in keys:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        parts.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return RecipeError(f"Unknown key{'s' if len(keys) > 1 else ''} in {where}: {'; '.join(parts)}")


def _parse_section(cls: type, values: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise _unknown(unknown, known, f"section {where}")
    parser = RecipeParser((cls,), f"reproduce {where}")
    (parsed,) = _with_where(lambda: parser.parse_dict(parser.merge(values, [])), where)
    return parsed


def _with_where(call, where: str):
    try:
        return call()
    except RecipeError as e:
        raise RecipeError(f"{where}: {e}") from None


#: Keys of the pass-through sections that this command sets itself, and where to write them instead.
MANAGED_TRAIN_KEYS = {
    "model_name_or_path": "models",
    "model_preset": "models.presets",
    "config_overrides": "models.config_overrides",
    "tokenizer_name_or_path": "tokenizer.name_or_path",
    "tokenizer_vocab_size": "tokenizer.vocab_size",
    "dataset_name": "data",
    "dataset_config_name": "data",
    "train_file": "data",
    "validation_file": "data",
    "text_column": "data",
    "validation_split_percentage": "data",
    "max_train_samples": "data",
    "max_eval_samples": "data",
    "output_dir": "the top-level output_dir",
    "resume_from_checkpoint": "nowhere: a re-run resumes by itself",
    "push_to_hub": "--push ORG",
}
MANAGED_EVALUATE_KEYS = {
    "model_name_or_path": "models",
    "output_dir": "the top-level output_dir",
    "config_name": "evaluate.configs",
    "diversity_file": "evaluate.diversity",
}


def _pass_through(section: dict, extras_cls: type, classes: tuple, managed: dict, where: str):
    """(extras dataclass, the pipeline's keys) of a pass-through section, every key checked."""
    extra_names = {f.name for f in dataclasses.fields(extras_cls)}
    extras = _parse_section(extras_cls, {k: v for k, v in section.items() if k in extra_names}, where)
    rest = {k: v for k, v in section.items() if k not in extra_names}
    for key in rest:
        if key in managed:
            raise RecipeError(f"{where}: {key!r} is set by tinystories reproduce (use {managed[key]})")
    parser = RecipeParser(classes)
    known = parser.known | extra_names
    unknown = [k for k in rest if k not in parser.known]
    if unknown:
        raise _unknown(unknown, known, f"section {where}")
    return extras, parser.merge(rest, [])


@dataclass
class ReproduceRecipe:
    """A parsed recipe: its sections, the pass-through mappings, and ``source`` (the merged YAML mapping)."""

    name: str
    output_dir: str
    data: DataSection
    tokenizer: TokenizerSection
    models: ModelsSection
    train: TrainExtras
    train_keys: dict[str, Any]
    evaluate: EvaluateExtras
    evaluate_keys: dict[str, Any]
    report: ReportSection
    source: dict[str, Any]

    def path(self, *parts: str) -> str:
        return os.path.join(self.output_dir, *parts)


def parse_recipe(values: dict[str, Any], path: str | None = None) -> ReproduceRecipe:
    """A ``ReproduceRecipe`` from the YAML mapping (``path``: the recipe's file, naming the default run)."""
    from ..evaluation import CONFIGS, EvaluateArguments
    from ..training import ARGUMENT_CLASSES

    unknown = [k for k in values if k not in TOP_KEYS]
    if unknown:
        raise _unknown(unknown, TOP_KEYS, "reproduce recipe")
    for key in SECTIONS:
        if values.get(key) is not None and not isinstance(values[key], dict):
            raise RecipeError(f"section {key} must be a mapping, got {type(values[key]).__name__}")
    name = str(values.get("name") or (os.path.splitext(os.path.basename(path))[0] if path else "reproduce"))
    data = _parse_section(DataSection, dict(values.get("data") or {}), "data")
    if data.generate is not None:
        from ..synth import GenerateArguments

        if not isinstance(data.generate, dict):
            raise RecipeError("data.generate must be a mapping of tinystories generate keys")
        if "output_dir" in data.generate:
            raise RecipeError("data.generate: 'output_dir' is set by tinystories reproduce (output_dir/data)")
        _with_where(
            lambda: RecipeParser((GenerateArguments,)).parse_dict({**data.generate, "output_dir": "data"}),
            "data.generate",
        )
    train, train_keys = _pass_through(
        dict(values.get("train") or {}), TrainExtras, ARGUMENT_CLASSES, MANAGED_TRAIN_KEYS, "train"
    )
    evaluate, evaluate_keys = _pass_through(
        dict(values.get("evaluate") or {}), EvaluateExtras, (EvaluateArguments,), MANAGED_EVALUATE_KEYS, "evaluate"
    )
    bad = [c for c in evaluate.configs if c not in CONFIGS]
    if bad or len(set(evaluate.configs)) != len(evaluate.configs):
        raise RecipeError(
            f"evaluate.configs must list distinct configs of {', '.join(CONFIGS)}, got {evaluate.configs}"
        )
    return ReproduceRecipe(
        name=name,
        output_dir=str(values.get("output_dir") or os.path.join("outputs", "reproduce", name)),
        data=data,
        tokenizer=_parse_section(TokenizerSection, dict(values.get("tokenizer") or {}), "tokenizer"),
        models=_parse_section(ModelsSection, dict(values.get("models") or {}), "models"),
        train=train,
        train_keys=train_keys,
        evaluate=evaluate,
        evaluate_keys=evaluate_keys,
        report=_parse_section(ReportSection, dict(values.get("report") or {}), "report"),
        source=values,
    )


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"train.max_tokens": 1000, "output_dir": "x"}`` applied to a recipe mapping (dotted keys: a section's)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for key, value in overrides.items():
        section, dot, name = key.partition(".")
        if not dot:
            merged[key] = value
            continue
        if section not in SECTIONS:
            raise _unknown([section], SECTIONS, "command-line overrides (a section name)")
        target = merged.setdefault(section, {}) or {}
        merged[section] = target
        parts = name.split(".")
        for part in parts[:-1]:  # data.generate.num_stories
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return merged


def load_reproduce_recipe(path: str, overrides: dict[str, Any] | None = None) -> ReproduceRecipe:
    return parse_recipe(apply_overrides(load_recipe(path), overrides or {}), path)
