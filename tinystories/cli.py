"""The ``tinystories`` command line: ``tinystories COMMAND [ARGS]`` (``python -m tinystories`` is the same)."""

from __future__ import annotations

import sys
from collections.abc import Callable

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


def _train(argv: list[str]) -> None:
    from .train import main

    main(argv)


def _generate(argv: list[str]) -> None:
    from .generate import main

    main(argv)


def _evaluate(argv: list[str]) -> None:
    from .evaluation import main

    main(argv)


def _serve(argv: list[str]) -> None:
    from .serve import main

    main(argv)


def _push(argv: list[str]) -> None:
    from .hub import main

    main(argv)


def _demo(argv: list[str]) -> None:
    from .demo import main

    main(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "train": _train,
    "generate": _generate,
    "evaluate": _evaluate,
    "serve": _serve,
    "push": _push,
    "demo": _demo,
}


def run_with_clean_errors(command: str, fn: Callable[[list[str]], None], argv: list[str]) -> None:
    """Run ``fn``; a user error (bad recipe, unusable data) is one line on stderr and exit code 2."""
    from .arguments import RecipeError
    from .data import DataError
    from .generate import GenerationError

    try:
        fn(argv)
    except (RecipeError, DataError, GenerationError) as e:
        print(f"tinystories {command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinystories: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    run_with_clean_errors(command, COMMANDS[command], rest)
