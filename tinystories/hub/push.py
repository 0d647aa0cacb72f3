"""``tinystories push {model,dataset,metric} PATH REPO_ID``: publish to the Hugging Face Hub with a rendered card.

    tinystories push model runs/33m me/tinystories-33m --eval_results outputs/gpt_eval/runs--33m/results.json
    tinystories push dataset data/tinystories-gpt-4o-mini me/tinystories-gpt-4o-mini --private
    tinystories push metric - me/gpt_eval --space_requirement "tinystories @ git+https://github.com/OWNER/tinystories"

Cards are Jinja templates of ``hub_cards/`` (installed as ``tinystories.hub_cards``) rendered with huggingface_hub's
``ModelCard`` / ``DatasetCard`` / ``SpaceCard``, so their YAML is what the Hub validates: the model card's
``model-index`` holds the GPT-Eval scores, the dataset card keeps the ``configs`` that ``load_dataset`` reads.
A push is ``HfApi.create_repo(exist_ok=True)`` (with ``--private``, a check that an existing repository is private:
its visibility is never changed), ``create_branch`` for ``--revision``, and one ``create_commit`` of the folder's
files, skipping checkpoints, optimizer states, request caches, ``.env`` files, SQLite files, logs and
``training_args.bin`` (a pickle that can hold ``hub_token``). What the push adds or changes is uploaded from memory
and never written into PATH: the rendered ``README.md``, ``recipe.yaml`` with local paths reduced to their names,
the ``--eval_results`` files. The token comes from ``HF_TOKEN`` or ``hf auth login`` and is never written to any
file. ``--dry_run`` renders the card and lists the files without any network access.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from typing import Any

from ..errors import PushError
from ..recipes import RECIPE_FILE
from ..story_formats import hub_dataset_of_file

logger = logging.getLogger("tinystories.hub")

KINDS = ("model", "dataset", "metric")
#: The Hub repository type of each kind: a metric is published as a Gradio Space.
REPO_TYPES = {"model": "model", "dataset": "dataset", "metric": "space"}
HUB = "https://huggingface.co"

#: Written by ``tinystories train``: its metrics (eval loss, tokens, sample story, the Hub ids and validation source);
#: the resolved recipe (what the card's recipe table shows) is ``recipes.RECIPE_FILE``.
RESULTS_FILE = "all_results.json"
#: GPT-Eval results picked up from the model folder (``results.json`` of ``tinystories evaluate``, copied there);
#: one ``--eval_results`` file is uploaded under this name, several as ``gpt_eval_results_<config>_<judge>.json``.
GPT_EVAL_FILE = "gpt_eval_results.json"
#: ``PATH`` of ``push metric`` meaning the GPT-Eval module bundled with the package.
BUNDLED_METRIC = ("-", "default", "gpt_eval")
#: What ``--space_requirement`` looks like: tinystories is not on PyPI, so a bare ``tinystories`` line would not build.
SPACE_REQUIREMENT_EXAMPLE = "tinystories @ git+https://github.com/OWNER/tinystories"

#: Tags of every model card; the architecture's tag (``gpt-neo``, or the ``model_type``) goes after the first.
MODEL_TAGS = ["tinystories", "text-generation"]
GPT_EVAL_DATASET_TYPE = "tinystories-gpt-eval"
GPT_EVAL_DATASET_NAMES = {
    "default": "TinyStories GPT-Eval story beginnings",
    "instruct": "TinyStories GPT-Eval instructions",
}
GPT_EVAL_AXES = ("grammar", "creativity", "consistency", "plot")
#: The ``source`` of the GPT-Eval ``model-index`` entries: the protocol is the paper's, run by ``tinystories evaluate``.
GPT_EVAL_SOURCE_NAME = "tinystories evaluate (GPT-Eval)"
GPT_EVAL_SOURCE_URL = "https://arxiv.org/abs/2305.07759"

# fnmatch patterns on paths relative to the folder ('*' also matches '/'; a trailing '/' means the whole folder)
COMMON_IGNORE_PATTERNS = [
    ".cache/",
    "*/.cache/*",
    "*.sqlite",
    "*.sqlite3",
    "*.sqlite-*",
    "*.sqlite3-*",
    "*.db",
    ".env",
    "*.env",
    "*.log",
    "__pycache__/",
    "*/__pycache__/*",
    "*.pyc",
    ".ipynb_checkpoints/",
    "*/.ipynb_checkpoints/*",
    "wandb/",
]
MODEL_IGNORE_PATTERNS = COMMON_IGNORE_PATTERNS + [
    "checkpoint-*/",
    "*/checkpoint-*/*",
    "training_args.bin",
    "*optimizer.pt",
    "*optimizer.bin",
    "*scheduler.pt",
    "*scaler.pt",
    "*rng_state*.pth",
]
DATASET_IGNORE_PATTERNS = COMMON_IGNORE_PATTERNS


# ---------------------------------------------------------------------------------------------------------------
# templates


def card_template(name: str) -> str:
    """Text of the Jinja template ``name`` of ``hub_cards/``.

    Installed, the templates are package data in ``tinystories/hub_cards/`` (setup.py maps the package
    ``tinystories.hub_cards`` to the repository's ``hub_cards/``); in a source checkout or an editable install they
    are read from ``hub_cards/`` beside the package.
    """
    from importlib import resources

    resource = resources.files("tinystories").joinpath("hub_cards", name)
    if resource.is_file():
        return resource.read_text(encoding="utf-8")
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(repository, "hub_cards", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Card template {name} is neither installed (tinystories.hub_cards) nor at {path}: reinstall tinystories"
        )
    with open(path, encoding="utf-8") as f:
        return f.read()


def _render(template: str, **values: Any) -> str:
    import jinja2

    return jinja2.Template(card_template(template), keep_trailing_newline=True).render(**values)


# ---------------------------------------------------------------------------------------------------------------
# provenance


def _looks_like_hub_id(value: str) -> bool:
    """``owner/name`` or ``name`` that is not a path on this machine (``hf://`` URLs count as Hub references)."""
    if "://" in value:
        return True
    if os.path.isabs(value) or value.startswith((".", "~")) or "\\" in value or os.path.exists(value):
        return False
    return re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value) is not None


#: Recipe keys that are always local paths (unless an ``hf://`` or other URL).
_LOCAL_PATH_KEYS = ("output_dir", "logging_dir", "cache_dir", "train_file", "validation_file", "deepspeed")


def sanitize_recipe(recipe: dict[str, Any], results: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``recipe`` fit to publish: local filesystem paths (``output_dir``, data files, a local model,
    tokenizer or dataset folder, any absolute path) reduced to their basename; Hub ids and ``hf://`` URLs are kept.

    ``results`` (``all_results.json``) says which ``model_name_or_path``/``dataset_name`` were Hub ids when
    training ran (``base_model``, ``datasets``); without it a value that is no local path and reads like
    ``owner/name`` is taken for a Hub id."""
    results = results or {}

    def hub_reference(key: str, value: str) -> bool:
        if "://" in value:
            return True
        if key in _LOCAL_PATH_KEYS:
            return False
        if key == "model_name_or_path" and "base_model" in results:
            return value == results["base_model"]
        if key == "dataset_name" and "datasets" in results:
            return value in (results["datasets"] or [])
        if key in ("model_name_or_path", "tokenizer_name_or_path", "dataset_name"):
            return _looks_like_hub_id(value)
        return not (os.path.isabs(value) or value.startswith("~"))  # other keys: only absolute paths are paths

    clean = {}
    for key, value in recipe.items():
        if isinstance(value, str) and value and not hub_reference(key, value):
            value = os.path.basename(value.rstrip("/\\")) or value
        clean[key] = value
    return clean


# ---------------------------------------------------------------------------------------------------------------
# model card


def _read_json(path: str) -> dict[str, Any] | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _attention_layers(config: dict[str, Any]) -> list[str]:
    layers: list[str] = []
    for types, repeat in config.get("attention_types") or []:
        layers += list(types) * int(repeat)
    return layers or list(config.get("attention_layers") or [])


def find_preset(config: dict[str, Any]) -> str:
    """The TinyStories preset whose shape ``config`` has (vocabulary and positions may differ), else ``custom``."""
    from ..modeling import PRESETS

    if config.get("model_type") not in (None, "gpt_neo"):
        return "custom"
    hidden = config.get("hidden_size")
    for name, preset in PRESETS.items():
        same = all(
            config.get(key) == preset[key]
            for key in ("hidden_size", "num_layers", "num_heads", "window_size", "activation_function")
        )
        if (
            same
            and _attention_layers(config) == _attention_layers(preset)
            and (config.get("intermediate_size") or 4 * hidden) == 4 * preset["hidden_size"]
        ):
            return name
    return "custom"


def _describe_attention(layers: list[str]) -> str:
    if not layers:
        return "?"
    if all(layer == "global" for layer in layers):
        return "global"
    if all(layer == ("global" if i % 2 == 0 else "local") for i, layer in enumerate(layers)):
        return "global / local, alternating"
    return ", ".join(layers)


def count_saved_parameters(model_dir: str) -> int | None:
    """Distinct parameters of the saved weights (a tied LM head counted once), read from the safetensors headers."""
    index = _read_json(os.path.join(model_dir, "model.safetensors.index.json"))
    if index:
        files = sorted(set(index["weight_map"].values()))
    elif os.path.isfile(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        return None
    from safetensors import safe_open

    config = _read_json(os.path.join(model_dir, "config.json")) or {}
    total = 0
    for name in files:
        with safe_open(os.path.join(model_dir, name), framework="pt") as f:
            for key in f.keys():
                if key == "lm_head.weight" and config.get("tie_word_embeddings", True):
                    continue
                total += math.prod(f.get_slice(key).get_shape())
    return total


def _load_recipe(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, RECIPE_FILE)
    if not os.path.isfile(path):
        return {}
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def published_recipe(model_dir: str, results: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """The recipe as published: ``sanitize_recipe`` of ``model_dir/recipe.yaml``, and the bytes to upload as
    ``recipe.yaml`` when that changed anything (None: the folder's file goes as is). The folder's file is not
    touched."""
    recipe = _load_recipe(model_dir)
    clean = sanitize_recipe(recipe, results)
    if clean == recipe:
        return recipe, None
    import yaml

    with open(os.path.join(model_dir, RECIPE_FILE), encoding="utf-8") as f:
        header = "".join(line for line in f if line.startswith("#"))
    header += "# Local paths are reduced to their names (tinystories push): point them at your own files.\n"
    return clean, (header + yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)).encode("utf-8")


def eval_result_key(result: dict[str, Any]) -> tuple[str, str]:
    """What one GPT-Eval result stands for: ``(config_name, judge_model)``."""
    return result.get("config_name") or "default", result.get("judge_model") or "unknown judge"


def _read_eval_result(path: str) -> tuple[dict[str, Any], bytes]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        results = json.loads(raw)
    except FileNotFoundError:
        raise PushError(f"--eval_results: {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PushError(f"--eval_results: {path} is not JSON ({e})") from None
    scores = results.get("scores") if isinstance(results, dict) else None
    if not isinstance(scores, dict) or not all(isinstance(scores.get(a), (int, float)) for a in GPT_EVAL_AXES[:3]):
        raise PushError(
            f"--eval_results: {path} is not a GPT-Eval results.json of tinystories evaluate "
            "(needs scores.grammar, scores.creativity and scores.consistency)"
        )
    return results, raw


def _load_eval_files(paths: list[str]) -> list[tuple[str, dict[str, Any], bytes]]:
    """``(path, results, file bytes)`` of GPT-Eval results files, one per (config, judge): a later file wins."""
    by_key: dict[tuple[str, str], tuple[str, dict[str, Any], bytes]] = {}
    for path in paths:
        results, raw = _read_eval_result(path)
        by_key[eval_result_key(results)] = (path, results, raw)
    return [by_key[k] for k in sorted(by_key, key=lambda k: (k[0] != "default", k))]


def load_eval_results(paths: list[str]) -> list[dict[str, Any]]:
    """GPT-Eval ``results.json`` files (of ``tinystories evaluate``), one per config and judge (a later file for
    the same config and judge wins); the default config first."""
    return [results for _, results, _ in _load_eval_files(paths)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "unknown"


def eval_results_file_name(result: dict[str, Any]) -> str:
    """``gpt_eval_results_<config>_<judge slug>.json``: the name of one of several uploaded GPT-Eval results."""
    config, judge = eval_result_key(result)
    return f"gpt_eval_results_{_slug(config)}_{_slug(judge)}.json"


def gpt_eval_metrics(results: list[dict[str, Any]]) -> list:
    """``EvalResult`` entries of the card's ``model-index``: one per GPT-Eval axis, config and judge, with
    ``tinystories evaluate (GPT-Eval)`` as their source."""
    from huggingface_hub import EvalResult

    entries = []
    for result in results:
        config, judge = eval_result_key(result)
        scores = result["scores"]
        for axis in GPT_EVAL_AXES:
            if isinstance(scores.get(axis), (int, float)):
                entries.append(
                    EvalResult(
                        task_type="text-generation",
                        task_name="Text Generation",
                        dataset_type=GPT_EVAL_DATASET_TYPE,
                        dataset_name=GPT_EVAL_DATASET_NAMES.get(config, f"TinyStories GPT-Eval ({config})"),
                        dataset_config=config,
                        metric_type=axis,
                        metric_value=round(float(scores[axis]), 2),
                        metric_name=f"GPT-Eval {axis} (judge: {judge})",
                        source_name=GPT_EVAL_SOURCE_NAME,
                        source_url=GPT_EVAL_SOURCE_URL,
                    )
                )
    return entries


def _score(scores: dict[str, Any], axis: str) -> str:
    value = scores.get(axis)
    if not isinstance(value, (int, float)):
        return "-"
    ci = scores.get(f"{axis}_ci")
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and len(ci) == 2 else f"{value:.2f}"


def _gpt_eval_rows(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for result in results:
        scores = result["scores"]
        ages = scores.get("age_group") or {}
        rows.append(
            {
                "config": result.get("config_name") or "default",
                "judge": result.get("judge_model") or "?",
                **{axis: _score(scores, axis) for axis in GPT_EVAL_AXES},
                "graded": f"{scores.get('num_graded', '?')} ({scores.get('num_ungraded', 0)} ungraded)",
                "prompts": f"{result.get('num_prompts', '?')} x {result.get('num_completions', '?')}",
                "age_groups": ", ".join(f"{k} {v:.0%}" for k, v in sorted(ages.items()) if v) or "-",
            }
        )
    return rows


def _hub_link(repo_id: str, repo_type: str = "datasets") -> str:
    return f"[`{repo_id}`]({HUB}/{repo_type + '/' if repo_type else ''}{repo_id})"


def _source_text(path: str) -> str:
    repo = hub_dataset_of_file(path)
    if repo:
        return f"`{path.split('/', 4)[-1]}` of {_hub_link(repo)}"
    return f"the local file `{os.path.basename(path.rstrip('/'))}`"


def _training_data_text(recipe: dict[str, Any], results: dict[str, Any], datasets: list[str]) -> str:
    sources = []
    name = recipe.get("dataset_name")
    if name:
        config = recipe.get("dataset_config_name")
        text = (
            _hub_link(name) if name in datasets else f"a local dataset folder `{os.path.basename(name.rstrip('/'))}`"
        )
        sources.append(text + (f" (config `{config}`)" if config else ""))
    if recipe.get("train_file"):
        sources.append(_source_text(recipe["train_file"]))
    if recipe.get("validation_file"):
        sources.append(_source_text(recipe["validation_file"]) + " for validation")
    if not sources and datasets:
        sources = [_hub_link(d) for d in datasets]
    lines = [f"Trained on {' and '.join(sources)}." if sources else "The training data was not recorded."]
    if "train_stories" in results:
        lines.append(
            f"{results['train_stories']:,} training stories, packed with an end-of-story token between them into "
            f"{results.get('train_blocks', 0):,} blocks of {results.get('block_size', '?')} tokens."
        )
    source = results.get("validation_source") or {}
    if source.get("kind") == "split":
        lines.append(f"Validation: the data's `{source.get('split')}` split.")
    elif source.get("kind") == "held_out":
        lines.append(
            f"Validation: {_fmt_number(source.get('percentage', 5))}% of the training stories, held out (the data has "
            "no validation split)."
        )
    elif sources and source.get("kind") != "file":  # not recorded (a folder of an older tinystories)
        lines.append(
            "Validation: the data's validation split, or "
            f"{recipe.get('validation_split_percentage', 5)}% of the training stories held out when it has none."
        )
    return " ".join(lines)


def _eval_loss_result(eval_loss: float, results: dict[str, Any], recipe: dict[str, Any], dataset: str):
    """The ``model-index`` entry of the eval loss on the Hub dataset ``dataset``, named after where validation
    came from; None when it was not that dataset (a validation file of elsewhere)."""
    from huggingface_hub import EvalResult

    source = results.get("validation_source") or {}
    kind, split = source.get("kind"), None
    if kind == "split":
        split, name = source.get("split"), "Eval loss"
    elif kind == "held_out":
        name = f"Eval loss ({_fmt_number(source.get('percentage', 5))}% of the train split held out)"
    elif kind == "file":
        if hub_dataset_of_file(recipe.get("validation_file")) != dataset:
            return None
        name = "Eval loss (validation file)"
    else:
        name = "Eval loss (validation stories; their source was not recorded)"
    return EvalResult(
        task_type="text-generation",
        task_name="Text Generation",
        dataset_type=dataset,
        dataset_name=dataset,
        dataset_config=recipe.get("dataset_config_name"),
        dataset_split=split,
        metric_type="loss",
        metric_value=round(float(eval_loss), 4),
        metric_name=name,
    )


def _fmt_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _recipe_rows(recipe: dict[str, Any], results: dict[str, Any], base_model: str | None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if recipe.get("model_name_or_path"):
        start = recipe["model_name_or_path"]
        rows.append(("start", f"fine-tuned from {_hub_link(start, '') if start == base_model else f'`{start}`'}"))
    elif recipe.get("model_preset"):
        overrides = recipe.get("config_overrides")
        if isinstance(overrides, dict):
            overrides = "{" + ", ".join(f"{k}: {v}" for k, v in overrides.items()) + "}"
        rows.append(
            ("start", f"from scratch: preset `{recipe['model_preset']}`" + (f", `{overrides}`" if overrides else ""))
        )
    if recipe.get("use_peft"):
        rows.append(("LoRA", f"r {recipe.get('lora_r')}, alpha {recipe.get('lora_alpha')}"))
    size = recipe.get("tokenizer_vocab_size")
    tokenizer = recipe.get("tokenizer_name_or_path")
    if size and tokenizer:
        rows.append(("tokenizer", f"`{tokenizer}` pruned to its {size:,} most frequent tokens on the training text"))
    elif size:
        rows.append(("tokenizer", f"byte-level BPE of {size:,} tokens trained on the training stories"))
    elif tokenizer:
        rows.append(("tokenizer", f"`{tokenizer}`"))
    if "learning_rate" in recipe:
        schedule = recipe.get("lr_scheduler_type", "linear")
        rows.append(
            ("learning rate", f"{recipe['learning_rate']:g}, {schedule}, warmup {recipe.get('warmup_steps', 0)}")
        )
    if "weight_decay" in recipe:
        rows.append(("weight decay", _fmt_number(recipe["weight_decay"])))
    if "adam_beta1" in recipe:
        rows.append(("Adam betas", f"({recipe['adam_beta1']}, {recipe.get('adam_beta2')})"))
    if "per_device_train_batch_size" in recipe:
        world = results.get("world_size", 1)
        batch = (
            f"{recipe['per_device_train_batch_size']} x {recipe.get('gradient_accumulation_steps', 1)} accumulation "
            f"x {world} process{'es' if world != 1 else ''}"
        )
        if "tokens_per_step" in results:
            batch += f" = {results['tokens_per_step']:,} tokens a step"
        rows.append(("batch", batch))
    if "block_size" in recipe or "block_size" in results:
        rows.append(("context (block size)", str(recipe.get("block_size", results.get("block_size")))))
    if "global_step" in results:
        epoch = results.get("epoch")
        rows.append(("steps", f"{results['global_step']:,}" + (f" ({epoch:.2f} epochs)" if epoch else "")))
    if "num_input_tokens_seen" in results:
        rows.append(("tokens seen", f"{results['num_input_tokens_seen']:,}"))
    if recipe:
        precision = "bf16" if recipe.get("bf16") else "fp16" if recipe.get("fp16") else "fp32"
        rows.append(("precision", precision))
        rows.append(("attention", f"`{recipe.get('attn_implementation', 'sdpa')}`"))
        rows.append(("seed", str(recipe.get("seed", 42))))
    if results.get("train_runtime"):
        rows.append(("training time", _duration(results["train_runtime"])))
    return rows


def _safe_block(text: str) -> str:
    """Text safe inside a fenced code block."""
    return text.replace("```", "'''").strip()


#: Generic architecture rows of a non-GPT-Neo ``config.json``: (label, the keys that may hold it).
_GENERIC_ARCHITECTURE = (
    ("hidden size", ("hidden_size", "n_embd", "d_model")),
    ("layers", ("num_hidden_layers", "n_layer", "num_layers")),
    ("attention heads", ("num_attention_heads", "n_head", "num_heads")),
    ("vocabulary", ("vocab_size",)),
    ("positions", ("max_position_embeddings", "n_positions", "n_ctx")),
)


def _generic_architecture(config: dict[str, Any], parameters: int | None) -> list[tuple[str, str]]:
    rows = [("model type", f"`{config.get('model_type')}`")]
    for label, keys in _GENERIC_ARCHITECTURE:
        value = next((config[k] for k in keys if config.get(k) is not None), None)
        if value is not None:
            rows.append((label, _fmt_number(value)))
    if parameters:
        rows.append(("parameters", _fmt_number(parameters)))
    return rows


def render_model_card(
    model_dir: str,
    eval_results: list[dict[str, Any]] | None = None,
    repo_id: str | None = None,
    *,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    revision: str | None = None,
):
    """The model card (``hub_cards/model_card.md``) of a ``tinystories train`` output folder.

    Reads ``config.json`` (architecture: the GPT-Neo table and preset for ``gpt_neo``, a generic table for any other
    ``model_type``), ``all_results.json`` (eval loss and where validation came from, tokens, sample story, the Hub
    ids trained from), ``recipe.yaml`` (the recipe, local paths reduced to their names) and the weights' headers
    (parameters). ``eval_results`` are GPT-Eval ``results.json`` contents (``load_eval_results``): they become the
    ``model-index`` and a table. ``base_model``/``datasets`` override what training recorded; ``revision`` (a
    branch) goes into the usage snippets.
    """
    check_model_folder(model_dir)
    return _model_card(
        model_dir,
        eval_results,
        repo_id,
        license=license,
        tags=tags,
        base_model=base_model,
        datasets=datasets,
        revision=revision,
    )


def _model_card(
    model_dir: str,
    eval_results: list[dict[str, Any]] | None,
    repo_id: str | None,
    *,
    license: str,
    tags: list[str] | None,
    base_model: str | None,
    datasets: list[str] | None,
    revision: str | None,
):
    from huggingface_hub import ModelCard, ModelCardData

    config = _read_json(os.path.join(model_dir, "config.json"))
    adapter = _read_json(os.path.join(model_dir, "adapter_config.json"))
    results = _read_json(os.path.join(model_dir, RESULTS_FILE)) or {}
    recipe, sanitized = published_recipe(model_dir, results)
    eval_results = eval_results or []

    base_model = base_model or results.get("base_model")
    datasets = list(datasets) if datasets else list(results.get("datasets") or [])
    if not datasets:  # a folder written before training recorded its sources: hf:// files are unambiguous
        for key in ("train_file", "validation_file"):
            repo = hub_dataset_of_file(recipe.get(key))
            if repo and repo not in datasets:
                datasets.append(repo)
    model_name = (repo_id or os.path.basename(os.path.abspath(model_dir))).split("/")[-1]

    model_type = (config or {}).get("model_type")
    gpt_neo = bool(config) and model_type in (None, "gpt_neo")
    architecture, architecture_rows, architecture_note = [], [], ""
    preset, arch_tag, model_kind, model_class, parameters = "custom", None, "language model", None, None
    if config:
        parameters = count_saved_parameters(model_dir) or results.get("num_parameters")
        model_class = (config.get("architectures") or [None])[0]
    if gpt_neo:
        arch_tag = "gpt-neo"
        model_kind = "GPT-Neo language model"
        model_class = model_class or "GPTNeoForCausalLM"
        preset = find_preset(config)
        architecture.append(
            {
                "preset": f"`{preset}`" if preset != "custom" else "custom",
                "width": config.get("hidden_size"),
                "depth": config.get("num_layers"),
                "heads": config.get("num_heads"),
                "window": config.get("window_size"),
                "attention": _describe_attention(_attention_layers(config)),
                "vocab_size": _fmt_number(config.get("vocab_size")),
                "positions": _fmt_number(config.get("max_position_embeddings")),
                "parameters": _fmt_number(parameters) if parameters else "?",
            }
        )
        if preset != "custom":
            architecture_note = (
                f"The shape of the paper's [`{preset}`]({HUB}/roneneldan/TinyStories-{preset}) model; the released "
                "checkpoints keep GPT-Neo's 50,257-token vocabulary and 2,048 positions, so parameter counts differ "
                "with the vocabulary."
            )
        else:
            architecture_note = "A custom shape (none of the paper's presets)."
        if "local" in _attention_layers(config):
            architecture_note += f" Local layers attend to the previous {config.get('window_size')} tokens."
    elif config:
        arch_tag = str(model_type).replace("_", "-")
        model_kind = f"`{model_type}` language model"
        architecture_rows = _generic_architecture(config, parameters)
        architecture_note = f"A `{model_type}` model, not one of the paper's presets."
    elif adapter:
        architecture_note = (
            f"LoRA adapters (r {adapter.get('r')}, alpha {adapter.get('lora_alpha')}, modules "
            f"{', '.join(sorted(adapter.get('target_modules') or []))}) for the base model "
            f"`{adapter.get('base_model_name_or_path')}`: load them with peft."
        )
    checkpoint_text = (
        f"It is a stock `{model_class}` checkpoint: plain `transformers` loads it, without `tinystories`."
        if model_class
        else "Plain `transformers` loads it, without `tinystories`."
    )

    eval_loss = results.get("eval_loss")
    if isinstance(eval_loss, (int, float)):
        eval_loss_text = (
            f"Eval loss **{eval_loss:.4f}** (perplexity {results.get('perplexity', math.exp(min(eval_loss, 700))):.2f})"
            f" on the validation stories, in nats per token of this model's tokenizer, after "
            f"{_fmt_number(results.get('global_step', '?'))} steps. Losses are comparable only between models with the same "
            "tokenizer (the paper: 1.33-1.38 at width 768 with 2 layers, GPT-Neo's tokenizer)."
        )
    else:
        eval_loss_text = f"No eval loss was recorded (no `{RESULTS_FILE}`)."

    model_index = gpt_eval_metrics(eval_results)
    if isinstance(eval_loss, (int, float)) and len(datasets) == 1:
        loss_result = _eval_loss_result(eval_loss, results, recipe, datasets[0])
        if loss_result is not None:
            model_index.insert(0, loss_result)
    all_tags = MODEL_TAGS[:1] + ([arch_tag] if arch_tag else []) + MODEL_TAGS[1:]
    if preset != "custom":
        all_tags.append(f"tinystories-{preset}")
    if eval_results:
        all_tags.append("gpt-eval")
    all_tags += [t for t in tags or [] if t not in all_tags]
    card_data = ModelCardData(
        language="en",
        license=license,
        library_name="peft" if adapter and not config else "transformers",
        pipeline_tag="text-generation",
        tags=all_tags,
        datasets=datasets or None,
        base_model=base_model,
        model_name=model_name if model_index else None,  # only the model-index needs it
        eval_results=model_index or None,
    )
    sample_prompt = recipe.get("sample_prompt", "Once upon a time")
    revision = revision if revision and revision != "main" else None
    return ModelCard.from_template(
        card_data,
        template_str=card_template("model_card.md"),
        model_name=model_name,
        model_kind=model_kind,
        checkpoint_text=checkpoint_text,
        repo_id=repo_id or os.path.abspath(model_dir),
        revision=revision,
        revision_arg=f", revision={json.dumps(revision)}" if revision else "",
        gpt_neo=gpt_neo,
        architecture=architecture,
        architecture_rows=architecture_rows,
        architecture_note=architecture_note,
        training_data=_training_data_text(recipe, results, datasets),
        recipe_rows=_recipe_rows(recipe, results, base_model),
        recipe_note=(
            f"The full recipe is `{RECIPE_FILE}` in this repository: `tinystories train {RECIPE_FILE}` runs it again"
            + (" (local paths in it are reduced to their names: point them at your own files)." if sanitized else ".")
            if recipe
            else "The recipe was not recorded."
        ),
        eval_loss_text=eval_loss_text,
        gpt_eval_rows=_gpt_eval_rows(eval_results),
        sample_prompt=json.dumps(sample_prompt)[1:-1],  # inside a Python string literal
        adapter=bool(adapter and not config),
        sample_story=_safe_block(results["sample_story"]) if results.get("sample_story") else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# dataset card


#: What ``tinystories generate`` writes beside the data: the run's summary, from which the card is rendered.
GENERATION_FILE = "generation.json"


def dataset_card(summary: dict[str, Any], repo_id: str | None = None, license: str = "cdla-sharing-1.0"):
    """The card of a generated dataset (``hub_cards/dataset_card.md``) from the run's summary (the plain
    ``generation.json`` mapping of ``tinystories generate``): configs, schema, teacher, prompt template, counts,
    cost and filter report, with ``repo_id`` (a Hub id, or None) in its ``load_dataset`` examples."""
    from huggingface_hub import DatasetCard, DatasetCardData

    args, counts, stats, report = summary["arguments"], summary["counts"], summary["engine"], summary["filters"]
    metadata = summary["metadata"]
    title = summary.get("title") or "TinyStories-style synthetic stories"
    card_data = DatasetCardData(
        language="en",
        license=license,
        task_categories=["text-generation"],
        size_categories=metadata["size_categories"],
        pretty_name=title,
        configs=metadata["configs"],
        dataset_info=metadata["dataset_info"],
        tags=["tinystories", "synthetic"],
    )
    story_stats = stats.get("stories", {})
    cost = sum(s.get("cost_usd", 0.0) for s in stats.values())
    filter_rows = ["| step | stories |", "| --- | --- |", f"| generated | {report['total']} |"]
    filter_rows += [f"| removed: {reason} | {count} |" for reason, count in report["removed"].items()]
    filter_rows += [f"| kept | {report['kept']} |"]
    filter_rows += [
        "",
        f"Mean length {report['mean_words']} words; mean share of words outside the vocabulary "
        f"{report['mean_out_of_vocabulary']:.2%}; {report['distinct_required_words']} distinct required words; "
        f"features: {json.dumps(report['feature_counts'])}; most common openers: "
        f"{json.dumps(report['top_openers'])}.",
    ]
    return DatasetCard.from_template(
        card_data,
        template_str=card_template("dataset_card.md"),
        repo_id=repo_id,
        pretty_name=title,
        teacher=args["model"],
        vocabulary_size=summary["vocabulary_size"],
        counts=counts,
        instruct=args["instruct"],
        ood=args["ood"],
        temperature=args["temperature"],
        max_tokens=args["max_tokens"],
        seed=args["seed"],
        template_name=args["template"],
        example_prompt=summary["example_prompt"],
        requests=story_stats.get("sent", 0) + stats.get("summaries", {}).get("sent", 0),
        cached=story_stats.get("cached", 0) + stats.get("summaries", {}).get("cached", 0),
        failed=story_stats.get("failed", 0),
        failure_reasons=", ".join(f"{k}: {v}" for k, v in story_stats.get("failures", {}).items()) or "none",
        prompt_tokens=sum(s.get("prompt_tokens", 0) for s in stats.values()),
        completion_tokens=sum(s.get("completion_tokens", 0) for s in stats.values()),
        cost=f"{cost:.4f}",
        filter_table="\n".join(filter_rows),
    )


def write_dataset_card(dataset_dir: str, summary: dict[str, Any] | None = None) -> str:
    """Write the card of a generated dataset folder (``README.md``) from its summary (default: the folder's
    ``generation.json``); returns the card's path."""
    summary = summary if summary is not None else _read_json(os.path.join(dataset_dir, GENERATION_FILE))
    if not summary:
        raise PushError(f"{dataset_dir} has no {GENERATION_FILE}: is it the output_dir of tinystories generate?")
    path = os.path.join(dataset_dir, "README.md")
    dataset_card(summary).save(path)
    return path


def _dataset_files_exist(dataset_dir: str, configs: list[dict[str, Any]]) -> list[str]:
    import glob

    missing = []
    for config in configs:
        files = config.get("data_files") or []
        if isinstance(files, (str, dict)):
            files = [files]
        for entry in files:
            paths = entry.get("path") if isinstance(entry, dict) else entry
            for path in [paths] if isinstance(paths, str) else paths or []:
                if not glob.glob(os.path.join(dataset_dir, path), recursive=True):
                    missing.append(path)
    return missing


def render_dataset_card(
    dataset_dir: str, repo_id: str | None = None, license: str | None = None, revision: str | None = None
):
    """The dataset card of a ``tinystories generate`` folder, rendered again from its ``generation.json`` (by
    ``dataset_card``, as when it was generated) with the Hub id in its examples (and ``revision=`` in its
    ``load_dataset`` calls for a branch); a folder without ``generation.json`` keeps its README card. Either way
    the card must declare ``configs`` whose files exist."""
    from huggingface_hub import DatasetCard

    summary_path = os.path.join(dataset_dir, GENERATION_FILE)
    readme = os.path.join(dataset_dir, "README.md")
    if os.path.isfile(summary_path):
        summary = _read_json(summary_path) or {}
        try:
            card = dataset_card(summary, repo_id=repo_id, **({"license": license} if license else {}))
        except (KeyError, TypeError, ValueError) as e:
            raise PushError(f"{summary_path} is not a generation summary of tinystories generate ({e!r})") from None
    elif os.path.isfile(readme):
        card = DatasetCard.load(readme)
        if license:
            card.data.license = license
    else:
        raise PushError(
            f"{dataset_dir} is not a dataset folder: it has neither generation.json nor a README.md card "
            "(pass the output_dir of tinystories generate)"
        )
    check_dataset_card(dataset_dir, card)
    if repo_id and revision and revision != "main":
        card.text = _with_revision(card.text, repo_id, revision)
    return card


def _with_revision(text: str, repo_id: str, revision: str) -> str:
    """``load_dataset("repo_id"[, "config"])`` calls of a card's snippets with ``revision="..."`` added."""
    pattern = re.compile(r'load_dataset\("' + re.escape(repo_id) + r'"((?:, "[^"]*")?)\)')
    return pattern.sub(lambda m: f'load_dataset("{repo_id}"{m.group(1)}, revision={json.dumps(revision)})', text)


def check_dataset_card(dataset_dir: str, card) -> None:
    configs = card.data.to_dict().get("configs")
    if not configs:
        raise PushError(f"The card of {dataset_dir} declares no configs: load_dataset could not find its files")
    missing = _dataset_files_exist(dataset_dir, configs)
    if missing:
        raise PushError(f"The card of {dataset_dir} lists data files that are not in the folder: {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------------------------
# metric (a Gradio Space)


def metric_folder(path: str) -> str:
    """The folder of an ``evaluate`` metric module: ``-``/``default``/``gpt_eval`` is the bundled GPT-Eval."""
    if path in BUNDLED_METRIC:
        from ..metrics import GPT_EVAL

        return GPT_EVAL
    folder = os.path.abspath(path)
    name = os.path.basename(folder)
    if not os.path.isfile(os.path.join(folder, f"{name}.py")):
        raise PushError(
            f"{path} is not a metric module folder (no {name}.py inside, the layout evaluate.load expects); "
            f"use one of {', '.join(repr(p) for p in BUNDLED_METRIC)} for the bundled GPT-Eval"
        )
    return folder


def render_metric_card(metric_dir: str, repo_id: str | None = None, module_file: str | None = None):
    """The Space card of a metric: the Space YAML (title, emoji, colours, ``sdk: gradio``, ``app_file: app.py``,
    tags ``evaluate``/``metric``, description) and the module's own README body (``hub_cards/metric_card.md``)."""
    from huggingface_hub import RepoCard, SpaceCard, SpaceCardData

    name = os.path.basename(os.path.abspath(metric_dir))
    readme = os.path.join(metric_dir, "README.md")
    meta: dict[str, Any] = {}
    body = f"# {name}\n"
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8") as f:
            own = RepoCard(f.read(), ignore_metadata_errors=True)
        meta, body = own.data.to_dict(), own.text.strip()
    tags = ["evaluate", "metric"] + [t for t in meta.get("tags") or [] if t not in ("evaluate", "metric")]
    card_data = SpaceCardData(
        title=meta.get("title") or name,
        sdk="gradio",
        app_file="app.py",
        license=meta.get("license") or "apache-2.0",
        tags=tags,
        emoji=meta.get("emoji") or "📚",
        colorFrom=meta.get("colorFrom") or "indigo",
        colorTo=meta.get("colorTo") or "pink",
        pinned=bool(meta.get("pinned", False)),
        description=meta.get("description") or f"The {name} metric (evaluate module).",
    )
    return SpaceCard.from_template(
        card_data,
        template_str=card_template("metric_card.md"),
        body=body,
        module_file=module_file or f"{name}.py",
        repo_id=repo_id or f"OWNER/{name}",
    )


#: ``requirements.txt`` line of a Space staged without ``--space_requirement`` (a dry run only): a comment, so
#: nothing named ``tinystories`` is ever installed from PyPI.
SPACE_REQUIREMENT_PLACEHOLDER = (
    f"# PLACEHOLDER (dry run): no --space_requirement given. The Space cannot build without a line that installs "
    f'tinystories, e.g. "{SPACE_REQUIREMENT_EXAMPLE}"'
)


def stage_metric(metric_dir: str, staging_dir: str, repo_id: str, requirement: str | None = None) -> None:
    """Write the Space's files into ``staging_dir``: the module as ``<space name>.py`` (the file that
    ``evaluate.load("owner/space")`` downloads), its sibling ``.py`` files, ``README.md``, ``app.py`` and
    ``requirements.txt`` (``requirement`` installs tinystories; None writes ``SPACE_REQUIREMENT_PLACEHOLDER``)."""
    name = os.path.basename(os.path.abspath(metric_dir))
    module_file = f"{repo_id.split('/')[-1]}.py"
    for entry in sorted(os.listdir(metric_dir)):
        if entry.endswith(".py") and entry != "app.py":
            target = module_file if entry == f"{name}.py" else entry
            shutil.copyfile(os.path.join(metric_dir, entry), os.path.join(staging_dir, target))
    render_metric_card(metric_dir, repo_id, module_file).save(os.path.join(staging_dir, "README.md"))
    with open(os.path.join(staging_dir, "app.py"), "w", encoding="utf-8") as f:
        f.write(_render("metric_app.py", module_file=module_file))
    with open(os.path.join(staging_dir, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write(_render("metric_requirements.txt", requirement=requirement or SPACE_REQUIREMENT_PLACEHOLDER))


# ---------------------------------------------------------------------------------------------------------------
# push


def check_model_folder(model_dir: str) -> None:
    has = lambda name: os.path.isfile(os.path.join(model_dir, name))  # noqa: E731
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")
    if not os.path.isdir(model_dir) or not (has("config.json") or has("adapter_config.json")):
        raise PushError(
            f"{model_dir} is not a model folder (no config.json): pass the output_dir of tinystories train"
        )
    if not any(has(w) for w in weights):
        raise PushError(f"{model_dir} has no weights ({', '.join(weights)}): was training saved?")


def files_to_upload(folder: str, ignore_patterns: list[str]) -> list[str]:
    """The paths of ``folder`` that ``upload_folder`` would send with ``ignore_patterns`` (its own selection:
    huggingface_hub's ``filter_repo_objects`` with its default ignore patterns, ``.git`` and its cache)."""
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    paths = [
        os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
        for root, _, names in os.walk(folder)
        for name in names
    ]
    return sorted(filter_repo_objects(paths, ignore_patterns=ignore_patterns + list(DEFAULT_IGNORE_PATTERNS)))


def plan_upload(
    folder: str,
    ignore_patterns: list[str],
    files: dict[str, bytes] | None = None,
    exclude: tuple[str, ...] = (),
) -> dict[str, str | bytes]:
    """What one push commits: ``{path in the repo: local path or bytes}``. The folder's files (``files_to_upload``)
    but ``exclude``, with ``files`` (made in memory: the rendered card, a sanitized recipe...) added or replacing
    the folder's own; nothing is written into ``folder``."""
    plan: dict[str, str | bytes] = {
        name: os.path.join(folder, name) for name in files_to_upload(folder, ignore_patterns) if name not in exclude
    }
    plan.update(files or {})
    return dict(sorted(plan.items()))


def require_token(token: str | None = None) -> None:
    from huggingface_hub import get_token

    if not (token or get_token()):
        raise PushError("No Hugging Face token: set HF_TOKEN or run `hf auth login`")


def upload(
    plan: dict[str, str | bytes],
    repo_id: str,
    repo_type: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    space_sdk: str | None = None,
) -> dict[str, Any]:
    """``create_repo(exist_ok=True)``; with ``private``, refuse an existing public repository (its visibility is
    never changed); ``create_branch`` for a revision; then one ``create_commit`` of ``plan`` (``plan_upload``)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    require_token(token)
    api = HfApi(token=token)  # None: HF_TOKEN or the login's token, resolved by huggingface_hub itself
    url = api.create_repo(
        repo_id,
        repo_type=repo_type,
        private=True if private else None,  # None: public, unless the organisation's default is private
        exist_ok=True,
        **({"space_sdk": space_sdk} if space_sdk else {}),
    )
    repo_id = url.repo_id or repo_id  # a bare name is created in the token owner's namespace
    if private and not api.repo_info(repo_id, repo_type=repo_type).private:
        raise PushError(
            f"{repo_id} exists and is public; --private would not make it private: change its visibility on the "
            "Hub or drop --private"
        )
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    info = api.create_commit(
        repo_id,
        [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source) for name, source in plan.items()],
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message or "Upload with tinystories push",
    )
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    tree = f"/tree/{revision}" if revision and revision != "main" else ""
    return {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "url": f"{HUB}/{prefix}{repo_id}{tree}",
        "commit_url": getattr(info, "commit_url", None),
        "files": list(plan),
    }


def _push_or_dry_run(
    plan: dict[str, str | bytes], repo_id: str, kind: str, card: str | None, dry_run: bool, **upload_args: Any
) -> dict[str, Any]:
    if dry_run:
        result = {"repo_id": repo_id, "repo_type": REPO_TYPES[kind], "url": None, "commit_url": None}
        result["files"] = list(plan)
    else:
        result = upload(plan, repo_id, REPO_TYPES[kind], **upload_args)
    result["card"] = card
    return result


def _model_eval_files(
    model_dir: str, eval_results: list[str] | None
) -> tuple[list[dict[str, Any]], dict[str, bytes], tuple[str, ...]]:
    """The GPT-Eval results of a model push: ``(results for the card, files to upload, folder files to leave
    out)``. ``model_dir/gpt_eval_results.json`` counts too; the command line's files are uploaded as
    ``gpt_eval_results.json`` when there is one (it replaces the folder's own only for the same config and judge),
    else as ``gpt_eval_results_<config>_<judge>.json``; a folder file replaced by a later one is left out."""
    own = os.path.join(model_dir, GPT_EVAL_FILE)
    has_own = os.path.isfile(own)
    given = [p for p in eval_results or [] if os.path.abspath(p) != os.path.abspath(own)]
    entries = _load_eval_files(([own] if has_own else []) + given)
    folder_name = os.path.basename(os.path.abspath(model_dir))
    for path, results, _ in entries:
        graded = str(results.get("model_name_or_path") or "").rstrip("/\\")
        if graded and os.path.basename(graded) != folder_name:
            logger.warning(
                "%s graded %s, not %s (the folder pushed): is it the right results file?", path, graded, folder_name
            )
    from_cli = [(path, results, raw) for path, results, raw in entries if path != own]
    own_kept = has_own and any(path == own for path, _, _ in entries)
    exclude = () if own_kept or not has_own else (GPT_EVAL_FILE,)
    if len(from_cli) == 1 and not own_kept:
        files = {GPT_EVAL_FILE: from_cli[0][2]}
    else:
        files = {eval_results_file_name(results): raw for _, results, raw in from_cli}
    return [results for _, results, _ in entries], files, exclude


def push_model(
    model_dir: str,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    eval_results: list[str] | None = None,
    token: str | None = None,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    card: str = "render",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Upload a model folder (no checkpoints, no optimizer states, no ``training_args.bin``) with its rendered card,
    from memory: ``model_dir`` is not written to. ``eval_results``: GPT-Eval ``results.json`` paths, uploaded with
    the model (``model_dir/gpt_eval_results.json`` is used too); ``recipe.yaml`` goes with its local paths reduced
    to their names. ``card="keep"`` uploads the folder's own README.md instead of the rendered card."""
    check_model_folder(model_dir)
    results, files, exclude = _model_eval_files(model_dir, eval_results)
    _, recipe_bytes = published_recipe(model_dir, _read_json(os.path.join(model_dir, RESULTS_FILE)))
    if recipe_bytes is not None:
        files[RECIPE_FILE] = recipe_bytes
    rendered = None
    if card == "render":
        rendered = str(
            _model_card(
                model_dir,
                results,
                repo_id,
                license=license,
                tags=tags,
                base_model=base_model,
                datasets=datasets,
                revision=revision,
            )
        )
        files["README.md"] = rendered.encode("utf-8")
    elif not os.path.isfile(os.path.join(model_dir, "README.md")):
        raise PushError(f"--card keep: {model_dir} has no README.md")
    return _push_or_dry_run(
        plan_upload(model_dir, MODEL_IGNORE_PATTERNS, files, exclude),
        repo_id,
        "model",
        rendered,
        dry_run,
        private=private,
        revision=revision,
        commit_message=commit_message or "Upload TinyStories model with tinystories push",
        token=token,
    )


def push_dataset(
    dataset_dir: str,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    license: str | None = None,
    card: str = "render",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Upload the Parquet files, ``generation.json`` and the dataset card rendered again (configs kept) from
    memory (``dataset_dir/README.md`` is not written), never the request cache. ``card="keep"``: the folder's
    README.md, checked to declare configs whose files exist."""
    if not os.path.isdir(dataset_dir):
        raise PushError(f"{dataset_dir} is not a folder (pass the output_dir of tinystories generate)")
    files, rendered = {}, None
    if card == "render":
        rendered = str(render_dataset_card(dataset_dir, repo_id, license, revision))
        files["README.md"] = rendered.encode("utf-8")
    else:
        from huggingface_hub import DatasetCard

        readme = os.path.join(dataset_dir, "README.md")
        if not os.path.isfile(readme):
            raise PushError(f"--card keep: {dataset_dir} has no README.md")
        check_dataset_card(dataset_dir, DatasetCard.load(readme))
    return _push_or_dry_run(
        plan_upload(dataset_dir, DATASET_IGNORE_PATTERNS, files),
        repo_id,
        "dataset",
        rendered,
        dry_run,
        private=private,
        revision=revision,
        commit_message=commit_message or "Upload TinyStories dataset with tinystories push",
        token=token,
    )


def push_metric(
    metric_path: str,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    requirement: str | None = None,
    dry_run: bool = False,
    staging_dir: str | None = None,
) -> dict[str, Any]:
    """Publish a metric module as a Gradio Space: the module, a README with the Space YAML and the module's card,
    ``app.py`` (evaluate's widget) and ``requirements.txt``, staged in ``staging_dir`` (default: a temporary
    folder). ``requirement`` is the requirements.txt line that installs tinystories, which is not on PyPI: required
    unless ``dry_run`` (which stages a marked placeholder)."""
    folder = metric_folder(metric_path)
    if not requirement and not dry_run:
        raise PushError(
            "push metric needs --space_requirement, the requirements.txt line that installs tinystories in the Space "
            f'(it is not on PyPI), e.g. --space_requirement "{SPACE_REQUIREMENT_EXAMPLE}"'
        )
    with contextlib.ExitStack() as stack:
        staging = staging_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="tinystories-space-"))
        os.makedirs(staging, exist_ok=True)
        stage_metric(folder, staging, repo_id, requirement)
        with open(os.path.join(staging, "README.md"), encoding="utf-8") as f:
            rendered = f.read()
        return _push_or_dry_run(
            plan_upload(staging, COMMON_IGNORE_PATTERNS),
            repo_id,
            "metric",
            rendered,
            dry_run,
            private=private,
            revision=revision,
            commit_message=commit_message or "Upload metric Space with tinystories push",
            token=token,
            space_sdk="gradio",
        )


# ---------------------------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinystories push",
        description="Publish a trained model, a generated dataset or a metric (as a Gradio Space) to the Hugging "
        "Face Hub with a rendered card. The token comes from HF_TOKEN or `hf auth login`, never from a file.",
    )
    parser.add_argument("kind", choices=KINDS, help="What PATH holds.")
    parser.add_argument(
        "path",
        metavar="PATH",
        help="model: the output_dir of tinystories train; dataset: the output_dir of tinystories generate; "
        f"metric: an evaluate module folder, or one of {', '.join(BUNDLED_METRIC)} for the bundled GPT-Eval.",
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="owner/name on the Hub (a bare name: your namespace).")
    parser.add_argument(
        "--private",
        action="store_true",
        help="Create the repository private; an existing public repository is refused (its visibility is not changed).",
    )
    parser.add_argument(
        "--revision", default=None, help="Branch to push to (created if missing); the card's snippets load it."
    )
    parser.add_argument("--commit_message", default=None, help="Message of the commit.")
    parser.add_argument(
        "--eval_results",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help=f"model: GPT-Eval results.json file(s) of tinystories evaluate, shown on the card and uploaded (as "
        f"{GPT_EVAL_FILE} for one, else gpt_eval_results_<config>_<judge>.json); PATH/{GPT_EVAL_FILE} is used too.",
    )
    parser.add_argument(
        "--license", default=None, help="License id (model default apache-2.0; dataset default cdla-sharing-1.0)."
    )
    parser.add_argument("--tags", nargs="+", default=None, help="model: extra tags.")
    parser.add_argument("--base_model", default=None, help="model: Hub id it was fine-tuned from (default: recorded).")
    parser.add_argument("--datasets", nargs="+", default=None, help="model: Hub dataset ids (default: recorded).")
    parser.add_argument(
        "--card",
        choices=("render", "keep"),
        default="render",
        help="render: upload a rendered card as README.md (PATH is not written to; default); keep: upload PATH's "
        "README.md as is.",
    )
    parser.add_argument(
        "--space_requirement",
        default=None,
        help="metric (required: tinystories is not on PyPI): the requirements.txt line that installs tinystories "
        f"in the Space, e.g. '{SPACE_REQUIREMENT_EXAMPLE}'.",
    )
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="Print the files to upload and the rendered card; no network, no token, nothing written.",
    )
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    common = {"private": args.private, "revision": args.revision, "commit_message": args.commit_message}
    try:
        if args.kind != "model" and (args.eval_results or args.tags or args.base_model or args.datasets):
            raise PushError("--eval_results, --tags, --base_model and --datasets apply to push model only")
        if args.kind != "metric" and args.space_requirement:
            raise PushError("--space_requirement applies to push metric only")
        if args.kind == "model":
            result = push_model(
                args.path,
                args.repo_id,
                eval_results=args.eval_results,
                license=args.license or "apache-2.0",
                tags=args.tags,
                base_model=args.base_model,
                datasets=args.datasets,
                card=args.card,
                dry_run=args.dry_run,
                **common,
            )
        elif args.kind == "dataset":
            result = push_dataset(
                args.path, args.repo_id, license=args.license, card=args.card, dry_run=args.dry_run, **common
            )
        else:
            result = push_metric(
                args.path, args.repo_id, requirement=args.space_requirement, dry_run=args.dry_run, **common
            )
    except PushError as e:
        print(f"tinystories push: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.dry_run:
        print(f"Dry run: would push {len(result['files'])} files to {result['repo_type']} {args.repo_id}:")
    else:
        print(f"Pushed {len(result['files'])} files to {result['url']}:")
    for name in result["files"]:
        print(f"  {name}")
    if args.dry_run and result.get("card"):
        print("\nREADME.md as it would be uploaded:\n")
        print(result["card"])
    return result
