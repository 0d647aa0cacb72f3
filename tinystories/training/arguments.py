"""The keys of a training recipe: four argument dataclasses, named after transformers' ``run_clm.py`` and
``TrainingArguments`` (``tinystories train --help`` lists them with their defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from transformers import TrainingArguments

from ..errors import RecipeError
from ..modeling import PRESETS
from ..recipes import RecipeParser


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
    max_tokenizer_samples: int | None = field(
        default=None,
        metadata={
            "help": "With tokenizer_vocab_size: train (or prune) the tokenizer on the first N training stories. "
            "Default: all of them, or the first 100,000 of a streamed train split (streaming: true)."
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
        if self.max_tokenizer_samples is not None and self.max_tokenizer_samples < 1:
            raise ValueError(f"max_tokenizer_samples must be at least 1, got {self.max_tokenizer_samples}")
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
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Stream the train split of dataset_name (a Hub id or a folder of Parquet shards) and pack it on "
            "the fly, never converting it to Arrow first; needs max_steps. Validation is read into memory: the "
            "dataset's validation split, or the first max_eval_samples (default 1,000) train stories held out."
        },
    )

    def __post_init__(self) -> None:
        if not self.dataset_name and not self.train_file:
            raise ValueError("Set dataset_name (Hub id or folder) or train_file (.txt, .jsonl, .json or .parquet).")
        if self.streaming and not self.dataset_name:
            raise ValueError(
                "streaming reads dataset_name (a Hub id or a folder of Parquet shards), not train_file; set "
                "dataset_name, or drop streaming"
            )
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
    bf16_on_slow_cpu: bool = field(
        default=False,
        metadata={
            "help": "Keep bf16 when training on a CPU without native bf16 (no AVX512-BF16/AMX), where it is 10-20x "
            "slower than fp32. By default such a run trains in fp32 and says so once."
        },
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "DDP's find_unused_parameters. GPT-Neo (and LoRA on it) uses every trainable parameter each "
            "step, so the default is false (no extra autograd pass); null lets the Trainer decide."
        },
    )

    def __post_init__(self) -> None:
        on_cpu = self.use_cpu or not _has_accelerator()
        #: the one warning about precision (bf16 asked for on a CPU without native bf16), logged by the run
        self.precision_note = None
        if on_cpu and not self.bf16_on_slow_cpu:
            from .precision import cpu_precision_note

            self.precision_note = cpu_precision_note(self.bf16)
            if self.precision_note:
                self.bf16 = self.bf16_full_eval = False
        # bf16 autocast also pays on CPUs with bf16 units; transformers only allows it there with use_cpu.
        if self.bf16 and not self.use_cpu and not _has_accelerator():
            self.use_cpu = True
        super().__post_init__()
        if self.precision_note and self.mixed_precision == "bf16":  # from an accelerate config's environment
            self.mixed_precision = "no"


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

    def __post_init__(self) -> None:
        if self.data.streaming and self.training.max_steps <= 0:
            raise RecipeError(
                "streaming: true needs max_steps (> 0): a streamed train split has no length, so the number of "
                "steps (and the learning-rate schedule) cannot be derived from num_train_epochs"
            )


def parse_train_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse ``tinystories train`` arguments (``[RECIPE.yaml] [--key value ...]``) into a ``TrainConfig``."""
    return TrainConfig(*RecipeParser(ARGUMENT_CLASSES, "tinystories train", __doc__).parse(argv))


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a recipe-like mapping (what a YAML recipe holds)."""
    return TrainConfig(*RecipeParser(ARGUMENT_CLASSES, "tinystories train").parse_dict(values))
