"""Pre-train or fine-tune a TinyStories GPT-Neo model with the Hugging Face Trainer.

    tinystories train recipes/smoke/pretrain.yaml --max_steps 20
    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m tinystories.train RECIPE.yaml

Reading order follows transformers' ``run_clm.py``: parse arguments, load stories, get a tokenizer, pack the
stories into blocks, build the model, train, evaluate, save (model, tokenizer, generation config), sample a story.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import re
import sys
from typing import Any

import datasets
import torch
import transformers
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    default_data_collator,
    set_seed,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .arguments import DataArguments, ModelArguments, PeftArguments, RecipeError, TrainConfig, parse_train_args
from .callbacks import TimeBudgetProgressCallback, TimeLimitCallback
from .data import load_raw_datasets, pack_dataset
from .hub import RECIPE_FILE, RESULTS_FILE  # hub imports nothing of the package at import time
from .models import build_model, count_parameters, load_model, tinystories_config
from .tokenization import prune_tokenizer, train_tokenizer

logger = logging.getLogger("tinystories.train")  # not __name__: it is __main__ under -m

#: Keys written to ``recipe.yaml`` even at their default value: the hyperparameters a reader looks for.
RECIPE_KEYS_ALWAYS = (
    "output_dir",
    "attn_implementation",
    "block_size",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "bf16",
    "fp16",
    "seed",
)
#: Keys never written: what belongs to one invocation only (secrets are excluded by name: ``*_token``).
RECIPE_KEYS_NEVER = ("resume_from_checkpoint",)


def setup_logging(training_args) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    # our own progress messages on the main process; the libraries keep their (warning) level unless log_level says
    logging.getLogger("tinystories").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    if training_args.log_level != "passive" or not training_args.should_log:
        log_level = training_args.get_process_log_level()
        datasets.utils.logging.set_verbosity(log_level)
        transformers.utils.logging.set_verbosity(log_level)


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` folder of ``output_dir`` that was completely written.

    The Trainer writes ``trainer_state.json`` last, so a run killed while saving leaves a folder without it:
    such a folder is skipped (with a warning) instead of failing the resume, and the previous checkpoint is used.
    """
    if not output_dir or not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append(int(match.group(1)))
    for step in sorted(steps, reverse=True):
        path = os.path.join(output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
        if os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            return path
        logger.warning("Skipping %s: it was not completely written (no %s)", path, TRAINER_STATE_NAME)
    return None


def resolve_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint`` as a path, or ``true`` for the latest one.

    Refuses to start a fresh run over the checkpoints of another, so that no training is silently lost.
    """
    resume = training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    last = last_complete_checkpoint(output_dir)
    if resume is None:
        if last is not None:
            raise RecipeError(
                f"{output_dir} already holds checkpoints (latest: {last}). Resume with "
                "--resume_from_checkpoint true, or choose another output_dir."
            )
        return None
    if str(resume).lower() in ("true", "yes", "1", "last", "latest"):
        if last is None:
            raise RecipeError(f"--resume_from_checkpoint true: no checkpoint-* folder in {output_dir}")
        return last
    if str(resume).lower() in ("false", "no", "0"):
        return None
    if not os.path.isdir(resume):
        raise RecipeError(f"--resume_from_checkpoint: {resume} is not a folder")
    return resume


def _text_batches(dataset, column: str, batch_size: int = 1000):
    for start in range(0, len(dataset), batch_size):
        yield from dataset[start : start + batch_size][column]


def get_tokenizer(
    model_args: ModelArguments, data_args: DataArguments, train_texts, training_args
) -> PreTrainedTokenizerBase:
    """Load, prune (paper recipe) or train the tokenizer; a trained one is made once, on the main process.

    A tokenizer made here is saved to ``output_dir`` first, so the other processes (and a resumed run) load the
    very same one.
    """
    made_here = model_args.tokenizer_vocab_size is not None
    source = model_args.tokenizer_name_or_path or model_args.model_name_or_path
    if not made_here and source is None:
        raise RecipeError("A preset model needs a tokenizer: set tokenizer_name_or_path or tokenizer_vocab_size")
    if not made_here:
        return AutoTokenizer.from_pretrained(
            source, cache_dir=model_args.cache_dir, revision=model_args.model_revision
        )

    saved = os.path.join(training_args.output_dir, "tokenizer.json")
    with training_args.main_process_first(desc="tokenizer"):
        if os.path.isfile(saved) and (training_args.resume_from_checkpoint or not training_args.should_save):
            # a resumed run, or a non-main process after the main one made it
            return AutoTokenizer.from_pretrained(training_args.output_dir)
        texts = _text_batches(train_texts, data_args.text_column)
        if model_args.tokenizer_name_or_path:
            base = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path, cache_dir=model_args.cache_dir)
            logger.info("Pruning %s to its %d most frequent tokens", source, model_args.tokenizer_vocab_size)
            tokenizer = prune_tokenizer(base, texts, model_args.tokenizer_vocab_size)
        else:
            logger.info("Training a byte-level BPE tokenizer of %d tokens", model_args.tokenizer_vocab_size)
            tokenizer = train_tokenizer(texts, model_args.tokenizer_vocab_size)
        if training_args.should_save:
            tokenizer.save_pretrained(training_args.output_dir)
    return tokenizer


def get_model(model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, block_size: int):
    """A fresh preset model sized to the tokenizer, or a checkpoint (embeddings resized if the tokenizer grew)."""
    if model_args.model_preset:
        overrides: dict[str, Any] = {
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            **(model_args.config_overrides or {}),
        }
        config = tinystories_config(model_args.model_preset, **overrides)
        if config.vocab_size < len(tokenizer):
            raise RecipeError(
                f"vocab_size {config.vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens"
            )
        model = build_model(config, attn_implementation=model_args.attn_implementation)
    else:
        model = load_model(
            model_args.model_name_or_path,
            attn_implementation=model_args.attn_implementation,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
        )
        model.train()
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
    if block_size > model.config.max_position_embeddings:
        raise RecipeError(
            f"block_size {block_size} exceeds the model's max_position_embeddings {model.config.max_position_embeddings}"
        )
    return model


def apply_peft(model, peft_args: PeftArguments):
    """Wrap ``model`` with LoRA adapters on ``lora_target_modules`` (any GPT-Neo linear layers)."""
    from peft import LoraConfig, get_peft_model

    targets = peft_args.lora_target_modules
    config = LoraConfig(
        r=peft_args.lora_r,
        lora_alpha=peft_args.lora_alpha,
        lora_dropout=peft_args.lora_dropout,
        target_modules=targets[0] if targets == ["all-linear"] else targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def default_generation_config(tokenizer: PreTrainedTokenizerBase, max_new_tokens: int = 256) -> GenerationConfig:
    """Sampling settings saved with every model: temperature 1, stop at EOS (stories end with it)."""
    return GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        max_new_tokens=max_new_tokens,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )


@torch.no_grad()
def sample_story(model, tokenizer, prompt: str, max_new_tokens: int = 100, seed: int = 0) -> str:
    """One story sampled from ``prompt`` (temperature 1), decoded without special tokens."""
    was_training = model.training
    model.eval()
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=True, top_k=0)
    finally:
        torch.random.set_rng_state(generator_state)
        model.train(was_training)
    return tokenizer.decode(output[0], skip_special_tokens=True)


def save_final_model(trainer: Trainer, model, tokenizer, peft_args: PeftArguments, output_dir: str) -> None:
    """Save the model (adapters merged if asked), tokenizer and generation config for plain ``from_pretrained``."""
    if peft_args.use_peft and peft_args.merge_lora:
        merged = trainer.accelerator.unwrap_model(model).merge_and_unload()
        if trainer.args.should_save:
            merged.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
    if trainer.args.should_save:
        tokenizer.save_pretrained(output_dir)
        default_generation_config(tokenizer).save_pretrained(output_dir)


def _yaml_value(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value  # enums (IntervalStrategy, SchedulerType, ...)
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _yaml_value(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def resolved_recipe(cfg: TrainConfig) -> dict[str, Any]:
    """The run's recipe as one flat mapping: every key whose value is not the default, plus the main
    hyperparameters (``RECIPE_KEYS_ALWAYS``); ``tinystories train recipe.yaml`` runs it again. Token fields
    (``hub_token``, ...) are never included."""
    recipe: dict[str, Any] = {}
    training_defaults = type(cfg.training)(output_dir=None).to_dict()  # defaults as __post_init__ normalises them
    for group in (cfg.model, cfg.data, cfg.peft, cfg.training):
        is_training = group is cfg.training
        values = group.to_dict() if is_training else dataclasses.asdict(group)
        for f in dataclasses.fields(group):
            if not f.init or f.name.endswith("_token") or f.name in RECIPE_KEYS_NEVER:
                continue
            if is_training:
                default = training_defaults.get(f.name)
            elif f.default is not dataclasses.MISSING:
                default = f.default
            else:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            value = values.get(f.name)
            if f.name in RECIPE_KEYS_ALWAYS or value != default:
                recipe[f.name] = _yaml_value(value)
    return recipe


def write_recipe(cfg: TrainConfig, output_dir: str) -> None:
    """``output_dir/recipe.yaml``: the resolved recipe (the model card's recipe table reads it)."""
    import yaml

    with open(os.path.join(output_dir, RECIPE_FILE), "w", encoding="utf-8") as f:
        f.write("# The resolved recipe of this run (written by tinystories train): tinystories train recipe.yaml\n")
        yaml.safe_dump(resolved_recipe(cfg), f, sort_keys=False, allow_unicode=True)


def pushes_from_this_process(training_args) -> bool:
    """``push_to_hub: true`` on the process that checks the token and pushes: the world's process zero only
    (``should_save`` is true on every node's main process with ``save_on_each_node``)."""
    return bool(training_args.push_to_hub) and training_args.process_index == 0


def trainer_arguments(training_args):
    """The arguments the Trainer gets: a copy without ``hub_token`` (the Trainer pickles its arguments into
    ``training_args.bin`` of the output folder and of every checkpoint) and with ``push_to_hub`` off (its own card
    and checkpoint pushes; ``push_trained_model`` pushes once, after training, with the original arguments)."""
    trainer_args = copy.copy(training_args)
    trainer_args.push_to_hub = False
    trainer_args.hub_token = None
    return trainer_args


def push_trained_model(training_args) -> dict[str, Any]:
    """``push_to_hub: true``: the saved model with this package's card, through ``tinystories.hub.push_model``
    (the Trainer's own push and card are turned off). The repo is ``hub_model_id``, else the name of
    ``output_dir`` in the token owner's namespace; the token is ``hub_token``, else HF_TOKEN or the login's."""
    from .hub import push_model

    output_dir = training_args.output_dir
    repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    try:
        result = push_model(
            output_dir,
            repo_id,
            private=bool(training_args.hub_private_repo),
            revision=training_args.hub_revision,
            commit_message="End of training (tinystories train)",
            token=training_args.hub_token,
        )
    except Exception:
        logger.error("The push failed; the model is saved: tinystories push model %s %s", output_dir, repo_id)
        raise
    logger.info("Pushed %d files to %s", len(result["files"]), result["url"])
    return result


def run(cfg: TrainConfig, callbacks: list[TrainerCallback] | None = None) -> dict[str, Any]:
    """Train, evaluate and save; returns the metrics also written to ``output_dir/all_results.json``.

    ``callbacks`` are extra ``TrainerCallback`` objects (early stopping, custom logging...).
    """
    model_args, data_args, peft_args, training_args = cfg.model, cfg.data, cfg.peft, cfg.training
    setup_logging(training_args)
    logger.info(
        "Process rank %d of %d, device %s, bf16 %s",
        training_args.process_index,
        training_args.world_size,
        training_args.device,
        training_args.bf16,
    )
    checkpoint = resolve_checkpoint(training_args)
    if pushes_from_this_process(training_args):
        from .hub import PushError, require_token

        try:  # before training, not after it
            require_token(training_args.hub_token)
        except PushError as e:
            raise RecipeError(f"push_to_hub: {e}") from None
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="loading stories"):
        raw = load_raw_datasets(
            dataset_name=data_args.dataset_name,
            dataset_config_name=data_args.dataset_config_name,
            train_file=data_args.train_file,
            validation_file=data_args.validation_file,
            text_column=data_args.text_column,
            validation_split_percentage=data_args.validation_split_percentage,
            max_train_samples=data_args.max_train_samples,
            max_eval_samples=data_args.max_eval_samples,
            seed=training_args.seed,
            cache_dir=model_args.cache_dir,
        )
    tokenizer = get_tokenizer(model_args, data_args, raw["train"], training_args)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with training_args.main_process_first(desc="packing"):
        packed = pack_dataset(
            raw, tokenizer, data_args.block_size, data_args.text_column, data_args.preprocessing_num_workers
        )
    logger.info(
        "%d train / %d validation stories -> %d / %d blocks of %d tokens",
        len(raw["train"]),
        len(raw["validation"]),
        len(packed["train"]),
        len(packed["validation"]),
        data_args.block_size,
    )

    model = get_model(model_args, tokenizer, data_args.block_size)
    if peft_args.use_peft:
        model = apply_peft(model, peft_args)
    n_params, n_trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    logger.info("Model: %s parameters, %s trainable", f"{n_params:,}", f"{n_trainable:,}")

    callbacks = list(callbacks or [])
    if training_args.max_train_minutes:
        callbacks.append(TimeLimitCallback(training_args.max_train_minutes))
    trainer = Trainer(
        model=model,
        args=trainer_arguments(training_args),  # no token, no push of its own
        train_dataset=packed["train"],
        eval_dataset=packed["validation"],
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=callbacks,
    )
    if training_args.max_train_minutes and not training_args.disable_tqdm:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(TimeBudgetProgressCallback(training_args.max_train_minutes))
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    save_final_model(trainer, model, tokenizer, peft_args, training_args.output_dir)

    metrics: dict[str, Any] = dict(train_result.metrics)
    # throughput of this session (a resumed run counts only the tokens it trained on itself)
    session_tokens = trainer.state.num_input_tokens_seen - getattr(trainer, "_initial_num_input_tokens_seen", 0)
    if metrics.get("train_runtime"):
        metrics["train_tokens_per_second"] = session_tokens / metrics["train_runtime"]
    metrics.update(
        world_size=training_args.world_size,
        num_parameters=n_params,
        num_trainable_parameters=n_trainable,
        num_input_tokens_seen=trainer.state.num_input_tokens_seen,
        global_step=trainer.state.global_step,
        block_size=data_args.block_size,
        tokens_per_step=training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
        * data_args.block_size,
        train_stories=len(raw["train"]),
        train_blocks=len(packed["train"]),
    )
    eval_metrics = trainer.evaluate()
    eval_metrics["perplexity"] = math.exp(min(eval_metrics["eval_loss"], 700.0))
    metrics.update(eval_metrics)
    trainer.log_metrics("all", metrics)

    if training_args.should_save:
        story = sample_story(
            trainer.accelerator.unwrap_model(model),
            tokenizer,
            training_args.sample_prompt,
            training_args.sample_max_new_tokens,
            seed=training_args.seed,
        )
        logger.info("Sample story:\n%s", story)
        metrics["sample_story"] = story
        # the Hub ids this run started from and where validation came from, for the model card's YAML
        from .hub import training_sources, validation_source

        metrics.update(training_sources(model_args, data_args))
        metrics["validation_source"] = validation_source(data_args, raw["validation"])
        with open(os.path.join(training_args.output_dir, RESULTS_FILE), "w") as f:
            json.dump(metrics, f, indent=2, default=str)
        trainer.save_state()
        write_recipe(cfg, training_args.output_dir)
    if pushes_from_this_process(training_args):
        push_trained_model(training_args)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(parse_train_args(argv))


if __name__ == "__main__":  # accelerate launch -m tinystories.train RECIPE.yaml [--key value ...]
    from .cli import run_with_clean_errors

    run_with_clean_errors("train", main, sys.argv[1:])
