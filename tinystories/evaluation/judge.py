"""GPT-Eval, the paper's LLM-as-judge protocol: the two-turn dialogue (an assessment, then grades out of 10 and an
age group; the texts are ``judge_prompts``), re-asks of unreadable replies, the probability-weighted grades, the
cluster-bootstrap intervals (``intervals``) and the reasons of ungraded samples (docs/evaluation.md). A grade is
never guessed."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..llm import LLMConfig, LLMEngine, llm_arguments, reason_of
from .grade_parsing import AGE_GROUPS, AXES, locate_grades, weighted_grades
from .intervals import bootstrap_ci, ci_method, group_ids
from .judge_prompts import PROMPT_STYLES, asked_axes, assessment_prompt, grade_prompt, reask_prompt
from .truncation import truncate_repeated_ngram

logger = logging.getLogger(__name__)


JudgeArguments = llm_arguments(
    "JudgeArguments", __name__, "judge_model", "gpt-4o", "The judge, as the server knows it."
)

#: The error (and reason) of a grade reply that could not be read after the re-asks.
UNPARSEABLE = "unparseable grades"

#: Where the judge's replies are cached when ``cache_dir`` is not set.
DEFAULT_CACHE_DIR = ".tinystories_cache"


@dataclass
class JudgeSettings:
    """The grading protocol's settings (the judge's connection is an ``LLMConfig``)."""

    prompt_style: str = field(
        default="paper",
        metadata={
            "help": "paper: the paper's judge texts (the format line only on a re-ask); strict: the format line on "
            "the first grade turn (docs/evaluation.md)."
        },
    )
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
    truncate_repeated_ngram: int | None = field(
        default=None,
        metadata={
            "help": "Cut each completion at its first repeated word n-gram before the judge sees it (the paper's "
            "4 for GPT-Neo/GPT-2 baselines); null or 0: off."
        },
    )

    def __post_init__(self) -> None:
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {', '.join(PROMPT_STYLES)}, got {self.prompt_style!r}")
        if self.max_reasks < 0:
            raise ValueError(f"max_reasks must be >= 0, got {self.max_reasks}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be in [0, 20], got {self.top_logprobs}")
        if self.truncate_repeated_ngram is not None and self.truncate_repeated_ngram < 0:
            raise ValueError(
                f"truncate_repeated_ngram must be >= 0 (0 or null: off), got {self.truncate_repeated_ngram}"
            )


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


def _summarise_ungraded(records: list[dict[str, Any]]) -> dict[str, int]:
    """``{reason: count}`` of the ungraded records (most frequent first), each reason the engine's short form of the
    error (``reason_of``: "unparseable grades", "timeout", "HTTP 500", "budget" ...); the first record of each
    reason gets ``ungraded_example`` (the unreadable reply for "unparseable grades", else the error)."""
    counts: dict[str, int] = {}
    for record in records:
        if record["grades"] is not None:
            continue
        reason = record["ungraded_reason"] = reason_of(record["error"])
        if reason not in counts:
            # the unreadable reply itself; for a failed request (no reply, or a re-ask that failed) its error
            record["ungraded_example"] = record.get("reply") if reason == UNPARSEABLE else record["error"]
        counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _axis_scores(scores: dict[str, Any], axis: str, graded: list[dict[str, Any]]) -> None:
    """Mean, interval and weighted grade of ``axis`` over the graded records that have it."""
    have = [r for r in graded if axis in r["grades"]]
    values = [r["grades"][axis] for r in have]
    scores[axis] = float(np.mean(values)) if values else float("nan")
    scores[f"{axis}_ci"] = bootstrap_ci(values, [r["group"] for r in have])
    weighted = [r for r in have if axis in r.get("weighted_grades", {})]
    if weighted:  # the probability-weighted grade, over the samples whose score token had logprobs
        scores[f"{axis}_weighted"] = float(np.mean([r["weighted_grades"][axis] for r in weighted]))
        scores[f"{axis}_weighted_ci"] = bootstrap_ci(
            [r["weighted_grades"][axis] for r in weighted], [r["group"] for r in weighted]
        )
        scores[f"{axis}_num_weighted"] = len(weighted)


def grade(
    predictions: list[str],
    references: list[str],
    config_name: str = "default",
    llm: LLMConfig | None = None,
    settings: JudgeSettings | None = None,
    progress: bool = True,
    groups: list | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grade completions with the judge ``llm`` (default: ``JudgeArguments()``'s, gpt-4o); returns (scores with
    CIs, age distribution, counts, ungraded reasons, usage; per-sample records). ``groups`` (one key per sample)
    clusters the intervals; by default samples with equal references form a group (a beginning's completions)."""
    llm = (llm or JudgeArguments().llm_config()).with_cache_dir(DEFAULT_CACHE_DIR)
    settings = settings or JudgeSettings()
    if config_name not in AXES:
        raise ValueError(f"Unknown GPT-Eval config {config_name!r}; choose one of: {', '.join(AXES)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if groups is not None and len(groups) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(groups)} groups")
    axes, style = AXES[config_name], settings.prompt_style
    asked = asked_axes(config_name, style)
    optional = tuple(a for a in asked if a not in axes)  # the default config's plot: read when given
    engine = LLMEngine(llm, progress=progress)
    params = {"temperature": settings.judge_temperature, "max_tokens": settings.judge_max_tokens}
    shown = [truncate_repeated_ngram(p, settings.truncate_repeated_ngram) for p in predictions]
    dialogues = [
        [{"role": "user", "content": assessment_prompt(config_name, style, ref, text)}]
        for text, ref in zip(shown, references)
    ]
    keys = group_ids(references if groups is None else groups)
    records: list[dict[str, Any]] = [
        {"group": g, "grades": None, "weighted_grades": {}, "error": None, "asks": 0} for g in keys
    ]
    for record, text, prediction in zip(records, shown, predictions):
        if text != prediction:
            record["graded_completion"] = text  # what the judge saw; the prediction itself is the completion
    assessments = engine.run(dialogues, **params)
    pending = []
    for i, result in enumerate(assessments):
        if result.ok:
            dialogues[i] = dialogues[i] + [
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": grade_prompt(config_name, style)},
            ]
            records[i]["assessment"] = result.text
            pending.append(i)
        else:
            records[i]["error"], records[i]["failed_turn"] = result.error, "assessment"
    grade_params = {**params, "response_format": grades_schema(asked)} if settings.structured_output else dict(params)
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
            records[i]["failed_turn"] = "grades"
            if not reply.ok:
                records[i]["error"] = reply.error
                continue
            located = locate_grades(reply.text, axes, optional)
            records[i]["reply"] = reply.text
            if located is not None:
                records[i]["grades"] = located[0]
                choice = ((reply.response or {}).get("choices") or [{}])[0]
                records[i]["weighted_grades"] = weighted_grades(choice.get("logprobs"), located[1], reply.text)
                continue
            records[i]["error"] = UNPARSEABLE
            dialogues[i] = dialogues[i] + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": reask_prompt(asked)},
            ]
            still.append(i)
        pending = still
    graded = [r for r in records if r["grades"] is not None]
    for r in graded:
        r["error"] = None
        r.pop("failed_turn", None)
    scores: dict[str, Any] = {"prompt_style": style}
    for axis in axes:
        _axis_scores(scores, axis, graded)
    for axis in optional:  # reported only over the replies that gave it; never guessed
        if any(axis in r["grades"] for r in graded):
            _axis_scores(scores, axis, graded)
    if "plot" in scores:
        scores["num_plot"] = sum("plot" in r["grades"] for r in graded)
    ages = [r["grades"]["age_group"] for r in graded if r["grades"].get("age_group")]
    scores["age_group"] = {letter: ages.count(letter) / len(ages) for letter in AGE_GROUPS} if ages else {}
    scores["num_graded"] = len(graded)
    scores["num_ungraded"] = len(records) - len(graded)
    scores["ungraded_reasons"] = _summarise_ungraded(records)
    scores["ci_method"] = ci_method([r["group"] for r in graded])
    scores["num_groups"] = len({r["group"] for r in graded})
    if settings.truncate_repeated_ngram:
        scores["num_truncated"] = sum("graded_completion" in r for r in records)
    stats = engine.stats
    scores["usage"] = {
        "requests_sent": stats.sent,
        "requests_cached": stats.cached,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "cost_usd": round(stats.cost_usd, 6),
    }
    return scores, records
