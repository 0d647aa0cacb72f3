"""Training throughput of a TinyStories preset, in one process and one run, with ratios between the paths.

Paths (forward, backward, AdamW step on the same batch, the recipes' optimizer settings):
  (a) stock GPT-Neo, transformers' eager attention
  (b) this package's path: the same GPT-Neo with tinystories' exact SDPA attention
  (c) a minimal hand-written PyTorch GPT of the same shape with SDPA (global attention everywhere): the
      practical ceiling for this model size on this machine
  (t) optionally (--trainer) path (b) driven by the HF Trainer as `tinystories train` does it
for fp32 and bf16 autocast. Rounds alternate between the paths so machine noise hits them alike; medians are
reported with the ratios b/a and b/c, and FLOP utilisation against a matmul peak measured in the same run.

    python benchmarks/train_throughput.py                      # 8M shape, vocab 10K, block 512, batch 8
    python benchmarks/train_throughput.py --preset 1M --steps 10 --precision fp32
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from datasets import Dataset
from transformers import Trainer, TrainerCallback, default_data_collator

from tinystories.models import build_model, tinystories_config
from tinystories.training import TinyStoriesTrainingArguments


class MinimalGPT(nn.Module):
    """nanoGPT-style GPT with GPT-Neo's shapes: learned positions, pre-LN blocks, gelu(tanh), tied head."""

    def __init__(self, vocab_size: int, hidden: int, layers: int, heads: int, positions: int):
        super().__init__()
        self.heads = heads
        self.wte = nn.Embedding(vocab_size, hidden)
        self.wpe = nn.Embedding(positions, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    ln_1=nn.LayerNorm(hidden),
                    qkv=nn.Linear(hidden, 3 * hidden, bias=False),
                    proj=nn.Linear(hidden, hidden),
                    ln_2=nn.LayerNorm(hidden),
                    fc=nn.Linear(hidden, 4 * hidden),
                    out=nn.Linear(4 * hidden, hidden),
                )
            )
            for _ in range(layers)
        )
        self.ln_f = nn.LayerNorm(hidden)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, seq = ids.shape
        x = self.wte(ids) + self.wpe(torch.arange(seq, device=ids.device))
        for block in self.blocks:
            q, k, v = block["qkv"](block["ln_1"](x)).split(x.size(-1), dim=-1)
            q, k, v = (t.view(batch, seq, self.heads, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)
            x = x + block["proj"](y.transpose(1, 2).reshape(batch, seq, -1))
            x = x + block["out"](F.gelu(block["fc"](block["ln_2"](x)), approximate="tanh"))
        return self.ln_f(x) @ self.wte.weight.t()


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1))


def loop_tokens_per_second(model: nn.Module, hf: bool, batch: torch.Tensor, steps: int, warmup: int, bf16: bool):
    model.train()
    # fused AdamW, like the Trainer's default optim (adamw_torch_fused)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss if hf else lm_loss(model(batch), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch.numel() / (time.perf_counter() - start)


class StepTimer(TrainerCallback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def trainer_tokens_per_second(config, batch: torch.Tensor, steps: int, warmup: int, bf16: bool) -> float:
    blocks = Dataset.from_dict({"input_ids": batch.repeat(warmup + steps, 1).tolist()})
    blocks = blocks.map(lambda b: {"labels": b["input_ids"]}, batched=True)
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as output_dir:
        args = TinyStoriesTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch.size(0),
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
        trainer = Trainer(
            model=build_model(config, attn_implementation="sdpa", seed=0),
            args=args,
            train_dataset=blocks,
            data_collator=default_data_collator,
            callbacks=[timer],
        )
        trainer.train()
    return steps * batch.numel() / (timer.end - timer.start)


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul: the machine's practical peak for ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def training_flops_per_token(config, seq: int) -> float:
    """6 N (matmul parameters incl. the tied head, not the position table) + 12 L T d for attention scores."""
    d, layers, vocab = config.hidden_size, config.num_layers, config.vocab_size
    per_layer = 4 * d * d + 2 * d * 4 * d  # q, k, v, out + MLP
    return 6 * (layers * per_layer + vocab * d) + 12 * layers * seq * d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="8M")
    parser.add_argument("--vocab_size", type=int, default=10_000)
    parser.add_argument("--block_size", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="Timed optimizer steps per round.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps per round.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds of every path.")
    parser.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    parser.add_argument("--trainer", action="store_true", help="Also time path (b) under the HF Trainer.")
    args = parser.parse_args()

    config = tinystories_config(
        args.preset, vocab_size=args.vocab_size, max_position_embeddings=max(args.block_size, 2048)
    )
    tokens = torch.randint(
        0, args.vocab_size, (args.batch_size, args.block_size), generator=torch.Generator().manual_seed(0)
    )
    flops_per_token = training_flops_per_token(config, args.block_size)
    print(
        f"preset {args.preset}: hidden {config.hidden_size} x {config.num_layers} layers, vocab {args.vocab_size}, "
        f"block {args.block_size}, batch {args.batch_size}, {torch.get_num_threads()} threads, "
        f"{flops_per_token / 1e6:.1f} MFLOP per trained token"
    )
    paths = {
        "a": ("stock GPT-Neo eager", lambda: (build_model(config, attn_implementation="eager", seed=0), True)),
        "b": ("tinystories GPT-Neo sdpa", lambda: (build_model(config, attn_implementation="sdpa", seed=0), True)),
        "c": (
            "minimal PyTorch GPT (ceiling)",
            lambda: (
                MinimalGPT(args.vocab_size, config.hidden_size, config.num_layers, config.num_heads, 2048),
                False,
            ),
        ),
    }
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    results: dict[tuple[str, str], float] = {}
    for precision in precisions:
        bf16 = precision == "bf16"
        peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32)
        samples: dict[str, list[float]] = {key: [] for key in [*paths, *(["t"] if args.trainer else [])]}
        for round_index in range(args.rounds):
            order = list(samples)
            order = order[round_index % len(order) :] + order[: round_index % len(order)]  # rotate: no fixed slot
            for key in order:
                if key == "t":
                    samples["t"].append(trainer_tokens_per_second(config, tokens, args.steps, args.warmup, bf16))
                else:
                    model, hf = paths[key][1]()
                    samples[key].append(loop_tokens_per_second(model, hf, tokens, args.steps, args.warmup, bf16))
            print(
                f"  {precision} round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in samples.items())
            )
        print(f"\n{precision}: matmul peak {peak / 1e9:.0f} GFLOP/s")
        print(f"{'path':<34}{'tokens/s':>10}{'GFLOP/s':>10}{'util':>8}")
        names = {**{k: v[0] for k, v in paths.items()}, "t": "tinystories sdpa under HF Trainer"}
        for key, values in samples.items():
            tps = statistics.median(values)
            results[(precision, key)] = tps
            print(
                f"({key}) {names[key]:<30}{tps:>10.0f}{tps * flops_per_token / 1e9:>10.1f}{tps * flops_per_token / peak:>8.1%}"
            )
        b = results[(precision, "b")]
        print(
            f"ratios: b/a = {b / results[(precision, 'a')]:.2f}x (ours vs stock), b/c = {b / results[(precision, 'c')]:.2f}x (ours vs ceiling)"
        )
        if args.trainer:
            print(f"        t/b = {results[(precision, 't')] / b:.2f}x (Trainer overhead)")
        print()
    if len(precisions) == 2:
        print(
            f"bf16 ours vs fp32 stock: {results[('bf16', 'b')] / results[('fp32', 'a')]:.2f}x; "
            f"bf16 ours vs bf16 stock: {results[('bf16', 'b')] / results[('bf16', 'a')]:.2f}x"
        )


if __name__ == "__main__":
    main()
