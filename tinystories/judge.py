"""GPT-Eval, the paper's LLM-as-judge protocol: prompts, robust parsing of grades, and the grading loop.

The judge sees ``beginning***completion`` in a two-turn dialogue: first a free assessment (grammar, consistency
with the beginning, whether the split sentence is completed), then a request for grades out of 10 and the age
group of the writer (A: 3 or under, B: 4-5, C: 6-7, D: 8-9, E: 10-12, F: 13-16) in a fixed format. Replies vary
("Grammar: 8/10", "grammar - 8", "8 out of 10", JSON, markdown bold, "B (4-5)", "4-5 years"): ``parse_grades``
reads all of them; a reply that still cannot be read is asked again (a new turn naming the format) up to
``max_reasks`` times, then counted as ungraded. A grade is never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import EngineConfig, LLMEngine

AGE_GROUPS = {"A": "3 or under", "B": "4-5", "C": "6-7", "D": "8-9", "E": "10-12", "F": "13-16"}
AXES = {
    "default": ("grammar", "creativity", "consistency"),
    "instruct": ("grammar", "creativity", "consistency", "plot"),
}

ASSESSMENT_PROMPT = (
    "In the following exercise, the student is given a beginning of a story. The student needs to complete it into "
    "a full story. The exercise tests the student's language abilities and creativity. The symbol *** marks the "
    "separator between the prescribed beginning and the student's completion:\n\n{beginning}***{completion}\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** symbol). "
    "Is it grammatically correct? Is it consistent with the beginning of the story? Pay special attention to "
    "whether the student manages to complete the sentence which is split in the middle by the separator ***."
)
INSTRUCT_ASSESSMENT_PROMPT = (
    "In the following exercise, the student is given instructions for a story and writes the story. The exercise "
    "tests the student's language abilities, creativity and ability to follow instructions.\n\nInstructions:\n"
    "{beginning}\n\nThe student's story:\n{completion}\n\nPlease provide your general assessment of the story. Is "
    "it grammatically correct? Does it follow every instruction (the words, the sentence, the features and the "
    "summary it was given)? Does the plot make sense?"
)
GRADE_PROMPT = (
    "Now, grade the student's completion in terms of {axes_text}, each out of 10. Moreover, please provide your "
    "best guess of what the age of the student might be, as reflected from the completion. Choose from possible "
    "age groups: A: 3 or under. B: 4-5. C: 6-7. D: 8-9. E: 10-12. F: 13-16.\n\nUse exactly this format: {fmt}"
)
REASK_PROMPT = "I could not read your grades. Please answer again, in exactly this format and nothing else: {fmt}"


def grade_format(axes: tuple[str, ...]) -> str:
    return ", ".join(f"{a.capitalize()}: X/10" for a in axes) + ", Age group: Y"


def grade_prompt(axes: tuple[str, ...]) -> str:
    names = {"consistency": "consistency with the story's beginning", "plot": "whether the plot makes sense"}
    axes_text = ", ".join(names.get(a, a) for a in axes)
    return GRADE_PROMPT.format(axes_text=axes_text, fmt=grade_format(axes))


_NUMBER = r"(\d+(?:\.\d+)?)"


def _age_group(text: str) -> str | None:
    match = re.search(r"age(?:\s*group)?[^A-Za-z0-9]{0,6}([A-F])\b", text, re.IGNORECASE)
    if match:
        return match.group(1).upper()
    ranges = {"3 or under": "A", "4-5": "B", "6-7": "C", "8-9": "D", "10-12": "E", "13-16": "F"}
    tail = text[text.lower().rfind("age") :] if "age" in text.lower() else text
    normalised = re.sub(r"\s*[–-]\s*", "-", tail)
    for words, letter in ranges.items():
        if re.search(rf"(?<![\d-]){re.escape(words)}(?![\d-])", normalised):
            return letter
    return None


def _from_json(text: str, axes: tuple[str, ...]) -> dict[str, Any] | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
    grades: dict[str, Any] = {}
    for axis in axes:
        value = lowered.get(axis)
        if isinstance(value, str):
            found = re.search(_NUMBER, value)
            value = float(found.group(1)) if found else None
        if isinstance(value, (int, float)) and 0 <= value <= 10:
            grades[axis] = float(value)
    age = lowered.get("age_group") or lowered.get("age")
    grades["age_group"] = _age_group(f"age group: {age}") if age is not None else None
    return grades


def parse_grades(text: str, axes: tuple[str, ...] = AXES["default"]) -> dict[str, Any] | None:
    """``{axis: grade (0-10), ..., "age_group": letter or None}``, or None if any axis cannot be read."""
    if not text:
        return None
    grades = _from_json(text, axes)
    if grades is None or len(grades) < len(axes) + 1:
        clean = text.replace("*", "").replace("_", " ")
        grades = {}
        for axis in axes:
            pattern = rf"\b{axis}\b[^0-9\n]{{0,40}}?{_NUMBER}\s*(?:/\s*10|out of 10|points)?"
            match = re.search(pattern, clean, re.IGNORECASE)
            if match and 0 <= float(match.group(1)) <= 10:
                grades[axis] = float(match.group(1))
        grades["age_group"] = _age_group(clean)
    if any(axis not in grades for axis in axes):
        return None
    return grades


def bootstrap_ci(values: list[float], samples: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the mean."""
    if not values:
        return [float("nan"), float("nan")]
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


@dataclass
class JudgeSettings:
    judge_model: str = "gpt-4o"
    base_url: str | None = None
    max_concurrency: int = 16
    cache_dir: str | None = ".tinystories_cache"
    temperature: float = 0.0
    max_tokens: int = 400
    max_reasks: int = 2
    max_retries: int = 6
    request_timeout: float = 120.0
    budget_usd: float | None = None
    progress: bool = True
    prices: dict = field(default_factory=dict)
    structured_output: bool = False  # ask for the grades as JSON with a schema (servers that support response_format)


def grades_schema(axes: tuple[str, ...]) -> dict[str, Any]:
    """``response_format`` asking for the grades as a JSON object (OpenAI structured outputs, vLLM guided JSON)."""
    properties = {axis: {"type": "integer", "minimum": 1, "maximum": 10} for axis in axes}
    properties["age_group"] = {"type": "string", "enum": list(AGE_GROUPS)}
    schema = {
        "type": "object",
        "properties": properties,
        "required": [*axes, "age_group"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "grades", "strict": True, "schema": schema}}


def grade(
    predictions: list[str], references: list[str], config_name: str = "default", settings: JudgeSettings | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grade completions; returns (scores with CIs, age distribution, counts, usage; per-sample records)."""
    settings = settings or JudgeSettings()
    if config_name not in AXES:
        raise ValueError(f"Unknown GPT-Eval config {config_name!r}; choose one of: {', '.join(AXES)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    axes = AXES[config_name]
    engine = LLMEngine(
        EngineConfig(
            model=settings.judge_model,
            base_url=settings.base_url,
            max_concurrency=settings.max_concurrency,
            cache_dir=settings.cache_dir,
            max_retries=settings.max_retries,
            request_timeout=settings.request_timeout,
            budget_usd=settings.budget_usd,
            progress=settings.progress,
            prices=settings.prices,
        )
    )
    params = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
    template = ASSESSMENT_PROMPT if config_name == "default" else INSTRUCT_ASSESSMENT_PROMPT
    dialogues = [
        [{"role": "user", "content": template.format(beginning=ref, completion=pred)}]
        for pred, ref in zip(predictions, references)
    ]
    records: list[dict[str, Any]] = [{"grades": None, "error": None, "asks": 0} for _ in dialogues]
    assessments = engine.run(dialogues, **params)
    pending = []
    for i, result in enumerate(assessments):
        if result.ok:
            dialogues[i] = dialogues[i] + [
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": grade_prompt(axes)},
            ]
            records[i]["assessment"] = result.text
            pending.append(i)
        else:
            records[i]["error"] = result.error
    grade_params = {**params, "response_format": grades_schema(axes)} if settings.structured_output else params
    for _ask in range(settings.max_reasks + 1):  # the first grade request, then the re-asks
        if not pending:
            break
        replies = engine.run([dialogues[i] for i in pending], **grade_params)
        still = []
        for i, reply in zip(pending, replies):
            records[i]["asks"] += 1
            if not reply.ok:
                records[i]["error"] = reply.error
                continue
            parsed = parse_grades(reply.text, axes)
            records[i]["reply"] = reply.text
            if parsed is not None:
                records[i]["grades"] = parsed
                continue
            records[i]["error"] = "unparseable grades"
            dialogues[i] = dialogues[i] + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": REASK_PROMPT.format(fmt=grade_format(axes))},
            ]
            still.append(i)
        pending = still
    graded = [r for r in records if r["grades"] is not None]
    for r in graded:
        r["error"] = None
    scores: dict[str, Any] = {}
    for axis in axes:
        values = [r["grades"][axis] for r in graded]
        scores[axis] = float(np.mean(values)) if values else float("nan")
        scores[f"{axis}_ci"] = bootstrap_ci(values)
    ages = [r["grades"]["age_group"] for r in graded if r["grades"].get("age_group")]
    scores["age_group"] = {letter: ages.count(letter) / len(ages) for letter in AGE_GROUPS} if ages else {}
    scores["num_graded"] = len(graded)
    scores["num_ungraded"] = len(records) - len(graded)
    stats = engine.stats
    scores["usage"] = {
        "requests_sent": stats.sent,
        "requests_cached": stats.cached,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "cost_usd": round(stats.cost_usd, 6),
    }
    return scores, records
