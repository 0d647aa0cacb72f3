"""GPT-Eval results on a model card: reading the ``results.json`` files of ``tinystories evaluate``, their
``model-index`` entries and the card's GPT-Eval table, and which of them a model push uploads under which name."""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

from ..errors import PushError

logger = logging.getLogger(__name__)

#: The GPT-Eval results of a model folder (a ``results.json`` of ``tinystories evaluate``, copied there); one
#: ``--eval_results`` file is uploaded under this name, several as ``gpt_eval_results_<config>_<judge>.json``.
GPT_EVAL_FILE = "gpt_eval_results.json"
GPT_EVAL_DATASET_TYPE = "tinystories-gpt-eval"
GPT_EVAL_DATASET_NAMES = {
    "default": "TinyStories GPT-Eval story beginnings",
    "instruct": "TinyStories GPT-Eval instructions",
}
GPT_EVAL_AXES = ("grammar", "creativity", "consistency", "plot")
#: The ``source`` of the GPT-Eval ``model-index`` entries: the protocol is the paper's, run by ``tinystories evaluate``.
GPT_EVAL_SOURCE_NAME = "tinystories evaluate (GPT-Eval)"
GPT_EVAL_SOURCE_URL = "https://arxiv.org/abs/2305.07759"


def eval_result_key(result: dict[str, Any]) -> tuple[str, str]:
    """What one GPT-Eval result stands for: ``(config_name, judge_model)``."""
    return result.get("config_name") or "default", result.get("judge_model") or "unknown judge"


def read_eval_result(path: str) -> tuple[dict[str, Any], bytes]:
    """``(results, file bytes)`` of one ``results.json``; a ``PushError`` unless it has the three scores."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        results = json.loads(raw)
    except FileNotFoundError:
        raise PushError(f"--eval_results: {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PushError(f"--eval_results: {path} is not JSON ({e})") from None
    scores = results.get("scores") if isinstance(results, dict) else None
    if not isinstance(scores, dict) or not all(isinstance(scores.get(a), (int, float)) for a in GPT_EVAL_AXES[:3]):
        raise PushError(
            f"--eval_results: {path} is not a GPT-Eval results.json of tinystories evaluate "
            "(needs scores.grammar, scores.creativity and scores.consistency)"
        )
    return results, raw


def load_eval_files(paths: list[str]) -> list[tuple[str, dict[str, Any], bytes]]:
    """``(path, results, file bytes)`` of GPT-Eval results files, one per (config, judge): a later file wins; the
    default config first."""
    by_key: dict[tuple[str, str], tuple[str, dict[str, Any], bytes]] = {}
    for path in paths:
        results, raw = read_eval_result(path)
        by_key[eval_result_key(results)] = (path, results, raw)
    return [by_key[k] for k in sorted(by_key, key=lambda k: (k[0] != "default", k))]


def load_eval_results(paths: list[str]) -> list[dict[str, Any]]:
    """GPT-Eval ``results.json`` files (of ``tinystories evaluate``), one per config and judge (a later file for
    the same config and judge wins); the default config first."""
    return [results for _, results, _ in load_eval_files(paths)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "unknown"


def eval_results_file_name(result: dict[str, Any]) -> str:
    """``gpt_eval_results_<config>_<judge slug>.json``: the name of one of several uploaded GPT-Eval results."""
    config, judge = eval_result_key(result)
    return f"gpt_eval_results_{_slug(config)}_{_slug(judge)}.json"


def model_eval_files(
    model_dir: str, eval_results: list[str] | None
) -> tuple[list[dict[str, Any]], dict[str, bytes], tuple[str, ...]]:
    """The GPT-Eval results of a model push: ``(results for the card, files to upload, folder files to leave
    out)``. ``model_dir/gpt_eval_results.json`` counts too; the files given are uploaded as
    ``gpt_eval_results.json`` when there is one (it replaces the folder's own only for the same config and judge),
    else as ``gpt_eval_results_<config>_<judge>.json``; a folder file replaced by a later one is left out. A file
    that graded another model than the folder's is kept, with a warning."""
    own = os.path.join(model_dir, GPT_EVAL_FILE)
    has_own = os.path.isfile(own)
    given = [p for p in eval_results or [] if os.path.abspath(p) != os.path.abspath(own)]
    entries = load_eval_files(([own] if has_own else []) + given)
    folder_name = os.path.basename(os.path.abspath(model_dir))
    for path, results, _ in entries:
        graded = str(results.get("model_name_or_path") or "").rstrip("/\\")
        if graded and os.path.basename(graded) != folder_name:
            logger.warning(
                "%s graded %s, not %s (the folder pushed): is it the right results file?", path, graded, folder_name
            )
    from_cli = [(path, results, raw) for path, results, raw in entries if path != own]
    own_kept = has_own and any(path == own for path, _, _ in entries)
    exclude = () if own_kept or not has_own else (GPT_EVAL_FILE,)
    if len(from_cli) == 1 and not own_kept:
        files = {GPT_EVAL_FILE: from_cli[0][2]}
    else:
        files = {eval_results_file_name(results): raw for _, results, raw in from_cli}
    return [results for _, results, _ in entries], files, exclude


def gpt_eval_metrics(results: list[dict[str, Any]]) -> list:
    """``EvalResult`` entries of the card's ``model-index``: one per GPT-Eval axis, config and judge, with
    ``tinystories evaluate (GPT-Eval)`` as their source."""
    from huggingface_hub import EvalResult

    entries = []
    for result in results:
        config, judge = eval_result_key(result)
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
                        source_name=GPT_EVAL_SOURCE_NAME,
                        source_url=GPT_EVAL_SOURCE_URL,
                    )
                )
    return entries


def _score(scores: dict[str, Any], axis: str) -> str:
    value = scores.get(axis)
    if not isinstance(value, (int, float)):
        return "-"
    ci = scores.get(f"{axis}_ci")
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and len(ci) == 2 else f"{value:.2f}"


def gpt_eval_rows(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The rows of the card's GPT-Eval table: scores with their intervals, counts, age groups."""
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
