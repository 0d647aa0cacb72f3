"""Evaluating models the paper's way: GPT-Eval (an LLM judge grading completions of story beginnings that stop
mid-sentence; the protocol is ``judge``, its ``evaluate`` module ``tinystories.metrics.gpt_eval``), the probes, the
diversity check, and the ``tinystories evaluate`` pipeline with its results, plots and comparisons."""

from .arguments import CONFIGS, EvaluateArguments, parse_evaluate_args
from .comparison import comparison_table
from .completions import model_folders, model_slug
from .eval_sets import instruct_prompt, load_prompts
from .judge import JudgeArguments, JudgeSettings, grade
from .pipeline import main, run

__all__ = [
    "CONFIGS",
    "EvaluateArguments",
    "JudgeArguments",
    "JudgeSettings",
    "comparison_table",
    "grade",
    "instruct_prompt",
    "load_prompts",
    "main",
    "model_folders",
    "model_slug",
    "parse_evaluate_args",
    "run",
]
