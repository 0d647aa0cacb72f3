"""``tinystories train RECIPE.yaml [--key value ...]``, also ``accelerate launch -m tinystories.train RECIPE.yaml``.

Trains with ``tinystories.training`` and, with ``push_to_hub: true``, publishes the saved model once through
``tinystories.hub`` with this package's card (the Trainer's own pushes are off): the token is checked before
training starts, and only the world's process zero checks and pushes.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .errors import PushError, RecipeError, one_line_errors
from .training import TrainConfig, parse_train_args, pushes_from_this_process, run

logger = logging.getLogger("tinystories.train")


def push_trained_model(training_args) -> dict[str, Any]:
    """The saved model with this package's card (``tinystories.hub.push_model``). The repo is ``hub_model_id``,
    else the name of ``output_dir`` in the token owner's namespace; the token is ``hub_token``, else HF_TOKEN or
    the login's."""
    from .hub import PushOptions, push_model

    output_dir = training_args.output_dir
    repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    options = PushOptions(
        private=bool(training_args.hub_private_repo),
        revision=training_args.hub_revision,
        commit_message="End of training (tinystories train)",
        token=training_args.hub_token,
    )
    try:
        result = push_model(output_dir, repo_id, options)
    except Exception:
        logger.error("The push failed; the model is saved: tinystories push model %s %s", output_dir, repo_id)
        raise
    logger.info("Pushed %d files to %s", len(result["files"]), result["url"])
    return result


def train_and_push(cfg: TrainConfig) -> dict[str, Any]:
    """``training.run(cfg)``; with ``push_to_hub``, the token is checked first and the model pushed after."""
    pushes = pushes_from_this_process(cfg.training)
    if pushes:
        from .hub import require_token

        try:  # before training, not after it
            require_token(cfg.training.hub_token)
        except PushError as e:
            raise RecipeError(f"push_to_hub: {e}") from None
    metrics = run(cfg)
    if pushes:
        push_trained_model(cfg.training)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return train_and_push(parse_train_args(sys.argv[1:] if argv is None else argv))


def close_distributed() -> None:
    """Destroy this process's ``torch.distributed`` group, if one was made, before the interpreter exits: a rank
    that leaves first with its gloo group alive can abort at exit ("terminate called without an active
    exception", SIGABRT), failing the whole launch after training succeeded."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":  # accelerate launch -m tinystories.train RECIPE.yaml [--key value ...]
    try:
        with one_line_errors("train"):
            main()
    finally:
        close_distributed()
