"""The ``recipe.yaml`` of a model as it is published: local filesystem paths reduced to their names, Hub ids and
URLs kept (docs/hub.md: what a push uploads)."""

from __future__ import annotations

import os
import re
from typing import Any

from ..recipes import RECIPE_FILE

#: Recipe keys that are always local paths (unless an ``hf://`` or other URL).
LOCAL_PATH_KEYS = ("output_dir", "logging_dir", "cache_dir", "train_file", "validation_file", "deepspeed")
#: Recipe keys that hold a Hub id or a local folder.
HUB_OR_PATH_KEYS = ("model_name_or_path", "tokenizer_name_or_path", "dataset_name")


def looks_like_hub_id(value: str) -> bool:
    """``owner/name`` or ``name`` that is not a path on this machine (``hf://`` URLs count as Hub references)."""
    if "://" in value:
        return True
    if os.path.isabs(value) or value.startswith((".", "~")) or "\\" in value or os.path.exists(value):
        return False
    return re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value) is not None


def sanitize_recipe(recipe: dict[str, Any], results: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``recipe`` fit to publish: local paths (``output_dir``, data files, a local model, tokenizer or
    dataset folder, any absolute path) reduced to their basename; Hub ids and URLs kept.

    ``results`` (``all_results.json``) says which ``model_name_or_path``/``dataset_name`` were Hub ids when
    training ran (``base_model``, ``datasets``); without it a value that is no local path and reads like
    ``owner/name`` is taken for a Hub id."""
    results = results or {}

    def hub_reference(key: str, value: str) -> bool:
        if "://" in value:
            return True
        if key in LOCAL_PATH_KEYS:
            return False
        if key == "model_name_or_path" and "base_model" in results:
            return value == results["base_model"]
        if key == "dataset_name" and "datasets" in results:
            return value in (results["datasets"] or [])
        if key in HUB_OR_PATH_KEYS:
            return looks_like_hub_id(value)
        return not (os.path.isabs(value) or value.startswith("~"))  # other keys: only absolute paths are paths

    clean = {}
    for key, value in recipe.items():
        if isinstance(value, str) and value and not hub_reference(key, value):
            value = os.path.basename(value.rstrip("/\\")) or value
        clean[key] = value
    return clean


def load_recipe(model_dir: str) -> dict[str, Any]:
    """``model_dir/recipe.yaml`` as written by training (``{}`` without one)."""
    path = os.path.join(model_dir, RECIPE_FILE)
    if not os.path.isfile(path):
        return {}
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def published_recipe(model_dir: str, results: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """``(recipe, bytes)``: ``sanitize_recipe`` of ``model_dir/recipe.yaml``, and the file to upload as
    ``recipe.yaml`` when that changed anything (its comment header kept, one line added), else None: the folder's
    file goes as is. The folder's file is never touched."""
    recipe = load_recipe(model_dir)
    clean = sanitize_recipe(recipe, results)
    if clean == recipe:
        return recipe, None
    import yaml

    with open(os.path.join(model_dir, RECIPE_FILE), encoding="utf-8") as f:
        header = "".join(line for line in f if line.startswith("#"))
    header += "# Local paths are reduced to their names (tinystories push): point them at your own files.\n"
    return clean, (header + yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)).encode("utf-8")
