"""What a model push reads from the output folder of ``tinystories train``: the checks that it is one, and its
JSON files (``all_results.json`` of training, ``config.json``)."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import PushError
from ..recipes import RESULTS_FILE  # written by tinystories train: eval loss, tokens, sample story, sources

#: Weight files of a saved model or of LoRA adapters: a folder needs one of them.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON file at ``path``, or None when there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_results(model_dir: str) -> dict[str, Any]:
    """``model_dir/all_results.json`` (``{}`` without one: a folder not written by ``tinystories train``)."""
    return read_json(os.path.join(model_dir, RESULTS_FILE)) or {}


def check_model_folder(model_dir: str) -> None:
    """A ``PushError`` unless ``model_dir`` holds a config (model or adapters) and weights."""
    has = lambda name: os.path.isfile(os.path.join(model_dir, name))  # noqa: E731
    if not os.path.isdir(model_dir) or not (has("config.json") or has("adapter_config.json")):
        raise PushError(
            f"{model_dir} is not a model folder (no config.json): pass the output_dir of tinystories train"
        )
    if not any(has(w) for w in WEIGHT_FILES):
        raise PushError(f"{model_dir} has no weights ({', '.join(WEIGHT_FILES)}): was training saved?")
