"""``tinystories demo``: the main job end to end at toy scale.

Takes a few thousand stories of ``roneneldan/TinyStories`` from the Hub (or, when the Hub cannot be reached, the
example stories bundled with the package), trains a byte-level BPE tokenizer and a tiny GPT-Neo on them for about
two minutes, then prints the eval loss and a few sampled stories. The result is a plain transformers checkpoint.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import shutil

from .resources import EXAMPLE_STORIES, resource_path
from .story_formats import write_stories

logger = logging.getLogger("tinystories.demo")

HUB_DATASET = "roneneldan/TinyStories"
SAMPLE_PROMPTS = ("Once upon a time", "Tom and his dog", "One day, Lily found a")


def bundled_stories_path() -> str:
    """Path of the example stories shipped with the package (written for this project, TinyStories style)."""
    return resource_path(EXAMPLE_STORIES)


def fetch_stories(dataset: str, num_train: int, num_validation: int) -> tuple[list[str], list[str]]:
    """The first stories of a dataset's train and validation splits, streamed (nothing else is downloaded).

    ``dataset`` is a Hub id (``roneneldan/TinyStories``) or a local folder of the same layout.
    """
    import datasets

    if not os.path.isdir(dataset):
        from huggingface_hub import HfApi
        from huggingface_hub.constants import HF_HUB_OFFLINE

        if HF_HUB_OFFLINE:
            raise ConnectionError("HF_HUB_OFFLINE is set")
        HfApi().dataset_info(dataset, timeout=10)  # fails fast when the Hub is unreachable (datasets would retry)
    splits = {}
    for split, n in (("train", num_train), ("validation", num_validation)):
        stream = datasets.load_dataset(dataset, split=split, streaming=True)
        splits[split] = [row["text"].strip() for row in stream.take(n) if row["text"].strip()]
    return splits["train"], splits["validation"]


def prepare_stories(output_dir: str, dataset: str | None, num_stories: int) -> tuple[str, str | None, str]:
    """(train_file, validation_file or None, description of the source); ``dataset=None`` means bundled."""
    data_dir = os.path.join(output_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    if dataset:
        try:
            train, validation = fetch_stories(dataset, num_stories, max(100, num_stories // 20))
            return (
                write_stories(train, os.path.join(data_dir, "train.txt")),
                write_stories(validation, os.path.join(data_dir, "validation.txt")),
                f"{len(train)} train / {len(validation)} validation stories of {dataset}",
            )
        except Exception as e:  # no network, DNS failure, Hub down, offline mode...
            where = "read" if os.path.isdir(dataset) else "reach the Hugging Face Hub for"
            print(f"Could not {where} {dataset} ({type(e).__name__}: {e}); using the bundled example stories.")
    return bundled_stories_path(), None, "the example stories bundled with tinystories"


def demo_recipe(
    train_file: str, validation_file: str | None, output_dir: str, max_minutes: float, small: bool
) -> dict:
    """The demo's training recipe: a tiny 4-layer GPT-Neo, time-limited, keeping the best checkpoint."""
    return {
        "model_preset": "1M",
        "config_overrides": {
            "num_layers": 4,
            "max_position_embeddings": 256,
            "embed_dropout": 0.1,
            "resid_dropout": 0.1,
        },
        "tokenizer_vocab_size": 1024 if small else 4096,
        "train_file": train_file,
        **({"validation_file": validation_file} if validation_file else {"validation_split_percentage": 10}),
        "block_size": 128,
        "learning_rate": 2e-3,
        "lr_scheduler_type": "constant",
        "warmup_steps": 20,
        "weight_decay": 0.1,
        "adam_beta2": 0.95,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 32,
        "max_steps": 100_000,  # the time limit ends training
        "max_train_minutes": max_minutes,
        "eval_strategy": "steps",
        "eval_steps": 50,
        "save_strategy": "steps",
        "save_steps": 50,
        "save_total_limit": 1,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "logging_steps": 25,
        "report_to": "none",
        "use_cpu": True,
        "dataloader_drop_last": False,
        "output_dir": output_dir,
        "sample_max_new_tokens": 80,
        "seed": 42,
    }


def _remove_checkpoints(output_dir: str) -> None:
    for path in glob.glob(os.path.join(output_dir, "checkpoint-*")):
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="tinystories demo", description=__doc__)
    parser.add_argument("--output_dir", default="tinystories-demo", help="Where the model is saved.")
    parser.add_argument("--max_minutes", type=float, default=2.0, help="Training time on this machine.")
    parser.add_argument("--dataset", default=HUB_DATASET, help="Hub id or local folder to take stories from.")
    parser.add_argument("--num_stories", type=int, default=3000, help="Training stories taken from the dataset.")
    parser.add_argument("--offline", action="store_true", help="Do not try the Hub; use the bundled stories.")
    args = parser.parse_args(argv)

    from .training import run, sample_story, train_config_from_dict

    os.makedirs(args.output_dir, exist_ok=True)
    _remove_checkpoints(args.output_dir)  # the demo's own toy checkpoints from an interrupted earlier run
    train_file, validation_file, source = prepare_stories(
        args.output_dir, None if args.offline else args.dataset, args.num_stories
    )
    print(f"Training on {source}.")
    config = train_config_from_dict(
        demo_recipe(train_file, validation_file, args.output_dir, args.max_minutes, small=validation_file is None)
    )
    metrics = run(config)
    _remove_checkpoints(args.output_dir)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(args.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.output_dir)
    print("\n" + "=" * 80)
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        print(f"\nSample {i + 1}: {sample_story(model, tokenizer, prompt, max_new_tokens=80, seed=i)}")
    print("\n" + "=" * 80)
    print(
        f"eval loss {metrics['eval_loss']:.3f} (perplexity {metrics['perplexity']:.1f}) after "
        f"{metrics['global_step']} steps, {metrics['num_input_tokens_seen']:,} tokens seen; "
        f"{metrics['num_parameters']:,} parameters."
    )
    print(f"Model saved to {args.output_dir}: AutoModelForCausalLM.from_pretrained({args.output_dir!r})")
    return metrics
