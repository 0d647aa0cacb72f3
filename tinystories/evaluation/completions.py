"""The completions an evaluation grades: each model's folder, loading it, and sampling its completions, reused
(``completions.jsonl``) by a re-run with the same weights, prompts and sampling settings, so that every judge
request of the re-run hits the cache."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..errors import EvaluationError


def model_slug(name_or_path: str) -> str:
    """A folder name for a model: the last path part of a folder, ``owner__name`` for a Hub id."""
    path = name_or_path.rstrip("/\\")
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path))
    return re.sub(r"[^A-Za-z0-9._-]+", "__", path)


def model_folders(names: list[str]) -> list[str]:
    """One distinct folder name per model: ``model_slug``, with ``-2``, ``-3`` ... when two models share a name
    (``runs/a/final`` and ``runs/b/final``), so no model's results overwrite another's."""
    folders: list[str] = []
    for name in names:
        slug, number = model_slug(name), 1
        while (folder := slug if number == 1 else f"{slug}-{number}") in folders:
            number += 1
        folders.append(folder)
    return folders


def load_model_and_tokenizer(args, name_or_path: str):
    import torch
    from transformers import AutoTokenizer

    from ..modeling import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = load_model(name_or_path, dtype=getattr(torch, args.dtype), device=device)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except OSError as e:  # not a model folder, not a Hub id, no network: transformers' message says which
        raise EvaluationError(f"cannot load the model {name_or_path}: {str(e).splitlines()[0]}") from e
    return model, tokenizer


def _weights_fingerprint(name_or_path: str, model) -> Any:
    """What identifies the weights: the files' sizes and times in a folder, the commit of a Hub model."""
    if os.path.isdir(name_or_path):
        return sorted(
            (name, os.path.getsize(path), int(os.path.getmtime(path)))
            for name in os.listdir(name_or_path)
            if name.endswith((".safetensors", ".bin")) and os.path.isfile(path := os.path.join(name_or_path, name))
        )
    return getattr(model.config, "_commit_hash", None)


def _sampling_fingerprint(args, name_or_path: str, model, prompts: list[dict]) -> dict[str, Any]:
    return {
        "model_name_or_path": name_or_path,
        "weights": _weights_fingerprint(name_or_path, model),
        "prompts": [p["prompt"] for p in prompts],
        "num_completions": args.num_completions,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "dtype": args.dtype,
    }


def completions_for(args, name_or_path, model, tokenizer, prompts, folder) -> list[list[str]]:
    """Sampled completions, or those of a previous run with the same settings (``completions.jsonl``)."""
    from .sampling import sample_completions

    path = os.path.join(folder, "completions.jsonl")
    fingerprint = json.loads(json.dumps(_sampling_fingerprint(args, name_or_path, model, prompts)))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        if lines and lines[0].get("settings") == fingerprint:
            rows = lines[1:]
            if len(rows) == len(prompts) * args.num_completions:
                print(f"Reusing the {len(rows)} completions of {path} (same model, prompts and sampling settings)")
                completions = [[""] * args.num_completions for _ in prompts]
                for row in rows:
                    completions[row["prompt_index"]][row["k"]] = row["completion"]
                return completions
    try:
        completions = sample_completions(
            model,
            tokenizer,
            [p["prompt"] for p in prompts],
            args.sampling(),
            progress=args.progress,
            desc="completions",
        )
    except ValueError as e:  # a prompt too long for the model's context: the prompts or max_new_tokens must change
        raise EvaluationError(f"{name_or_path}: {e}") from e
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"settings": fingerprint}, ensure_ascii=False) + "\n")
        for i, texts in enumerate(completions):
            for k, text in enumerate(texts):
                f.write(json.dumps({"prompt_index": i, "k": k, "completion": text}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return completions
