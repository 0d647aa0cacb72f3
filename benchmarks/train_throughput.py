"""Training throughput of a TinyStories preset: this package's Trainer path against a bare PyTorch loop.

Both run in this one process on the same model shape, batch and optimizer (AdamW, the recipes' betas and weight
decay), alternating rounds so that machine noise hits both alike. The bare loop (forward, backward, optimizer
step on a fixed batch) is the baseline: the ratio shows what the Trainer, data loading and token counting cost.

    python benchmarks/train_throughput.py                         # 8M, vocab 10K, block 512, batch 8
    python benchmarks/train_throughput.py --preset 1M --steps 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, default_data_collator

from tinystories.arguments import TinyStoriesTrainingArguments
from tinystories.models import build_model, count_parameters, tinystories_config


class StepTimer(TrainerCallback):
    """Wall time of the optimizer steps after the first ``warmup`` ones."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = None
        self.end = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def bare_loop(config, batch: torch.Tensor, steps: int, warmup: int, bf16: bool) -> float:
    model = build_model(config, seed=0).train()
    # fused AdamW, like the Trainer's default optim (adamw_torch_fused)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch.numel() / (time.perf_counter() - start)


def trainer_path(config, blocks: Dataset, batch_size: int, steps: int, warmup: int, bf16: bool) -> float:
    model = build_model(config, seed=0)
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as output_dir:
        args = TinyStoriesTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            max_steps=warmup + steps,
            learning_rate=5e-4,
            lr_scheduler_type="constant",
            weight_decay=0.1,
            adam_beta2=0.95,
            bf16=bf16,
            use_cpu=True,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            disable_tqdm=True,
            logging_steps=10_000,
            dataloader_pin_memory=False,
        )
        Trainer(
            model=model, args=args, train_dataset=blocks, data_collator=default_data_collator, callbacks=[timer]
        ).train()
    return steps * batch_size * len(blocks[0]["input_ids"]) / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="8M")
    parser.add_argument("--vocab_size", type=int, default=10_000)
    parser.add_argument("--block_size", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="Timed optimizer steps per round.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps per round.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds of each path.")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with bf16 units).")
    args = parser.parse_args()

    config = tinystories_config(
        args.preset, vocab_size=args.vocab_size, max_position_embeddings=max(args.block_size, 2048)
    )
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(
        0, args.vocab_size, (args.batch_size * (args.warmup + args.steps), args.block_size), generator=generator
    )
    blocks = Dataset.from_dict({"input_ids": tokens.tolist(), "labels": tokens.tolist()})
    batch = tokens[: args.batch_size]
    print(
        f"preset {args.preset}: {count_parameters(build_model(config)):,} parameters, vocab {args.vocab_size}, "
        f"block {args.block_size}, batch {args.batch_size}, {'bf16 autocast' if args.bf16 else 'fp32'}, "
        f"{torch.get_num_threads()} threads"
    )
    bare, trainer = [], []
    for round_index in range(args.rounds):
        bare.append(bare_loop(config, batch, args.steps, args.warmup, args.bf16))
        trainer.append(trainer_path(config, blocks, args.batch_size, args.steps, args.warmup, args.bf16))
        print(
            f"round {round_index + 1}: bare loop {bare[-1]:8.0f} tokens/s | tinystories Trainer {trainer[-1]:8.0f} tokens/s"
        )
    bare_tps, trainer_tps = statistics.median(bare), statistics.median(trainer)
    print(f"\n{'path':<28}{'tokens/s':>12}{'ratio':>10}")
    print(f"{'bare PyTorch loop (baseline)':<28}{bare_tps:>12.0f}{1.0:>10.2f}")
    print(f"{'tinystories Trainer':<28}{trainer_tps:>12.0f}{trainer_tps / bare_tps:>10.2f}")


if __name__ == "__main__":
    main()
