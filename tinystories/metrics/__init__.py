"""Evaluation metrics shipped as ``evaluate`` modules.

``evaluate.load(tinystories.metrics.GPT_EVAL)`` (or ``evaluate.load("tinystories/metrics/gpt_eval")`` from the
repository root) loads GPT-Eval, the paper's LLM-as-judge protocol.
"""

import os

GPT_EVAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt_eval")

__all__ = ["GPT_EVAL"]
