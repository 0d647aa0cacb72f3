"""The ``tinystories`` command line: ``tinystories COMMAND [ARGS]`` (``python -m tinystories`` is the same).

Each command calls a pipeline's ``main``; a ``TinyStoriesError`` (a user error) is printed as one line on stderr
with exit code 2, for every command. This layer alone may use several pipelines: ``generate`` writes the dataset's
card with ``tinystories.hub`` after the ``tinystories.synth`` pipeline, and ``train`` pushes with ``push_to_hub``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import one_line_errors

USAGE = """usage: tinystories COMMAND [ARGS]

commands:
  train RECIPE.yaml [--key value ...]   pre-train or fine-tune a GPT-Neo model with the HF Trainer
                                        (distributed: accelerate launch -m tinystories.train RECIPE.yaml ...)
  generate RECIPE.yaml [--key value ...] generate a TinyStories(-Instruct) dataset through an OpenAI-compatible API
  evaluate RECIPE.yaml [--key value ...] sample completions from model(s) and grade them with GPT-Eval
  serve MODEL [--host H] [--port P]     serve a causal LM through an OpenAI-compatible HTTP API
  push {model,dataset,metric} PATH REPO_ID [--private] [--revision R] [--commit_message M]
                                        publish to the Hugging Face Hub with a rendered card
  demo [--output_dir DIR] [--max_minutes M]
                                        the main job end to end at toy scale: stories -> tokenizer -> model

'tinystories COMMAND --help' lists a command's options (for train: every recipe key with its default).
"""


def train(argv: list[str]) -> dict:
    from .train import main

    return main(argv)


def generate(argv: list[str]) -> dict:
    """The synth pipeline, then the dataset's card (``tinystories.hub``) from the run's summary."""
    from .hub import write_dataset_card
    from .synth import main

    summary = main(argv)
    write_dataset_card(summary["arguments"]["output_dir"], summary)
    return summary


def evaluate(argv: list[str]) -> list[dict]:
    from .evaluation import main

    return main(argv)


def serve(argv: list[str]) -> None:
    from .serving import main

    main(argv)


def push(argv: list[str]) -> dict:
    from .hub import main

    return main(argv)


def demo(argv: list[str]) -> dict:
    from .demo import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], object]] = {
    "train": train,
    "generate": generate,
    "evaluate": evaluate,
    "serve": serve,
    "push": push,
    "demo": demo,
}


def run_command(command: str, argv: list[str]) -> None:
    """Run ``command`` with ``argv``; a user error is one line on stderr and exit code 2."""
    with one_line_errors(command):
        COMMANDS[command](argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinystories: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    run_command(command, rest)
