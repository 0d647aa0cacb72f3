"""The evaluation sets written for this project (``tinystories/resources/eval``): GPT-Eval story beginnings that stop
mid-sentence, the paper's three probe categories (factual knowledge, reasoning, context tracking) with expected
answer keywords, and TinyStories-Instruct instruction sets; and the prompts an evaluation sends from them."""

from __future__ import annotations

import json
import os
import re

from ..errors import EvaluationError
from ..resources import INSTRUCT_PROMPTS, PROBES, STORY_BEGINNINGS, resource_path
from ..story_formats import INSTRUCT_PARTS, instruct_text

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


def load_prompts(args) -> list[dict[str, str]]:
    """``[{"id", "prompt" (the model's input), "reference" (what the judge sees before the completion)}]``."""
    if args.prompts_file and not os.path.isfile(args.prompts_file):
        raise EvaluationError(f"prompts_file {args.prompts_file} does not exist")
    try:
        return _load_prompts(args)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise EvaluationError(f"unusable prompts_file {args.prompts_file}: {e}") from e


def _load_prompts(args) -> list[dict[str, str]]:
    if args.config_name == "default":
        rows = load_story_beginnings(args.prompts_file)
        prompts = []
        for number, row in enumerate(rows, 1):
            if not isinstance(row.get("beginning"), str) or not row["beginning"].strip():
                raise EvaluationError(
                    f"{args.prompts_file or 'story_beginnings.jsonl'}, line {number}: no 'beginning'"
                )
            prompts.append(
                {"id": str(row.get("id", number)), "prompt": row["beginning"], "reference": row["beginning"]}
            )
    else:
        prompts = []
        for number, row in enumerate(load_instruct_prompts(args.prompts_file), 1):
            model_input, shown = instruct_prompt(row)
            prompts.append({"id": str(row.get("id", number)), "prompt": model_input, "reference": shown})
    if not prompts:
        raise EvaluationError(f"no prompts in {args.prompts_file}")
    return prompts[: args.max_prompts] if args.max_prompts else prompts
