"""Training configuration: argument dataclasses and recipe parsing.

A recipe is one flat YAML file whose keys are the fields of the dataclasses below (the names follow transformers'
``run_clm.py`` and ``TrainingArguments``). Command-line ``--key value`` pairs override the recipe. Every key is
checked against the dataclasses: an unknown key is an error that names it, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .models import PRESETS


@dataclass
class ModelArguments:
    """Which model to train and with which tokenizer."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A checkpoint folder or Hub id to start from (fine-tuning). Exclusive with model_preset."},
    )
    model_preset: str | None = field(
        default=None,
        metadata={"help": f"Train from scratch with a TinyStories preset shape: one of {', '.join(PRESETS)}."},
    )
    config_overrides: dict | str | None = field(
        default=None,
        metadata={
            "help": "GPTNeoConfig fields to change in the preset, as a YAML/JSON mapping, e.g. "
            "'{hidden_size: 64, num_layers: 2}'. vocab_size follows the tokenizer unless set here."
        },
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer folder or Hub id (default: the model's). With tokenizer_vocab_size, it is pruned to "
            "its tokenizer_vocab_size most frequent tokens on the training text (the paper's recipe)."
        },
    )
    tokenizer_vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "Train a byte-level BPE tokenizer of this size on the training text (or prune "
            "tokenizer_name_or_path to this size). Saved with the model."
        },
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={
            "help": "GPT-Neo attention: 'sdpa' (this package's exact scaled-dot-product attention, fastest) or "
            "'eager' (transformers' own). Both keep the local window and save the same checkpoint."
        },
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where to cache models and datasets downloaded from the Hub."}
    )
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})

    def __post_init__(self) -> None:
        if self.model_name_or_path and self.model_preset:
            raise ValueError("Set either model_name_or_path (start from a checkpoint) or model_preset, not both.")
        if not self.model_name_or_path and not self.model_preset:
            raise ValueError(
                "Set model_name_or_path (a checkpoint) or model_preset (one of: " + ", ".join(PRESETS) + ")."
            )
        if self.model_preset and self.model_preset not in PRESETS:
            raise ValueError(f"Unknown model_preset {self.model_preset!r}; choose one of: {', '.join(PRESETS)}")
        if isinstance(self.config_overrides, str):
            self.config_overrides = yaml.safe_load(self.config_overrides) or {}
        if self.config_overrides is not None and not isinstance(self.config_overrides, dict):
            raise ValueError(f"config_overrides must be a mapping, got {self.config_overrides!r}")
        if self.config_overrides and self.model_name_or_path:
            raise ValueError("config_overrides applies to model_preset only (a checkpoint keeps its shape).")
        if self.tokenizer_vocab_size is not None and self.model_name_or_path and not self.tokenizer_name_or_path:
            raise ValueError(
                "tokenizer_vocab_size trains a new tokenizer, which a checkpoint's embeddings would not match; "
                "drop it to fine-tune with the checkpoint's own tokenizer"
            )
        if self.tokenizer_vocab_size is not None and self.tokenizer_vocab_size < 257:
            raise ValueError(
                f"tokenizer_vocab_size must be at least 257 (256 bytes + EOS), got {self.tokenizer_vocab_size}"
            )


@dataclass
class DataArguments:
    """What to train and evaluate on, and how to pack it."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id (e.g. roneneldan/TinyStories) or a local folder (save_to_disk output, or "
            "Parquet/JSON files with a README declaring configs)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset config (e.g. 'instruct')."})
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training file: .txt (stories separated by <|endoftext|>, the TinyStories V2 format), .jsonl, "
            ".json or .parquet; local or hf://datasets/<repo>/<file>."
        },
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation file, same formats."})
    text_column: str = field(default="text", metadata={"help": "Column holding the story text."})
    block_size: int = field(default=512, metadata={"help": "Tokens per training sequence after packing."})
    validation_split_percentage: float = field(
        default=5.0,
        metadata={"help": "Percent of train carved out as validation when no validation split or file is given."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training stories."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation stories."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})

    def __post_init__(self) -> None:
        if not self.dataset_name and not self.train_file:
            raise ValueError("Set dataset_name (Hub id or folder) or train_file (.txt, .jsonl, .json or .parquet).")
        if self.block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {self.block_size}")
        if not 0 < self.validation_split_percentage < 100:
            raise ValueError(
                f"validation_split_percentage must be in (0, 100), got {self.validation_split_percentage}"
            )


@dataclass
class PeftArguments:
    """LoRA fine-tuning with peft."""

    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"],
        metadata={
            "help": "GPT-Neo modules to adapt: any of q_proj k_proj v_proj out_proj c_fc c_proj, or all-linear."
        },
    )
    merge_lora: bool = field(
        default=False, metadata={"help": "Save the final model with the adapters merged into the weights."}
    )


@dataclass
class TinyStoriesTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with this package's defaults and a few extra keys."""

    include_num_input_tokens_seen: str | bool = field(
        default="all", metadata={"help": "Count the tokens seen across all processes ('all', 'non_padding', 'no')."}
    )
    sample_prompt: str = field(
        default="Once upon a time", metadata={"help": "Prompt of the sample story logged after training."}
    )
    sample_max_new_tokens: int = field(default=100, metadata={"help": "Length of the sample story in tokens."})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "Stop training (and save) after this many minutes of training."}
    )

    def __post_init__(self) -> None:
        # bf16 autocast also pays on CPUs with bf16 units; transformers only allows it there with use_cpu.
        if self.bf16 and not self.use_cpu and not _has_accelerator():
            self.use_cpu = True
        super().__post_init__()


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


ARGUMENT_CLASSES = (ModelArguments, DataArguments, PeftArguments, TinyStoriesTrainingArguments)


@dataclass
class TrainConfig:
    """The four argument groups of one training run."""

    model: ModelArguments
    data: DataArguments
    peft: PeftArguments
    training: TinyStoriesTrainingArguments


class RecipeError(ValueError):
    """A recipe or command line that cannot run: an unknown key, a bad value, or a setting that conflicts with the
    run (e.g. a fresh run over another run's checkpoints)."""


def _field_names(classes: tuple[type, ...]) -> set[str]:
    return {f.name for cls in classes for f in dataclasses.fields(cls) if f.init}


def _unknown_key_error(keys: list[str], known: set[str], where: str) -> RecipeError:
    parts = []
    for key in keys:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        parts.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return RecipeError(f"Unknown key{'s' if len(keys) > 1 else ''} in {where}: {'; '.join(parts)}")


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The flat key -> value mapping of a YAML recipe."""
    try:
        with open(path, encoding="utf-8") as f:
            recipe = yaml.safe_load(f)
    except FileNotFoundError:
        raise RecipeError(f"Recipe not found: {path}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"Recipe {path} is not valid YAML: {e}") from None
    if recipe is None:
        return {}
    if not isinstance(recipe, dict):
        raise RecipeError(f"Recipe {path} must be a mapping of keys to values, got {type(recipe).__name__}")
    return recipe


def _split_overrides(tokens: list[str]) -> dict[str, list[str]]:
    """``["--a", "1", "--b", "--c=x"]`` -> ``{"a": ["1"], "b": [], "c": ["x"]}``."""
    overrides: dict[str, list[str]] = {}
    key = None
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            key = name.replace("-", "_")
            overrides[key] = [value] if eq else []
        elif key is None:
            raise RecipeError(f"Unexpected argument {token!r}: overrides are written --key value")
        else:
            overrides[key].append(token)
    return overrides


class RecipeParser:
    """Parses ``[RECIPE.yaml] [--key value ...]`` into the argument dataclasses.

    Values are typed by the dataclass fields through ``HfArgumentParser`` (so ``--max_steps 20`` is an int and
    ``--bf16`` alone means true), the merged mapping is then validated with ``parse_dict(allow_extra_keys=False)``.
    """

    def __init__(self, classes: tuple[type, ...] = ARGUMENT_CLASSES, prog: str = "tinystories train"):
        self.classes = classes
        self.parser = HfArgumentParser(classes, prog=prog, description=__doc__)
        self.known = _field_names(classes)
        self._actions = {a.dest: a for a in self.parser._actions}

    def _typed(self, key: str, raw: list[str]) -> Any:
        """A command-line value converted to the field's type by argparse."""
        action = self._actions[key]
        if not raw and action.nargs == "?":
            return action.const
        if not raw:
            raise RecipeError(f"--{key} needs a value")
        if action.nargs == "+":
            return [action.type(v) if action.type else v for v in raw]
        value = " ".join(raw)
        if value in ("null", "None", "~") and action.default is None:
            return None  # `--dataset_name null` unsets a recipe's value
        if action.type is None or action.type is str:
            # free-form fields (mappings, str-or-enum unions): read the text as YAML like the recipe's values
            loaded = yaml.safe_load(value)
            return loaded if isinstance(loaded, (dict, list)) else value
        try:
            value = action.type(value)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"Bad value for --{key}: {' '.join(raw)!r} ({e})") from None
        if action.choices is not None and value not in action.choices:
            raise RecipeError(f"Bad value for --{key}: {value!r}; choose one of {', '.join(map(str, action.choices))}")
        return value

    def _coerce(self, key: str, value: Any) -> Any:
        """A recipe value of a numeric field written as a string (YAML reads 5e-4 as text)."""
        action = self._actions.get(key)
        if isinstance(value, str) and action is not None and action.type in (int, float):
            try:
                return action.type(value)
            except ValueError:
                raise RecipeError(f"{key} must be a {action.type.__name__}, got {value!r}") from None
        return value

    def merge(self, recipe: dict[str, Any], argv: list[str]) -> dict[str, Any]:
        """The recipe's mapping with the command-line overrides applied, every key checked."""
        unknown = [k for k in recipe if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "recipe")
        overrides = _split_overrides(argv)
        unknown = [k for k in overrides if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "command-line overrides")
        merged = {k: self._coerce(k, v) for k, v in recipe.items()}
        for key, raw in overrides.items():
            value = self._typed(key, raw)
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}  # a mapping override changes only the keys it names
            merged[key] = value
        return merged

    def parse(self, argv: list[str] | None = None) -> tuple:
        """``[RECIPE.yaml] [--key value ...]`` -> one instance of each argument class."""
        argv = list(sys.argv[1:] if argv is None else argv)
        if any(a in ("-h", "--help") for a in argv):
            self.parser.print_help()
            raise SystemExit(0)
        recipe: dict[str, Any] = {}
        if argv and not argv[0].startswith("--"):
            recipe = load_recipe(argv.pop(0))
        merged = self.merge(recipe, argv)
        return self.parse_dict(merged)

    def parse_dict(self, values: dict[str, Any]) -> tuple:
        """One instance of each argument class from a complete key -> value mapping."""
        unknown = [k for k in values if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "arguments")
        try:
            return self.parser.parse_dict(values, allow_extra_keys=False)
        except (TypeError, ValueError) as e:
            raise RecipeError(str(e)) from None


def parse_train_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse ``tinystories train`` arguments (``[RECIPE.yaml] [--key value ...]``) into a ``TrainConfig``."""
    return TrainConfig(*RecipeParser().parse(argv))


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a recipe-like mapping (what a YAML recipe holds)."""
    return TrainConfig(*RecipeParser().parse_dict(values))
