"""The evaluation sets written for this project (``tinystories/data/eval``): GPT-Eval story beginnings that stop
mid-sentence, the paper's three probe categories (factual knowledge, reasoning, context tracking) with expected
answer keywords, and TinyStories-Instruct instruction sets."""

from __future__ import annotations

import json
import re
from importlib import resources

PROBE_CATEGORIES = ("factual", "reasoning", "context")


def _read_jsonl(name: str, path: str | None = None) -> list[dict]:
    source = path or str(resources.files("tinystories") / "data" / "eval" / name)
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
    return _read_jsonl("story_beginnings.jsonl", path)


def load_probes(path: str | None = None) -> list[dict]:
    """``[{"id", "category", "prompt", "answer": [keywords]}]``: 10 prompts per probe category."""
    return _read_jsonl("probes.jsonl", path)


def load_instruct_prompts(path: str | None = None) -> list[dict]:
    """``[{"id", "words", "features", "summary", "sentence"}]``: 50 instruction sets."""
    return _read_jsonl("instruct_prompts.jsonl", path)


def probe_passed(completion: str, answers: list[str], first_words: int = 5) -> bool:
    """The cheap automatic probe check: an expected keyword among the first words of the completion."""
    words = re.findall(r"[a-z0-9]+", completion.lower())[:first_words]
    return any(answer.lower() in words for answer in answers)
