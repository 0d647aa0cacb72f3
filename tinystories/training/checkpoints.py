"""Checkpoints of a run: the last one written completely, and which one a run resumes from."""

from __future__ import annotations

import logging
import os
import re

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..errors import RecipeError

logger = logging.getLogger("tinystories.train")


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` folder of ``output_dir`` that was completely written.

    The Trainer writes ``trainer_state.json`` last, so a run killed while saving leaves a folder without it:
    such a folder is skipped (with a warning) instead of failing the resume, and the previous checkpoint is used.
    """
    if not output_dir or not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append(int(match.group(1)))
    for step in sorted(steps, reverse=True):
        path = os.path.join(output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
        if os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            return path
        logger.warning("Skipping %s: it was not completely written (no %s)", path, TRAINER_STATE_NAME)
    return None


def resolve_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint`` as a path, or ``true`` for the latest one.

    Refuses to start a fresh run over the checkpoints of another, so that no training is silently lost.
    """
    resume = training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    last = last_complete_checkpoint(output_dir)
    if resume is None:
        if last is not None:
            raise RecipeError(
                f"{output_dir} already holds checkpoints (latest: {last}). Resume with "
                "--resume_from_checkpoint true, or choose another output_dir."
            )
        return None
    if str(resume).lower() in ("true", "yes", "1", "last", "latest"):
        if last is None:
            raise RecipeError(f"--resume_from_checkpoint true: no checkpoint-* folder in {output_dir}")
        return last
    if str(resume).lower() in ("false", "no", "0"):
        return None
    if not os.path.isdir(resume):
        raise RecipeError(f"--resume_from_checkpoint: {resume} is not a folder")
    return resume
