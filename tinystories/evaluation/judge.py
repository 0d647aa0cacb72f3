"""GPT-Eval, the paper's LLM-as-judge protocol: the two-turn dialogue (an assessment, then grades out of 10 and an
age group), re-asks of unreadable replies, the probability-weighted grades and the bootstrap intervals
(docs/evaluation.md). A grade is never guessed."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..llm import LLMConfig, LLMEngine, llm_arguments
from .grade_parsing import AGE_GROUPS, AXES, locate_grades, weighted_grades

logger = logging.getLogger(__name__)


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


def bootstrap_ci(values: list[float], samples: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the mean."""
    if not values:
        return [float("nan"), float("nan")]
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


JudgeArguments = llm_arguments(
    "JudgeArguments", __name__, "judge_model", "gpt-4o", "The judge, as the server knows it."
)

#: Where the judge's replies are cached when ``cache_dir`` is not set.
DEFAULT_CACHE_DIR = ".tinystories_cache"


@dataclass
class JudgeSettings:
    """The grading protocol's settings (the judge's connection is an ``LLMConfig``)."""

    judge_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature of the judge."})
    judge_max_tokens: int = field(default=400, metadata={"help": "Longest judge reply (tokens)."})
    max_reasks: int = field(default=2, metadata={"help": "Re-asks of an unreadable grade reply."})
    structured_output: bool = field(
        default=False, metadata={"help": "Ask for the grades as JSON with a schema (servers with response_format)."}
    )
    logprobs: bool = field(
        default=True, metadata={"help": "Ask for the grade turn's logprobs: probability-weighted grades."}
    )
    top_logprobs: int = field(default=20, metadata={"help": "Alternatives a token for the weighted grades."})

    def __post_init__(self) -> None:
        if self.max_reasks < 0:
            raise ValueError(f"max_reasks must be >= 0, got {self.max_reasks}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be in [0, 20], got {self.top_logprobs}")


#: Every keyword the GPT-Eval metric accepts (``evaluate.load`` or ``compute``), besides ``progress``.
JUDGE_KWARGS = tuple(f.name for f in dataclasses.fields(JudgeArguments)) + tuple(
    f.name for f in dataclasses.fields(JudgeSettings)
)


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
    predictions: list[str],
    references: list[str],
    config_name: str = "default",
    llm: LLMConfig | None = None,
    settings: JudgeSettings | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grade completions with the judge ``llm`` (default: ``JudgeArguments()``'s, gpt-4o); returns (scores with
    CIs, age distribution, counts, usage; per-sample records)."""
    llm = (llm or JudgeArguments().llm_config()).with_cache_dir(DEFAULT_CACHE_DIR)
    settings = settings or JudgeSettings()
    if config_name not in AXES:
        raise ValueError(f"Unknown GPT-Eval config {config_name!r}; choose one of: {', '.join(AXES)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    axes = AXES[config_name]
    engine = LLMEngine(llm, progress=progress)
    params = {"temperature": settings.judge_temperature, "max_tokens": settings.judge_max_tokens}
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
