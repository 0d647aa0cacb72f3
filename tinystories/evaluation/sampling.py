"""Batched sampling of many completions from a causal LM (the evaluation's model side).

Prompts are repeated ``num_completions`` times, sorted by length (so a batch wastes little padding), left-padded
and sampled in batches of ``batch_size`` rows with one ``generate`` call each. Batch ``b`` is sampled under the
seed ``seed + b``, so a run is reproducible for the same prompts, batch size and hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class SamplingSettings:
    """How completions are sampled (the paper: temperature 1, pure sampling)."""

    num_completions: int = 10
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 200
    batch_size: int = 64
    seed: int = 42

    def __post_init__(self) -> None:
        if self.num_completions < 1:
            raise ValueError(f"num_completions must be at least 1, got {self.num_completions}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be at least 1")


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Left padding (decoder-only batches) and a pad token (EOS when the tokenizer has none)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@torch.no_grad()
def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    settings: SamplingSettings,
    progress: bool = True,
    desc: str = "sampling",
) -> list[list[str]]:
    """``completions[i][k]``: the k-th completion of ``prompts[i]`` (new text only, special tokens removed)."""
    from tqdm.auto import tqdm

    tokenizer = prepare_tokenizer(tokenizer)
    context = getattr(model.config, "max_position_embeddings", None)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for i, ids in enumerate(encoded):
        if context and len(ids) + settings.max_new_tokens > context:
            raise ValueError(
                f"prompt {i} has {len(ids)} tokens: with max_new_tokens={settings.max_new_tokens} it exceeds the "
                f"model's context of {context} tokens"
            )
    rows = sorted(
        ((i, k) for i in range(len(prompts)) for k in range(settings.num_completions)),
        key=lambda row: len(encoded[row[0]]),
    )
    completions: list[list[str]] = [[""] * settings.num_completions for _ in prompts]
    greedy = settings.temperature == 0
    generate_kwargs = dict(
        max_new_tokens=settings.max_new_tokens,
        do_sample=not greedy,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if not greedy:
        generate_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    device = next(model.parameters()).device
    rng_state = torch.random.get_rng_state()
    bar = tqdm(total=len(rows), desc=desc, unit="completion", disable=not progress)
    try:
        for batch_index, start in enumerate(range(0, len(rows), settings.batch_size)):
            batch = rows[start : start + settings.batch_size]
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i, _ in batch]}, return_tensors="pt").to(device)
            torch.manual_seed(settings.seed + batch_index)
            output = model.generate(**inputs, **generate_kwargs)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for (i, k), text in zip(batch, texts):
                completions[i][k] = text
            bar.update(len(batch))
    finally:
        bar.close()
        torch.random.set_rng_state(rng_state)
    return completions
