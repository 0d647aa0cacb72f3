"""The evaluation sets written for this project (``tinystories/resources/eval``): GPT-Eval story beginnings that stop
mid-sentence, the paper's three probe categories (factual knowledge, reasoning, context tracking) with expected
answer keywords, and TinyStories-Instruct instruction sets; and the prompts an evaluation sends from them."""

from __future__ import annotations

import json
import os
import re

from ..errors import DataError, EvaluationError
from ..resources import INSTRUCT_PROMPTS, PROBES, STORY_BEGINNINGS, resource_path
from ..story_formats import INSTRUCT_PARTS, download_dataset_file, instruct_text
from .judge_prompts import instruction_of

PROBE_CATEGORIES = ("factual", "reasoning", "context")


def _read_jsonl(name: str, path: str | None = None) -> list[dict]:
    source = path or resource_path(name)
    rows = []
    with open(source, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{source}, line {number}: not valid JSON ({e})") from None
    return rows


def load_story_beginnings(path: str | None = None) -> list[dict]:
    """``[{"id", "beginning"}]``: 50 beginnings that stop in the middle of a sentence."""
    return _read_jsonl(STORY_BEGINNINGS, path)


def load_probes(path: str | None = None) -> list[dict]:
    """``[{"id", "category", "prompt", "answer": [keywords]}]``: 10 prompts per probe category."""
    return _read_jsonl(PROBES, path)


def load_instruct_prompts(path: str | None = None) -> list[dict]:
    """``[{"id", "words", "features", "summary", "sentence"}]``: 50 instruction sets."""
    return _read_jsonl(INSTRUCT_PROMPTS, path)


def probe_passed(completion: str, answers: list[str], first_words: int = 5) -> bool:
    """The cheap automatic probe check: an expected keyword among the first words of the completion."""
    words = re.findall(r"[a-z0-9]+", completion.lower())[:first_words]
    return any(answer.lower() in words for answer in answers)


# -- the prompts of an evaluation ---------------------------------------------------------------------------------
def instruct_prompt(instructions: dict) -> tuple[str, str]:
    """``(model input, the instructions shown to the judge)`` of an instruction set, in the TinyStories-Instruct
    layout the models are trained on (``Summary: / Features: / Random sentence: / Words:`` then ``Story:``)."""
    values = {
        "Summary": instructions.get("summary") or "",
        "Features": ", ".join(instructions.get("features") or []),
        "Random sentence": instructions.get("sentence") or "",
        "Words": ", ".join(instructions.get("words") or []),
    }
    ordered = {part: values[part] for part in INSTRUCT_PARTS if values[part]}
    if not ordered:
        raise EvaluationError(f"instruction set {instructions.get('id', '?')} has no instruction")
    model_input = instruct_text(ordered)
    return model_input, model_input.rsplit("\nStory: ", 1)[0]


#: The paper's GPT-Eval set: a YAML list of story beginnings in the dataset repo of the TinyStories release.
OFFICIAL_PROMPTS_REPO = "roneneldan/TinyStories"
OFFICIAL_PROMPTS_FILE = "Evaluation prompts.yaml"


def official_prompts_path() -> str:
    """The local path of ``Evaluation prompts.yaml`` (downloaded once into the Hub cache, then read from it)."""
    try:
        return download_dataset_file(OFFICIAL_PROMPTS_REPO, OFFICIAL_PROMPTS_FILE)
    except DataError as e:  # offline, no network, Hub error: one line saying what to do
        raise EvaluationError(
            f"prompts_file official: cannot download '{OFFICIAL_PROMPTS_FILE}' from the Hub dataset "
            f"{OFFICIAL_PROMPTS_REPO} ({e}); without Hub access, download it from "
            f"https://huggingface.co/datasets/{OFFICIAL_PROMPTS_REPO} elsewhere and set prompts_file to its path"
        ) from None


def read_prompt_items(path: str) -> list[tuple[str, object]]:
    """``[(where, item)]`` of a prompts file: a YAML (``.yaml``/``.yml``) or JSON (``.json``) list, or JSONL (one
    item a line); an item is a string or an object. ``where`` ("item 3", "line 3") locates it for errors."""
    lowered = path.lower()
    if lowered.endswith((".yaml", ".yml", ".json")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if lowered.endswith(".json"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                if not e.msg.startswith("Extra data"):  # a .json file of JSON lines is read as JSONL below
                    raise ValueError(f"{path}: not valid JSON ({e})") from None
                return [(f"line {n}", row) for n, row in enumerate(_read_jsonl(path, path), 1)]
        else:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of prompts (strings or objects), found {type(data).__name__}")
        return [(f"item {n}", item) for n, item in enumerate(data, 1)]
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append((f"line {number}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({e})") from None
    return rows


def load_prompts(args) -> list[dict[str, str]]:
    """``[{"id", "prompt" (the model's input), "reference" (what the judge sees before the completion)}]``.

    ``prompts_file``: None (the bundled set of the config), ``official`` (the paper's ``Evaluation prompts.yaml``
    from the Hub), or a YAML/JSON list or a JSONL file of strings (story beginnings; for ``instruct``, Instruct
    texts) or of objects (``{"id", "beginning"}``; for ``instruct``, ``{"id", "words", "features", "summary",
    "sentence"}``)."""
    path = args.prompts_file
    if path == "official":
        path = official_prompts_path()
    elif path and not os.path.isfile(path):
        raise EvaluationError(f"prompts_file {path} does not exist")
    try:
        return _load_prompts(args, path)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise EvaluationError(f"unusable prompts_file {path}: {e}") from e


def _load_prompts(args, path: str | None) -> list[dict[str, str]]:
    if path is None:
        bundled = STORY_BEGINNINGS if args.config_name == "default" else INSTRUCT_PROMPTS
        items = [(f"line {n}", row) for n, row in enumerate(_read_jsonl(bundled), 1)]
    else:
        items = read_prompt_items(path)
    source = path or "the bundled prompts"
    prompts = []
    for number, (where, item) in enumerate(items, 1):
        if args.config_name == "default":
            if isinstance(item, str):
                item = {"beginning": item.rstrip()}  # a YAML block scalar ends with a newline
            if not isinstance(item, dict):
                raise EvaluationError(
                    f"{source}, {where}: expected a story beginning (a string) or an object with 'beginning', "
                    f"found {type(item).__name__}"
                )
            if not isinstance(item.get("beginning"), str) or not item["beginning"].strip():
                raise EvaluationError(f"{source}, {where}: no 'beginning'")
            prompts.append(
                {"id": str(item.get("id", number)), "prompt": item["beginning"], "reference": item["beginning"]}
            )
        else:
            if isinstance(item, str):
                try:
                    item = instruction_of(item)
                except ValueError as e:
                    raise EvaluationError(f"{source}, {where}: {e}") from None
            if not isinstance(item, dict):
                raise EvaluationError(
                    f"{source}, {where}: expected an instruction (an Instruct text or an object with words, "
                    f"features, summary, sentence), found {type(item).__name__}"
                )
            model_input, shown = instruct_prompt(item)
            prompts.append({"id": str(item.get("id", number)), "prompt": model_input, "reference": shown})
    if not prompts:
        raise EvaluationError(f"no prompts in {source}")
    return prompts[: args.max_prompts] if args.max_prompts else prompts
