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
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import EngineConfig, LLMEngine

logger = logging.getLogger(__name__)

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
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 10:
            grades[axis] = float(value)
    age = lowered.get("age_group") or lowered.get("age")
    grades["age_group"] = _age_group(f"age group: {age}") if age is not None else None
    return grades


def _json_spans(text: str, axes: tuple[str, ...]) -> dict[str, int]:
    spans = {}
    for axis in axes:
        match = re.search(rf'"{axis}"\s*:\s*"?{_NUMBER}', text, re.IGNORECASE)
        if match:
            spans[axis] = match.start(1)
    return spans


def locate_grades(text: str, axes: tuple[str, ...] = AXES["default"]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """``(grades, spans)``: the grades of :func:`parse_grades` and, per axis, the offset in ``text`` where the
    number of its grade starts (used to find the score token among the reply's logprobs), or None."""
    if not text:
        return None
    grades = _from_json(text, axes)
    if grades is not None and len(grades) == len(axes) + 1:
        return grades, _json_spans(text, axes)
    # markdown emphasis and snake_case become spaces, so offsets in `clean` are offsets in `text`
    clean = text.replace("*", " ").replace("_", " ")
    grades, spans = {}, {}
    for axis in axes:
        pattern = rf"\b{axis}\b[^0-9\n]{{0,40}}?{_NUMBER}\s*(?:/\s*10|out of 10|points)?"
        match = re.search(pattern, clean, re.IGNORECASE)
        if match and 0 <= float(match.group(1)) <= 10:
            grades[axis] = float(match.group(1))
            spans[axis] = match.start(1)
    grades["age_group"] = _age_group(clean)
    if any(axis not in grades for axis in axes):
        return None
    return grades, spans


def parse_grades(text: str, axes: tuple[str, ...] = AXES["default"]) -> dict[str, Any] | None:
    """``{axis: grade (0-10), ..., "age_group": letter or None}``, or None if any axis cannot be read."""
    located = locate_grades(text, axes)
    return located[0] if located else None


def weighted_grades(logprobs: dict[str, Any] | None, spans: dict[str, int], text: str | None = None) -> dict[str, Any]:
    """The probability-weighted grade of each axis from the reply's chat ``logprobs``.

    For the token where an axis' grade starts, the alternatives in ``top_logprobs`` that are whole grades (0-10)
    give ``sum p(s) * s / sum p(s)``; ``{axis}_mass`` is ``sum p(s)``, the share of the judge's probability that
    fell on readable grades. Axes whose token cannot be found (no logprobs, a grade split over several tokens that
    do not line up with the text) are left out, never guessed. With ``text`` (the reply the spans were read from),
    an axis counts only if the tokens spell exactly that text up to its grade.
    """
    content = (logprobs or {}).get("content") or []
    if not content or not spans:
        return {}
    text_of_tokens = "".join(token.get("token") or "" for token in content)
    starts, offset = [], 0
    for token in content:
        starts.append(offset)
        offset += len(token.get("token") or "")
    out: dict[str, Any] = {}
    for axis, position in spans.items():
        index = _token_at(starts, offset, position)
        if index is None:
            continue
        token = content[index]
        written = re.match(r"\d+(?:\.\d+)?", text_of_tokens[position:])
        if not written or (token.get("token") or "").strip() != written.group(0):
            continue  # the grade is not one whole token ("1" + "0"): no weighted grade rather than a wrong one
        end = position + len(written.group(0))
        if text is not None and text_of_tokens[:end] != text[:end]:
            continue  # the tokens do not spell the reply the grade was read from
        alternatives = token.get("top_logprobs") or [{"token": token.get("token"), "logprob": token.get("logprob")}]
        numerator = mass = 0.0
        for alternative in alternatives:
            score = (alternative.get("token") or "").strip()
            if not re.fullmatch(r"\d{1,2}", score) or int(score) > 10 or alternative.get("logprob") is None:
                continue
            p = math.exp(alternative["logprob"])
            numerator += p * int(score)
            mass += p
        if mass > 0:
            out[axis] = numerator / mass
            out[f"{axis}_mass"] = mass
    return out


def _token_at(starts: list[int], end: int, position: int) -> int | None:
    """Index of the token whose characters cover ``position`` (the grade's first digit; a token may carry a
    leading space), or None when the token text does not line up with the reply."""
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else end
        if start <= position < stop:
            return i
    return None


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
    logprobs: bool = True  # ask for the grade turn's logprobs: the probability-weighted grade where returned
    top_logprobs: int = 20


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


def _rejects_logprobs(replies) -> bool:
    """Every reply failed with a client error that names logprobs: a server that does not support them."""
    return bool(replies) and all(
        not r.ok and (r.error or "").startswith("HTTP 4") and "logprob" in (r.error or "").lower() for r in replies
    )


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
    records: list[dict[str, Any]] = [
        {"grades": None, "weighted_grades": {}, "error": None, "asks": 0} for _ in dialogues
    ]
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
    grade_params = {**params, "response_format": grades_schema(axes)} if settings.structured_output else dict(params)
    if settings.logprobs:
        grade_params.update(logprobs=True, top_logprobs=settings.top_logprobs)
    for _ask in range(settings.max_reasks + 1):  # the first grade request, then the re-asks
        if not pending:
            break
        replies = engine.run([dialogues[i] for i in pending], **grade_params)
        if "logprobs" in grade_params and _rejects_logprobs(replies):
            logger.warning("The judge refused the logprobs parameters (%s); grading without them.", replies[0].error)
            grade_params = {k: v for k, v in grade_params.items() if k not in ("logprobs", "top_logprobs")}
            replies = engine.run([dialogues[i] for i in pending], **grade_params)
        still = []
        for i, reply in zip(pending, replies):
            records[i]["asks"] += 1
            if not reply.ok:
                records[i]["error"] = reply.error
                continue
            located = locate_grades(reply.text, axes)
            records[i]["reply"] = reply.text
            if located is not None:
                records[i]["grades"] = located[0]
                choice = ((reply.response or {}).get("choices") or [{}])[0]
                records[i]["weighted_grades"] = weighted_grades(choice.get("logprobs"), located[1], reply.text)
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
        weighted = [r["weighted_grades"][axis] for r in graded if axis in r.get("weighted_grades", {})]
        if weighted:  # the probability-weighted grade, over the samples whose score token had logprobs
            scores[f"{axis}_weighted"] = float(np.mean(weighted))
            scores[f"{axis}_weighted_ci"] = bootstrap_ci(weighted)
            scores[f"{axis}_num_weighted"] = len(weighted)
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
