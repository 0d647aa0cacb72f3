"""The texts GPT-Eval sends the judge: the paper's (``prompt_style: paper``, Eldan & Li 2023, section 3 and
Figure 5, spelling included) or this package's earlier wording with the format line up front (``strict``); the
Instruct exercise rendered from a reference's instruction; the re-ask. docs/evaluation.md shows every rendering."""

from __future__ import annotations

import json
import re
from typing import Any

from ..story_formats import FEATURES, INSTRUCT_PARTS

PROMPT_STYLES = ("paper", "strict")

_AGE_QUESTION = (
    "Moreover, please provide your best guess of what the age of the student might be, as reflected from the "
    "completion. Choose from possible age groups: A: 3 or under. B: 4-5. C: 6-7. D: 8-9. E: 10-12. F: 13-16."
)

# -- prompt_style: paper (the paper's texts, character for character) ---------------------------------------------
PAPER_ASSESSMENT_PROMPT = (
    "the following exercise, the student is given a beginning of a story. The student needs to complete it into a "
    "full story. The exercise tests the student's language abilities and creativity. The symbol *** marks the "
    "separator between the prescribed beginning and the student's completion:\n\n{beginning}***{completion}\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** symbol). "
    "Is it gramatically correct? Is it consistent with the beginning of the story? Pay special attention to "
    "whether the student manages to complete the sentence which is split in the middle by the separator ***."
)
PAPER_INSTRUCT_ASSESSMENT_PROMPT = (
    "Your task is to evaluate the performance of a student. The student is given the following exercise: "
    "{exercise} The student wrote the following story:\n\n{completion}\n\nPlease provide your general assessment "
    "about the story written by the student. Is it gramatically correct? Is it consistent with the requirements in "
    "the exercise?"
)
PAPER_GRADE_PROMPT = "Now, grade the student's completion in terms of {axes_text}. " + _AGE_QUESTION

# -- prompt_style: strict (the package's wording before the paper's; the format line on the first grade turn) -----
STRICT_ASSESSMENT_PROMPT = (
    "In the following exercise, the student is given a beginning of a story. The student needs to complete it into "
    "a full story. The exercise tests the student's language abilities and creativity. The symbol *** marks the "
    "separator between the prescribed beginning and the student's completion:\n\n{beginning}***{completion}\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** symbol). "
    "Is it grammatically correct? Is it consistent with the beginning of the story? Pay special attention to "
    "whether the student manages to complete the sentence which is split in the middle by the separator ***."
)
STRICT_INSTRUCT_ASSESSMENT_PROMPT = (
    "In the following exercise, the student is given instructions for a story and writes the story. The exercise "
    "tests the student's language abilities, creativity and ability to follow instructions.\n\nInstructions:\n"
    "{beginning}\n\nThe student's story:\n{completion}\n\nPlease provide your general assessment of the story. Is "
    "it grammatically correct? Does it follow every instruction (the words, the sentence, the features and the "
    "summary it was given)? Does the plot make sense?"
)
STRICT_GRADE_PROMPT = (
    "Now, grade the student's completion in terms of {axes_text}, each out of 10. " + _AGE_QUESTION + "\n\n"
    "Use exactly this format: {fmt}"
)
#: The format instruction, sent (in both styles) only when a grade reply could not be read.
REASK_PROMPT = "I could not read your grades. Please answer again, in exactly this format and nothing else: {fmt}"

_AXIS_NAMES = {
    "default": {"consistency": "consistency with the story's beginning", "plot": "whether the plot makes sense"},
    "instruct": {"consistency": "consistency with the instructions", "plot": "whether the plot makes sense"},
}


def asked_axes(config_name: str, prompt_style: str) -> tuple[str, ...]:
    """The axes the grade turn asks for: the paper asks for the plot in both configs; strict's default does not."""
    if prompt_style == "strict" and config_name == "default":
        return ("grammar", "creativity", "consistency")
    return ("grammar", "creativity", "consistency", "plot")


def _axes_text(config_name: str, axes: tuple[str, ...]) -> str:
    names = [_AXIS_NAMES[config_name].get(a, a) for a in axes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def grade_format(axes: tuple[str, ...]) -> str:
    return ", ".join(f"{a.capitalize()}: X/10" for a in axes) + ", Age group: Y"


def grade_prompt(config_name: str = "default", prompt_style: str = "paper") -> str:
    """The second turn: grades (and the age group), with the format line only in the strict style."""
    axes = asked_axes(config_name, prompt_style)
    if prompt_style == "paper":
        return PAPER_GRADE_PROMPT.format(axes_text=_axes_text(config_name, axes))
    # strict keeps its list "a, b, c" (no "and")
    text = ", ".join(_AXIS_NAMES[config_name].get(a, a) for a in axes)
    return STRICT_GRADE_PROMPT.format(axes_text=text, fmt=grade_format(axes))


def reask_prompt(axes: tuple[str, ...]) -> str:
    return REASK_PROMPT.format(fmt=grade_format(axes))


# -- the Instruct exercise ------------------------------------------------------------------------------------------
def instruction_of(reference: str) -> dict[str, Any]:
    """``{"words", "features", "sentence", "summary"}`` of an instruct reference: a JSON object with those keys, or
    the TinyStories-Instruct text (``Summary: / Features: / Random sentence: / Words:`` lines, in any order, an
    optional final ``Story:``), as ``eval_sets.instruct_prompt`` writes it. Raises ValueError otherwise."""
    text = reference.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"instruct reference {reference[:60]!r} is not valid JSON ({e})") from None
        if not isinstance(data, dict) or not {"words", "features", "sentence", "summary"} & set(data):
            raise ValueError(f"instruct reference {reference[:60]!r}: no words, features, sentence or summary")
        return {
            "words": list(data.get("words") or []),
            "features": list(data.get("features") or []),
            "sentence": (data.get("sentence") or "").strip(),
            "summary": (data.get("summary") or "").strip(),
        }
    parts: dict[str, str] = {}
    current = None
    pattern = re.compile(rf"^({'|'.join(map(re.escape, (*INSTRUCT_PARTS, 'Story')))}):\s?(.*)$")
    for line in text.split("\n"):
        match = pattern.match(line)
        if match:
            current = match.group(1)
            parts[current] = match.group(2)
        elif current is not None:
            parts[current] += "\n" + line
    parts.pop("Story", None)
    if not parts:
        raise ValueError(
            f"instruct reference {reference[:60]!r} is neither an Instruct text (Summary: / Features: / "
            "Random sentence: / Words: lines) nor a JSON object"
        )

    def items(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]

    return {
        "words": items(parts.get("Words", "")),
        "features": items(parts.get("Features", "")),
        "sentence": parts.get("Random sentence", "").strip(),
        "summary": parts.get("Summary", "").strip(),
    }


def _sentence_end(text: str) -> str:
    return text if re.search(r"[.!?][\"')\]]*$", text) else text + "."


def exercise_text(instruction: dict[str, Any]) -> str:
    """The paper's exercise (Figure 5) for an instruction; the sentence of each absent part is left out.

    ``Write a short story. The story should contain the words: W1, W2, W3. The story should contain the following
    sentence: S The general plot of the story should be: SUMMARY (feel free to expand beyond this general plot).
    The story should have the following features: F1, F2.`` Features are their generation-prompt sentences
    (``story_formats.FEATURES``; an unknown feature is shown as written); a sentence without final punctuation
    gets a period.
    """
    pieces = ["Write a short story."]
    if instruction.get("words"):
        pieces.append(f"The story should contain the words: {', '.join(instruction['words'])}.")
    if instruction.get("sentence"):
        pieces.append(f"The story should contain the following sentence: {_sentence_end(instruction['sentence'])}")
    if instruction.get("summary"):
        plot = f"The general plot of the story should be: {instruction['summary']}"
        pieces.append(plot + " (feel free to expand beyond this general plot).")
    if instruction.get("features"):
        sentences = [FEATURES.get(feature, feature) for feature in instruction["features"]]
        pieces.append(f"The story should have the following features: {', '.join(sentences)}.")
    return " ".join(pieces)


def assessment_prompt(config_name: str, prompt_style: str, reference: str, completion: str) -> str:
    """The first turn: the exercise, the student's text and the request for a free assessment."""
    if config_name == "default":
        template = PAPER_ASSESSMENT_PROMPT if prompt_style == "paper" else STRICT_ASSESSMENT_PROMPT
        return template.format(beginning=reference, completion=completion)
    if prompt_style == "paper":
        exercise = exercise_text(instruction_of(reference))
        return PAPER_INSTRUCT_ASSESSMENT_PROMPT.format(exercise=exercise, completion=completion)
    return STRICT_INSTRUCT_ASSESSMENT_PROMPT.format(beginning=reference, completion=completion)
