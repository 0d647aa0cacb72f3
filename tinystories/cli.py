"""The ``tinystories`` command line: ``tinystories COMMAND [ARGS]`` (``python -m tinystories`` is the same).

Each command calls a pipeline's ``main``; a ``TinyStoriesError`` (a user error) is printed as one line on stderr
with exit code 2, for every command. This layer alone may use several pipelines: ``generate`` writes the dataset's
card with ``tinystories.hub`` after the ``tinystories.synth`` pipeline, and ``train`` pushes with ``push_to_hub``.
``--log_level LEVEL`` before the command is a global option (quiet by default: ``tinystories.logging_setup``); it
reaches each command as that command's own ``--log_level``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import one_line_errors
from .logging_setup import configure_logging, pop_log_level

USAGE = """usage: tinystories [--log_level {debug,info,warning,error}] COMMAND [ARGS]

commands:
  train RECIPE.yaml [--key value ...]   pre-train or fine-tune a GPT-Neo model with the HF Trainer
                                        (distributed: accelerate launch -m tinystories.train RECIPE.yaml ...)
  generate RECIPE.yaml [--key value ...] generate a TinyStories(-Instruct) dataset through an OpenAI-compatible API
  evaluate RECIPE.yaml [--key value ...] sample completions from model(s) and grade them with GPT-Eval
  serve MODEL [--host H] [--port P]     serve a causal LM through an OpenAI-compatible HTTP API
  push {model,dataset,metric} PATH REPO_ID [--private] [--revision R] [--commit_message M]
                                        publish to the Hugging Face Hub with a rendered card
  vocabulary DATA --output vocab.json [--min_count N]
                                        rebuild the noun/verb/adjective vocabulary from data in the released schema
  reproduce RECIPE.yaml [--section.key value ...] [--until STAGE] [--estimate_only] [--push ORG]
                                        the paper's experiment end to end (data, a family of models, GPT-Eval,
                                        the report in the paper's Figure 4 layout), resumable
  demo [--output_dir DIR] [--max_minutes M]
                                        the main job end to end at toy scale: stories -> tokenizer -> model

'tinystories COMMAND --help' lists a command's options (for train: every recipe key with its default).
--log_level (also accepted among a command's arguments): by default the package's messages show and the libraries'
(one line per HTTP request) are hidden; info shows those too, debug everything, warning only warnings and errors.
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


def vocabulary(argv: list[str]) -> dict:
    from .synth.vocabulary_builder import main

    return main(argv)


def reproduce(argv: list[str]) -> dict:
    from .reproduce import main

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
    "vocabulary": vocabulary,
    "reproduce": reproduce,
    "demo": demo,
}


#: Commands that read ``--log_level`` among their own arguments (train and serve: a recipe key / a setting; generate
#: and evaluate: their ``main`` configures logging from it); the others get the level set here.
OWN_LOG_LEVEL = ("train", "serve", "generate", "evaluate")


def with_log_level(command: str, argv: list[str], level: str | None) -> list[str]:
    """``argv`` for ``command`` given the global ``--log_level`` (a level the command's own arguments set wins);
    for a command without its own option the level is applied here."""
    if command not in OWN_LOG_LEVEL:
        configure_logging(level)
        return argv
    if level is None or pop_log_level(argv)[0] is not None:
        return argv
    return [*argv, "--log_level", level]


def run_command(command: str, argv: list[str], log_level: str | None = None) -> None:
    """Run ``command`` with ``argv``; a user error is one line on stderr and exit code 2."""
    with one_line_errors(command):
        COMMANDS[command](with_log_level(command, argv, log_level))


def split_global_options(argv: list[str]) -> tuple[str | None, list[str]]:
    """``(--log_level given before the command, the command and its arguments)``."""
    level = None
    while argv and argv[0].startswith(("--log_level", "--log-level")):
        take = 1 if "=" in argv[0] else 2
        with one_line_errors("--log_level"):
            level, _ = pop_log_level(argv[:take])
        argv = argv[take:]
    return level, argv


def main(argv: list[str] | None = None) -> None:
    log_level, argv = split_global_options(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinystories: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    run_command(command, rest, log_level)
