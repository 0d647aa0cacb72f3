"""Reading a judge's grades: every common reply format, where each grade is written, and the probability-weighted
grade from the reply's logprobs. A grade that cannot be read is None, never guessed."""

from __future__ import annotations

import json
import math
import re
from typing import Any

AGE_GROUPS = {"A": "3 or under", "B": "4-5", "C": "6-7", "D": "8-9", "E": "10-12", "F": "13-16"}
AXES = {
    "default": ("grammar", "creativity", "consistency"),
    "instruct": ("grammar", "creativity", "consistency", "plot"),
}

_NUMBER = r"(\d+(?:\.\d+)?)"


def _age_group(text: str) -> str | None:
    match = re.search(r"\bage(?:\s*group)?[^A-Za-z0-9]{0,6}([A-F])\b", text, re.IGNORECASE)
    if match:
        return match.group(1).upper()
    ranges = {"3 or under": "A", "4-5": "B", "6-7": "C", "8-9": "D", "10-12": "E", "13-16": "F"}
    starts = [m.start() for m in re.finditer(r"\bage\b", text, re.IGNORECASE)]
    tail = text[starts[-1] :] if starts else text
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


def locate_grades(
    text: str, axes: tuple[str, ...] = AXES["default"], optional: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """``(grades, spans)``: the grades of :func:`parse_grades` and, per axis, the offset in ``text`` where the
    number of its grade starts (used to find the score token among the reply's logprobs), or None when an axis of
    ``axes`` cannot be read. Axes of ``optional`` (the default config's plot) are included only when written."""
    if not text:
        return None
    every = (*axes, *(a for a in optional if a not in axes))
    grades = _from_json(text, every)
    if grades is not None and all(axis in grades for axis in axes):
        spans = _json_spans(text, every)
        return grades, {axis: spans[axis] for axis in every if axis in grades and axis in spans}
    # markdown emphasis and snake_case become spaces, and a scale named before the grade ("(out of 10):") is
    # blanked, so offsets in `clean` are offsets in `text`
    clean = text.replace("*", " ").replace("_", " ")
    clean = _SCALE_NOTE.sub(lambda m: " " * len(m.group(0)), clean)
    grades, spans = {}, {}
    for axis in every:
        found = _find_grade(clean, axis)
        if found is not None:
            grades[axis], spans[axis] = found
    grades["age_group"] = _age_group(clean)
    if any(axis not in grades for axis in axes):
        return None
    return grades, spans


#: A scale written between an axis and its grade: "Grammar (out of 10): 8", "Creativity (1-10): 7".
_SCALE_NOTE = re.compile(r"\((?:out of 10|on a scale (?:of|from) 1 to 10|1\s*-\s*10|1 to 10)\)", re.IGNORECASE)


def _find_grade(clean: str, axis: str) -> tuple[float, int] | None:
    """The grade of ``axis`` and where its number starts: a grade written with its scale ("8/10", "8 out of 10")
    first, so prose before the grades ("the grammar has 2 small errors. Grammar: 8/10") is not read as one; then
    the first number after the axis name."""
    head = rf"\b{axis}\b[^0-9\n]{{0,40}}?{_NUMBER}"
    for pattern in (head + r"\s*(?:/\s*10\b|out of 10\b)", head):
        for match in re.finditer(pattern, clean, re.IGNORECASE):
            if 0 <= float(match.group(1)) <= 10:
                return float(match.group(1)), match.start(1)
            if pattern != head:
                continue
            return None  # the first bare number after the axis is out of range: not a grade
    return None


def parse_grades(
    text: str, axes: tuple[str, ...] = AXES["default"], optional: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """``{axis: grade (0-10), ..., "age_group": letter or None}``, or None if any axis cannot be read."""
    located = locate_grades(text, axes, optional)
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
