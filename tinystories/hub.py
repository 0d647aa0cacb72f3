"""``tinystories push {model,dataset,metric} PATH REPO_ID``: publish to the Hugging Face Hub with a rendered card.

    tinystories push model runs/33m me/tinystories-33m --eval_results outputs/gpt_eval/runs--33m/results.json
    tinystories push dataset data/tinystories-gpt-4o-mini me/tinystories-gpt-4o-mini --private
    tinystories push metric - me/gpt_eval          # '-' is the GPT-Eval module bundled with the package

Cards are Jinja templates of ``hub_cards/`` (installed as ``tinystories.hub_cards``) rendered with huggingface_hub's
``ModelCard`` / ``DatasetCard`` / ``SpaceCard``, so their YAML is what the Hub validates: the model card's
``model-index`` holds the GPT-Eval scores, the dataset card keeps the ``configs`` that ``load_dataset`` reads.
A push is ``HfApi.create_repo(exist_ok=True)`` (+ ``create_branch`` for ``--revision``) and one ``upload_folder``
that skips checkpoints, optimizer states, request caches, ``.env`` files, SQLite files, logs and
``training_args.bin`` (a pickle that can hold ``hub_token``). The token comes from ``HF_TOKEN`` or ``hf auth login``
and is never written to any file. ``--dry_run`` renders the card and lists the files without any network access.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from typing import Any

KINDS = ("model", "dataset", "metric")
#: The Hub repository type of each kind: a metric is published as a Gradio Space.
REPO_TYPES = {"model": "model", "dataset": "dataset", "metric": "space"}
HUB = "https://huggingface.co"

#: Written by ``tinystories train``: the resolved recipe of the run (what the card's recipe table shows).
RECIPE_FILE = "recipe.yaml"
RESULTS_FILE = "all_results.json"
#: GPT-Eval results picked up from the model folder (``results.json`` of ``tinystories evaluate``, copied there).
GPT_EVAL_FILE = "gpt_eval_results.json"
#: ``PATH`` of ``push metric`` meaning the GPT-Eval module bundled with the package.
BUNDLED_METRIC = ("-", "default", "gpt_eval")

MODEL_TAGS = ["tinystories", "gpt-neo", "text-generation"]
GPT_EVAL_DATASET_TYPE = "tinystories-gpt-eval"
GPT_EVAL_DATASET_NAMES = {
    "default": "TinyStories GPT-Eval story beginnings",
    "instruct": "TinyStories GPT-Eval instructions",
}
GPT_EVAL_AXES = ("grammar", "creativity", "consistency", "plot")

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


class PushError(ValueError):
    """A push that cannot run: a PATH that is not a folder of its kind, unreadable results, no token."""


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
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hub_cards", name)
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


def hub_dataset_of_file(path: str | None) -> str | None:
    """``owner/name`` of an ``hf://datasets/owner/name[@revision]/file`` path, else None."""
    match = re.match(r"hf://datasets/([^/@]+/[^/@]+)", path or "")
    return match.group(1) if match else None


def training_sources(model_args, data_args) -> dict[str, Any]:
    """The Hub ids a training run started from: ``{"base_model": id or None, "datasets": [ids]}``.

    Decided while training, when local paths exist: a ``model_name_or_path`` or ``dataset_name`` that is not a
    local path is a Hub id; ``hf://datasets/...`` files name their dataset.
    """
    base = model_args.model_name_or_path
    datasets = []
    if data_args.dataset_name and not os.path.exists(data_args.dataset_name):
        datasets.append(data_args.dataset_name)
    for path in (data_args.train_file, data_args.validation_file):
        repo = hub_dataset_of_file(path)
        if repo and repo not in datasets:
            datasets.append(repo)
    return {"base_model": base if base and not os.path.exists(base) else None, "datasets": datasets}


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
    from .models import PRESETS

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


def load_eval_results(paths: list[str]) -> list[dict[str, Any]]:
    """GPT-Eval ``results.json`` files (of ``tinystories evaluate``), one per config (a later file wins)."""
    by_config: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                results = json.load(f)
        except FileNotFoundError:
            raise PushError(f"--eval_results: {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise PushError(f"--eval_results: {path} is not JSON ({e})") from None
        scores = results.get("scores") if isinstance(results, dict) else None
        if not isinstance(scores, dict) or not all(isinstance(scores.get(a), (int, float)) for a in GPT_EVAL_AXES[:3]):
            raise PushError(
                f"--eval_results: {path} is not a GPT-Eval results.json of tinystories evaluate "
                "(needs scores.grammar, scores.creativity and scores.consistency)"
            )
        by_config[results.get("config_name") or "default"] = results
    return [by_config[c] for c in sorted(by_config, key=lambda c: (c != "default", c))]


def gpt_eval_metrics(results: list[dict[str, Any]]) -> list:
    """``EvalResult`` entries of the card's ``model-index``: one per GPT-Eval axis and config."""
    from huggingface_hub import EvalResult

    entries = []
    for result in results:
        config = result.get("config_name") or "default"
        judge = result.get("judge_model") or "unknown judge"
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
    if sources:
        lines.append(
            "Validation: the data's validation split, or "
            f"{recipe.get('validation_split_percentage', 5)}% of the training stories held out when it has none."
        )
    return " ".join(lines)


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


def render_model_card(
    model_dir: str,
    eval_results: list[dict[str, Any]] | None = None,
    repo_id: str | None = None,
    *,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
):
    """The model card (``hub_cards/model_card.md``) of a ``tinystories train`` output folder.

    Reads ``config.json`` (architecture, preset), ``all_results.json`` (eval loss, tokens, sample story, the Hub
    ids trained from), ``recipe.yaml`` (the recipe) and the weights' headers (parameters). ``eval_results`` are
    GPT-Eval ``results.json`` contents (``load_eval_results``): they become the ``model-index`` and a table.
    ``base_model``/``datasets`` override what training recorded.
    """
    from huggingface_hub import ModelCard, ModelCardData

    check_model_folder(model_dir)
    config = _read_json(os.path.join(model_dir, "config.json"))
    adapter = _read_json(os.path.join(model_dir, "adapter_config.json"))
    results = _read_json(os.path.join(model_dir, RESULTS_FILE)) or {}
    recipe = _load_recipe(model_dir)
    eval_results = eval_results or []

    base_model = base_model or results.get("base_model")
    datasets = list(datasets) if datasets else list(results.get("datasets") or [])
    if not datasets:  # a folder written before training recorded its sources: hf:// files are unambiguous
        for key in ("train_file", "validation_file"):
            repo = hub_dataset_of_file(recipe.get(key))
            if repo and repo not in datasets:
                datasets.append(repo)
    model_name = (repo_id or os.path.basename(os.path.abspath(model_dir))).split("/")[-1]

    architecture, architecture_note = [], ""
    preset = "custom"
    if config:
        preset = find_preset(config)
        parameters = count_saved_parameters(model_dir) or results.get("num_parameters")
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
    elif adapter:
        architecture_note = (
            f"LoRA adapters (r {adapter.get('r')}, alpha {adapter.get('lora_alpha')}, modules "
            f"{', '.join(sorted(adapter.get('target_modules') or []))}) for the base model "
            f"`{adapter.get('base_model_name_or_path')}`: load them with peft."
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
        eval_loss_text = "No eval loss was recorded (no `all_results.json`)."

    model_index = gpt_eval_metrics(eval_results)
    if isinstance(eval_loss, (int, float)) and len(datasets) == 1:
        from huggingface_hub import EvalResult

        model_index.insert(
            0,
            EvalResult(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_type=datasets[0],
                dataset_name=datasets[0],
                dataset_config=recipe.get("dataset_config_name"),
                dataset_split="validation",
                metric_type="loss",
                metric_value=round(float(eval_loss), 4),
                metric_name="Eval loss",
            ),
        )
    all_tags = list(MODEL_TAGS)
    if preset != "custom":
        all_tags.append(f"tinystories-{preset}")
    if eval_results:
        all_tags.append("gpt-eval")
    all_tags += tags or []
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
    return ModelCard.from_template(
        card_data,
        template_str=card_template("model_card.md"),
        model_name=model_name,
        repo_id=repo_id or os.path.abspath(model_dir),
        architecture=architecture,
        architecture_note=architecture_note,
        training_data=_training_data_text(recipe, results, datasets),
        recipe_rows=_recipe_rows(recipe, results, base_model),
        recipe_note=(
            f"The full recipe is `{RECIPE_FILE}` in this repository: `tinystories train {RECIPE_FILE}` runs it again."
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


def render_dataset_card(dataset_dir: str, repo_id: str | None = None, license: str | None = None):
    """The dataset card of a ``tinystories generate`` folder, rendered again from its ``generation.json`` by the
    same code as ``generate`` (``generate.dataset_card``) with the Hub id in its examples; a folder without
    ``generation.json`` keeps its README card. Either way the card must declare ``configs`` whose files exist."""
    from huggingface_hub import DatasetCard

    summary_path = os.path.join(dataset_dir, "generation.json")
    readme = os.path.join(dataset_dir, "README.md")
    if os.path.isfile(summary_path):
        import dataclasses

        from .generate import GenerateArguments, dataset_card

        summary = _read_json(summary_path) or {}
        known = {f.name for f in dataclasses.fields(GenerateArguments)}
        arguments = {k: v for k, v in summary.get("arguments", {}).items() if k in known}
        arguments["output_dir"] = dataset_dir
        if arguments.get("vocabulary_file") and not os.path.isfile(arguments["vocabulary_file"]):
            raise PushError(
                f"{summary_path} names the vocabulary {arguments['vocabulary_file']}, which is gone: push the "
                "folder's own README with --card keep"
            )
        try:
            card = dataset_card(
                GenerateArguments(**arguments),
                summary["counts"],
                summary["engine"],
                summary["filters"],
                repo_id=repo_id,
                **({"license": license} if license else {}),
            )
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
    return card


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
        from .metrics import GPT_EVAL

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


def stage_metric(metric_dir: str, staging_dir: str, repo_id: str, requirement: str = "tinystories") -> None:
    """Write the Space's files into ``staging_dir``: the module as ``<space name>.py`` (the file that
    ``evaluate.load("owner/space")`` downloads), its sibling ``.py`` files, ``README.md``, ``app.py`` and
    ``requirements.txt``."""
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
        f.write(_render("metric_requirements.txt", requirement=requirement))


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
    """The paths ``upload_folder`` sends for ``folder`` with ``ignore_patterns`` (its own selection logic)."""
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    paths = [
        os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
        for root, _, names in os.walk(folder)
        for name in names
    ]
    return sorted(filter_repo_objects(paths, ignore_patterns=ignore_patterns + list(DEFAULT_IGNORE_PATTERNS)))


def require_token(token: str | None = None) -> None:
    from huggingface_hub import get_token

    if not (token or get_token()):
        raise PushError("No Hugging Face token: set HF_TOKEN or run `hf auth login`")


def upload(
    folder: str,
    repo_id: str,
    repo_type: str,
    *,
    ignore_patterns: list[str],
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    space_sdk: str | None = None,
) -> dict[str, Any]:
    """``create_repo(exist_ok=True)``, ``create_branch`` for a revision, then one ``upload_folder``."""
    from huggingface_hub import HfApi

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
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    files = files_to_upload(folder, ignore_patterns)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message,
        ignore_patterns=list(ignore_patterns),
    )
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    tree = f"/tree/{revision}" if revision and revision != "main" else ""
    return {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "url": f"{HUB}/{prefix}{repo_id}{tree}",
        "commit_url": getattr(info, "commit_url", None),
        "files": files,
    }


def _dry_run(folder: str, ignore_patterns: list[str], repo_id: str, repo_type: str) -> dict[str, Any]:
    files = files_to_upload(folder, ignore_patterns)
    return {"repo_id": repo_id, "repo_type": repo_type, "url": None, "commit_url": None, "files": files}


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
    """Render the model card into ``model_dir/README.md`` and upload the folder (no checkpoints, no optimizer
    states, no ``training_args.bin``). ``eval_results``: GPT-Eval ``results.json`` paths; ``model_dir/
    gpt_eval_results.json`` is used too. ``card="keep"`` uploads the folder's own README.md instead."""
    check_model_folder(model_dir)
    if card == "render":
        paths = list(eval_results or [])
        own = os.path.join(model_dir, GPT_EVAL_FILE)
        if os.path.isfile(own) and os.path.abspath(own) not in map(os.path.abspath, paths):
            paths.insert(0, own)
        rendered = render_model_card(
            model_dir,
            load_eval_results(paths),
            repo_id,
            license=license,
            tags=tags,
            base_model=base_model,
            datasets=datasets,
        )
        rendered.save(os.path.join(model_dir, "README.md"))
    elif not os.path.isfile(os.path.join(model_dir, "README.md")):
        raise PushError(f"--card keep: {model_dir} has no README.md")
    if dry_run:
        return _dry_run(model_dir, MODEL_IGNORE_PATTERNS, repo_id, REPO_TYPES["model"])
    return upload(
        model_dir,
        repo_id,
        REPO_TYPES["model"],
        ignore_patterns=MODEL_IGNORE_PATTERNS,
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
    """Render the dataset card again (configs kept) into ``dataset_dir/README.md`` and upload the Parquet files,
    the card and ``generation.json`` (never the request cache)."""
    if not os.path.isdir(dataset_dir):
        raise PushError(f"{dataset_dir} is not a folder (pass the output_dir of tinystories generate)")
    if card == "render":
        render_dataset_card(dataset_dir, repo_id, license).save(os.path.join(dataset_dir, "README.md"))
    else:
        from huggingface_hub import DatasetCard

        readme = os.path.join(dataset_dir, "README.md")
        if not os.path.isfile(readme):
            raise PushError(f"--card keep: {dataset_dir} has no README.md")
        check_dataset_card(dataset_dir, DatasetCard.load(readme))
    if dry_run:
        return _dry_run(dataset_dir, DATASET_IGNORE_PATTERNS, repo_id, REPO_TYPES["dataset"])
    return upload(
        dataset_dir,
        repo_id,
        REPO_TYPES["dataset"],
        ignore_patterns=DATASET_IGNORE_PATTERNS,
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
    requirement: str = "tinystories",
    dry_run: bool = False,
    staging_dir: str | None = None,
) -> dict[str, Any]:
    """Publish a metric module as a Gradio Space: the module, a README with the Space YAML and the module's card,
    ``app.py`` (evaluate's widget) and ``requirements.txt`` (``requirement`` installs tinystories)."""
    folder = metric_folder(metric_path)
    with tempfile.TemporaryDirectory(prefix="tinystories-space-") as tmp:
        staging = staging_dir or tmp
        os.makedirs(staging, exist_ok=True)
        stage_metric(folder, staging, repo_id, requirement)
        if dry_run:
            return _dry_run(staging, COMMON_IGNORE_PATTERNS, repo_id, REPO_TYPES["metric"])
        return upload(
            staging,
            repo_id,
            REPO_TYPES["metric"],
            ignore_patterns=COMMON_IGNORE_PATTERNS,
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
    parser.add_argument("--private", action="store_true", help="Create the repository private.")
    parser.add_argument("--revision", default=None, help="Branch to push to (created if missing).")
    parser.add_argument("--commit_message", default=None, help="Message of the commit.")
    parser.add_argument(
        "--eval_results",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help=f"model: GPT-Eval results.json file(s) of tinystories evaluate (PATH/{GPT_EVAL_FILE} is used too).",
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
        help="render: write the rendered card to PATH/README.md (default); keep: upload PATH's README.md as is.",
    )
    parser.add_argument(
        "--space_requirement",
        default="tinystories",
        help="metric: the requirements.txt line that installs tinystories in the Space, e.g. "
        "'tinystories @ git+https://github.com/OWNER/tinystories'.",
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Render the card and list the files to upload; no network, no token."
    )
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    common = {"private": args.private, "revision": args.revision, "commit_message": args.commit_message}
    try:
        if args.kind != "model" and (args.eval_results or args.tags or args.base_model or args.datasets):
            raise PushError("--eval_results, --tags, --base_model and --datasets apply to push model only")
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
    return result
