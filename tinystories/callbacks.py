"""Trainer callbacks used by ``tinystories train``."""

from __future__ import annotations

import logging
import time

import torch

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class TimeLimitCallback(TrainerCallback):
    """Stops training after ``max_minutes`` of training (the model is still saved and evaluated).

    Used by ``tinystories demo`` to train for "about two minutes" whatever the machine's speed.
    """

    def __init__(self, max_minutes: float):
        self.max_seconds = max_minutes * 60
        self.start: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.start is not None and time.monotonic() - self.start >= self.max_seconds
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # rank 0 decides for everyone, or the ranks would stop at different steps and hang
            flag = torch.tensor(int(stop), device=args.device)
            torch.distributed.broadcast(flag, src=0)
            stop = bool(flag.item())
        if stop:
            logger.info("Time limit of %.1f minutes reached at step %d", self.max_seconds / 60, state.global_step)
            control.should_training_stop = True
        return control
