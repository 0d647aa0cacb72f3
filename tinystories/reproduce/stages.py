"""The work of each stage, through the pipelines' public run functions and recipe dataclasses; what they exchange
is files (the dataset folder, ``tokenizer/``, each model's ``all_results.json``, each evaluation's ``results.json``).
"""

from __future__ import annotations

import gc
import glob
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import yaml

from ..errors import RecipeError, TinyStoriesError
from ..llm import LLM_SETTINGS
from ..recipes import RECIPE_FILE, RESULTS_FILE, RecipeParser
from .family import ModelSpec, data_keys, launcher
from .manifest import Manifests, Stage
from .recipe import ReproduceRecipe

#: What every stage prints its notices with (one prefix, flushed at once: tests and logs read it line by line).
PREFIX = "[reproduce]"


def notice(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(f"{PREFIX} {message}", file=sys.stdout)
    sys.stdout.flush()


# --- data -----------------------------------------------------------------------------------------------------
def run_data(recipe: ReproduceRecipe) -> dict[str, Any]:
    """Generate the dataset (``tinystories generate`` + its card) or check the recipe's dataset is there."""
    if recipe.data.generate is None:
        for name in ("train_file", "validation_file"):
            path = getattr(recipe.data, name)
            if path and "://" not in path and not os.path.isfile(path):
                raise RecipeError(f"data.{name}: no such file: {path}")
        return {"source": "existing", **data_keys(recipe)}
    from ..hub import write_dataset_card
    from ..synth import GenerateArguments
    from ..synth import run as generate

    (args,) = RecipeParser((GenerateArguments,)).parse_dict(
        {**recipe.data.generate, "output_dir": recipe.path("data")}
    )
    summary = generate(args)
    write_dataset_card(args.output_dir, summary)
    return {"source": "generated", "dataset_name": recipe.path("data"), "counts": summary["counts"]}


def data_outputs(recipe: ReproduceRecipe) -> list[str]:
    if recipe.data.generate is not None:
        return [recipe.path("data", "README.md")]
    return [p for p in (recipe.data.train_file, recipe.data.validation_file) if p and "://" not in p]


def data_inputs(recipe: ReproduceRecipe) -> list[str]:
    """Local files whose change makes the data stage (and so every stage) run again."""
    data = recipe.data
    return [p for p in (data.dataset_name, data.train_file, data.validation_file) if p and "://" not in p]


# --- tokenizer ------------------------------------------------------------------------------------------------
def training_texts(recipe: ReproduceRecipe, seed: int) -> list[str]:
    from ..training.data import load_raw_datasets

    keys = data_keys(recipe)
    raw = load_raw_datasets(
        dataset_name=keys.get("dataset_name"),
        dataset_config_name=keys.get("dataset_config_name"),
        train_file=keys.get("train_file"),
        validation_file=keys.get("validation_file"),
        text_column=recipe.data.text_column,
        validation_split_percentage=recipe.data.validation_split_percentage,
        max_train_samples=recipe.data.max_train_samples,
        max_eval_samples=recipe.data.max_eval_samples,
        seed=seed,
    )
    train = raw["train"]
    if recipe.tokenizer.max_texts is not None and len(train) > recipe.tokenizer.max_texts:
        train = train.select(range(recipe.tokenizer.max_texts))
    return train[recipe.data.text_column]


def run_tokenizer(recipe: ReproduceRecipe) -> dict[str, Any]:
    """Train (or prune) the tokenizer once; every model loads it from ``tokenizer/``."""
    from ..tokenization import prune_tokenizer, train_tokenizer

    section = recipe.tokenizer
    texts = training_texts(recipe, int(recipe.train_keys.get("seed", 42)))
    if section.name_or_path:
        from transformers import AutoTokenizer

        tokenizer = prune_tokenizer(AutoTokenizer.from_pretrained(section.name_or_path), texts, section.vocab_size)
    else:
        tokenizer = train_tokenizer(texts, section.vocab_size)
    folder = recipe.path("tokenizer")
    shutil.rmtree(folder, ignore_errors=True)
    tokenizer.save_pretrained(folder)
    how = f"pruned from {section.name_or_path}" if section.name_or_path else "byte-level BPE trained"
    return {"vocab_size": len(tokenizer), "how": how, "texts": len(texts)}


# --- models ---------------------------------------------------------------------------------------------------
def _checkpoint_notice(name: str):
    from transformers import TrainerCallback

    class CheckpointNotice(TrainerCallback):
        """A line when a checkpoint is completely written (``on_save`` runs after the Trainer wrote it)."""

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                notice(f"checkpoint saved: {name} step {state.global_step}")

    return CheckpointNotice()


def _train_command(recipe: ReproduceRecipe, recipe_file: str) -> list[str]:
    if launcher(recipe) == "accelerate":
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            recipe.train.accelerate_config,
            "-m",
            "tinystories.train",
            recipe_file,
        ]
    return [sys.executable, "-m", "tinystories.train", recipe_file]


def run_model(recipe: ReproduceRecipe, stage: Stage, spec: ModelSpec, values: dict, manifests: Manifests) -> dict:
    """Train one model: resume from its last complete checkpoint when the previous start had the same key, else
    start over in an empty folder (a folder of other settings is removed)."""
    from ..training.checkpoints import last_complete_checkpoint

    out = values["output_dir"]
    if manifests.running_key(stage.name) != stage.key and os.path.isdir(out):
        shutil.rmtree(out)  # another shape or other settings: none of its files may be reused
    manifests.started(stage)
    values = dict(values)
    checkpoint = last_complete_checkpoint(out)
    if checkpoint:
        values["resume_from_checkpoint"] = checkpoint
        notice(f"resuming {spec.name} from {checkpoint}")
    if launcher(recipe) == "inprocess":
        from ..training import run, train_config_from_dict

        run(train_config_from_dict(values), callbacks=[_checkpoint_notice(spec.name)])
        gc.collect()
    else:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        recipe_file = os.path.join(os.path.dirname(out), f"{spec.name}.train.yaml")
        with open(recipe_file, "w", encoding="utf-8") as f:
            yaml.safe_dump(values, f, sort_keys=False)
        proc = subprocess.run(_train_command(recipe, recipe_file))
        if proc.returncode != 0:
            raise TinyStoriesError(f"training {spec.name} failed (exit {proc.returncode}); a re-run resumes it")
    if not recipe.train.keep_checkpoints:
        for path in glob.glob(os.path.join(out, "checkpoint-*")):
            shutil.rmtree(path, ignore_errors=True)
    with open(os.path.join(out, RESULTS_FILE), encoding="utf-8") as f:
        results = json.load(f)
    keys = ("num_parameters", "eval_loss", "perplexity", "num_input_tokens_seen", "global_step", "train_runtime")
    return {
        **{k: results.get(k) for k in keys},
        "resumed_from": os.path.basename(checkpoint) if checkpoint else None,
        "validation_source": results.get("validation_source"),
    }


def model_outputs(out: str) -> list[str]:
    return [os.path.join(out, RESULTS_FILE), os.path.join(out, RECIPE_FILE), os.path.join(out, "config.json")]


# --- evaluate -------------------------------------------------------------------------------------------------
def diversity_file(recipe: ReproduceRecipe) -> str:
    """The training stories the diversity check searches (a local file)."""
    data = recipe.data
    if data.generate is not None:
        path = recipe.path("data", "default", "train-*.parquet")  # the generated shards
    else:
        path = data.train_file or ""
    if not path or not glob.glob(path):
        raise RecipeError(
            "evaluate.diversity needs the training stories as a local file (data.train_file or generate)"
        )
    return path


def evaluate_values(recipe: ReproduceRecipe, model_dir: str, config: str) -> dict[str, Any]:
    values = {
        **recipe.evaluate_keys,
        "model_name_or_path": [model_dir],
        "config_name": config,
        "output_dir": recipe.path("eval", config),
    }
    if recipe.evaluate.diversity:
        values["diversity_file"] = diversity_file(recipe)
    return values


#: Evaluate keys that change how the judge is reached, not what it answers: not in the evaluation stage's key (a
#: judge moved to another port or spread over replicas does not re-grade).
CONNECTION_KEYS = tuple(k for k in LLM_SETTINGS if k != "prices") + ("progress",)


def result_settings(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in CONNECTION_KEYS}


def evaluate_args(values: dict[str, Any]):
    from ..evaluation import EvaluateArguments

    try:
        (args,) = RecipeParser((EvaluateArguments,)).parse_dict(values)
    except RecipeError as e:
        raise RecipeError(f"evaluate: {e}") from None
    return args


def results_path(values: dict[str, Any]) -> str:
    from ..evaluation import model_folders

    (folder,) = model_folders(values["model_name_or_path"])
    return os.path.join(values["output_dir"], folder, "results.json")


def run_evaluation(values: dict[str, Any]) -> dict[str, Any]:
    """GPT-Eval (and the probes, the diversity check) of one model with one judge setting."""
    from ..evaluation import run

    (results,) = run(evaluate_args(values))
    gc.collect()
    scores = results["scores"]
    return {
        "scores": {k: scores[k] for k in ("grammar", "creativity", "consistency", "plot") if k in scores},
        "cost_usd": results["usage"].get("cost_usd", 0.0),
        "requests_sent": results["usage"].get("requests_sent", 0),
    }
