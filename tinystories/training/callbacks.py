"""Trainer callbacks used by ``tinystories train``."""

from __future__ import annotations

import logging
import time

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

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


class TimeBudgetProgressCallback(ProgressCallback):
    """Trainer's progress bar, measured in seconds of a time budget instead of steps.

    With ``max_train_minutes`` the step count is open (``max_steps`` is only a cap), so a bar over steps would
    show a meaningless total; this one fills up as the budget is used and shows the step and the last loss.
    """

    def __init__(self, max_minutes: float):
        super().__init__()
        self.budget = max_minutes * 60
        self.start = 0.0
        self.last_loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.current_step = 0
        self.start = time.monotonic()
        if state.is_world_process_zero:
            self.training_bar = tqdm(
                total=round(self.budget),
                unit="s",
                dynamic_ncols=True,
                desc="Training",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s{postfix}",
            )

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            elapsed = min(round(time.monotonic() - self.start), self.training_bar.total)
            self.training_bar.update(elapsed - self.training_bar.n)
            postfix = {"step": state.global_step}
            if self.last_loss is not None:
                postfix["loss"] = f"{self.last_loss:.3f}"
            self.training_bar.set_postfix(postfix, refresh=False)
            self.current_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
        super().on_log(args, state, control, logs=logs, **kwargs)
