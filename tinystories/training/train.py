"""One training run, in the reading order of transformers' ``run_clm.py``: load stories, get a tokenizer, pack the
stories into blocks, build the model, train, evaluate, save (model, tokenizer, generation config), sample a story."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
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
from transformers.trainer_callback import ProgressCallback

from ..errors import RecipeError
from ..logging_setup import LOG_LEVELS, configure_logging
from ..modeling import build_model, count_parameters, load_model, tinystories_config
from ..tokenization import prune_tokenizer, train_tokenizer
from .arguments import DataArguments, ModelArguments, PeftArguments, TrainConfig, parse_train_args
from .callbacks import TimeBudgetProgressCallback, TimeLimitCallback
from .checkpoints import resolve_checkpoint
from .data import iter_texts, load_raw_datasets, materialize, pack_dataset
from .provenance import RESULTS_FILE, training_sources, validation_source, write_recipe

logger = logging.getLogger("tinystories.train")  # not __name__: it is __main__ under -m


def setup_logging(training_args) -> None:
    """The quiet default of every command (``tinystories.logging_setup``) on stdout, or ``log_level``; our own
    progress messages on the main process only."""
    level = {"passive": None, "critical": "error"}.get(training_args.log_level, training_args.log_level)
    level = level if level in LOG_LEVELS else None
    configure_logging(level, stream=sys.stdout)
    if not training_args.should_log:
        logging.getLogger("tinystories").setLevel(logging.WARNING)
    if training_args.log_level != "passive" or not training_args.should_log:
        log_level = training_args.get_process_log_level()
        datasets.utils.logging.set_verbosity(log_level)
        transformers.utils.logging.set_verbosity(log_level)


#: Stories a tokenizer is made from when the train split is streamed and max_tokenizer_samples is not set.
STREAMED_TOKENIZER_SAMPLES = 100_000


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
        limit = model_args.max_tokenizer_samples
        if limit is None and data_args.streaming:
            limit = STREAMED_TOKENIZER_SAMPLES
        texts = iter_texts(train_texts, data_args.text_column, limit)
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


def check_streamed_sharding(training_args, data_args, validation) -> None:
    """Refuse a multi-process streamed run that would give ranks wrong stories.

    By default accelerate dispatches an iterable train split: process 0 reads the one stream (tokenizes, packs) and
    sends every process its slice of each batch, so ``take``/``skip`` mean what they say. With
    ``accelerator_config: {dispatch_batches: false}`` each process reads its own Parquet shards instead, and
    datasets then applies ``take``/``skip`` per shard: held-out validation stories would be trained on and
    ``max_train_samples`` would count per shard."""
    if training_args.world_size <= 1 or training_args.accelerator_config.dispatch_batches is not False:
        return
    carved = str(getattr(validation, "split", "")) == "train"
    if carved or data_args.max_train_samples is not None:
        raise RecipeError(
            "dispatch_batches: false with streaming shards take/skip per Parquet shard: "
            + (
                "the held-out validation stories would be trained on"
                if carved
                else "max_train_samples would count per shard"
            )
            + "; keep the default dispatch_batches, or give the data a validation split and no max_train_samples"
        )


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


def pushes_from_this_process(training_args) -> bool:
    """``push_to_hub: true`` on the process that checks the token and pushes: the world's process zero only
    (``should_save`` is true on every node's main process with ``save_on_each_node``)."""
    return bool(training_args.push_to_hub) and training_args.process_index == 0


def trainer_arguments(training_args):
    """The arguments the Trainer gets: a copy without ``hub_token`` (the Trainer pickles its arguments into
    ``training_args.bin`` of the output folder and of every checkpoint) and with ``push_to_hub`` off (its own card
    and checkpoint pushes; ``tinystories train`` pushes once, after training, with the original arguments)."""
    trainer_args = copy.copy(training_args)
    trainer_args.push_to_hub = False
    trainer_args.hub_token = None
    return trainer_args


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
    if training_args.precision_note and training_args.should_log:
        logger.warning(training_args.precision_note)
    checkpoint = resolve_checkpoint(training_args)
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
            streaming=data_args.streaming,
        )
        if data_args.streaming:  # eval loss on a fixed, small set; train stays a stream
            raw = {"train": raw["train"], "validation": materialize(raw["validation"])}
            check_streamed_sharding(training_args, data_args, raw["validation"])
    tokenizer = get_tokenizer(model_args, data_args, raw["train"], training_args)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with training_args.main_process_first(desc="packing"):
        packed = pack_dataset(
            raw, tokenizer, data_args.block_size, data_args.text_column, data_args.preprocessing_num_workers
        )
    if data_args.streaming:
        logger.info(
            "Streaming train stories, packed on the fly; %d validation stories -> %d blocks of %d tokens",
            len(raw["validation"]),
            len(packed["validation"]),
            data_args.block_size,
        )
    else:
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
        precision={"bf16": "bf16", "fp16": "fp16"}.get(training_args.mixed_precision, "fp32"),
        num_parameters=n_params,
        num_trainable_parameters=n_trainable,
        num_input_tokens_seen=trainer.state.num_input_tokens_seen,
        global_step=trainer.state.global_step,
        block_size=data_args.block_size,
        tokens_per_step=training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
        * data_args.block_size,
    )
    if data_args.streaming:  # a stream has no length: record what training read of it
        metrics.update(
            train_streamed=True, train_blocks_seen=trainer.state.num_input_tokens_seen // data_args.block_size
        )
    else:
        metrics.update(train_stories=len(raw["train"]), train_blocks=len(packed["train"]))
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
        metrics.update(training_sources(model_args, data_args))
        metrics["validation_source"] = validation_source(data_args, raw["validation"])
        with open(os.path.join(training_args.output_dir, RESULTS_FILE), "w") as f:
            json.dump(metrics, f, indent=2, default=str)
        trainer.save_state()
        write_recipe(cfg, training_args.output_dir)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train from ``[RECIPE.yaml] [--key value ...]`` (``push_to_hub`` is the command's: ``tinystories.train``)."""
    return run(parse_train_args(argv))
