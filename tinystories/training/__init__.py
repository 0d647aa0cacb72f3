"""Pre-training and fine-tuning (LoRA too) of GPT-Neo models with the Hugging Face Trainer, on one CPU, one GPU or
many (``accelerate launch -m tinystories.train``): the recipe's arguments, loading and packing the stories, the
callbacks, checkpoints and the provenance written beside the model."""

from .arguments import (
    ARGUMENT_CLASSES,
    DataArguments,
    ModelArguments,
    PeftArguments,
    TinyStoriesTrainingArguments,
    TrainConfig,
    parse_train_args,
    train_config_from_dict,
)
from .provenance import RESULTS_FILE
from .train import main, pushes_from_this_process, run, sample_story, trainer_arguments

__all__ = [
    "ARGUMENT_CLASSES",
    "RESULTS_FILE",
    "DataArguments",
    "ModelArguments",
    "PeftArguments",
    "TinyStoriesTrainingArguments",
    "TrainConfig",
    "main",
    "parse_train_args",
    "pushes_from_this_process",
    "run",
    "sample_story",
    "train_config_from_dict",
    "trainer_arguments",
]
