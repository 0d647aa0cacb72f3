"""Batched sampling throughput with the KV cache: stock GPT-Neo eager against this package's SDPA attention.

One process, one run, alternating rounds; every path samples the same number of tokens from the same left-padded
prompts (temperature 1, no early stop), and the ratio ours/stock is printed.

    python benchmarks/sampling_throughput.py                      # 8M shape, vocab 10K, 32 prompts x 256 tokens
    python benchmarks/sampling_throughput.py --preset 1M --batch_size 8 --new_tokens 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tinystories.models import build_model, tinystories_config


def prompts(batch_size: int, vocab_size: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded random prompts of lengths between max_len/4 and max_len, as batched generation pads them."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab_size, (batch_size, max_len), generator=generator)
    lengths = torch.randint(max_len // 4, max_len + 1, (batch_size,), generator=generator)
    mask = (torch.arange(max_len)[None, :] >= (max_len - lengths)[:, None]).long()
    return ids * mask, mask


@torch.no_grad()
def sampled_tokens_per_second(model, ids, mask, new_tokens: int, bf16: bool) -> float:
    model.eval()
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            top_k=0,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=0,
        )
    elapsed = time.perf_counter() - start
    return (out.shape[1] - ids.shape[1]) * ids.shape[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="8M")
    parser.add_argument("--vocab_size", type=int, default=10_000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--prompt_len", type=int, default=64)
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with bf16 units).")
    args = parser.parse_args()

    config = tinystories_config(args.preset, vocab_size=args.vocab_size)
    ids, mask = prompts(args.batch_size, args.vocab_size, args.prompt_len)
    models = {
        "stock GPT-Neo eager": build_model(config, attn_implementation="eager", seed=0),
        "tinystories sdpa": build_model(config, attn_implementation="sdpa", seed=0),
    }
    print(
        f"preset {args.preset}: vocab {args.vocab_size}, {args.batch_size} prompts of <= {args.prompt_len} tokens "
        f"(left-padded) + {args.new_tokens} sampled, KV cache, {'bf16 autocast' if args.bf16 else 'fp32'}, "
        f"{torch.get_num_threads()} threads"
    )
    for model in models.values():  # untimed warm-up: first-call costs (allocations, kernel selection)
        sampled_tokens_per_second(model, ids, mask, 16, args.bf16)
    samples: dict[str, list[float]] = {name: [] for name in models}
    for round_index in range(args.rounds):
        order = list(models) if round_index % 2 == 0 else list(reversed(models))  # no fixed slot
        for name in order:
            samples[name].append(sampled_tokens_per_second(models[name], ids, mask, args.new_tokens, args.bf16))
        print(f"  round {round_index + 1}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in samples.items()))
    stock, ours = (statistics.median(v) for v in samples.values())
    print(f"\n{'path':<26}{'tokens/s':>10}{'ratio':>8}")
    print(f"{'stock GPT-Neo eager':<26}{stock:>10.0f}{1.0:>8.2f}")
    print(f"{'tinystories sdpa':<26}{ours:>10.0f}{ours / stock:>8.2f}")


if __name__ == "__main__":
    main()
