"""``tinystories push {model,dataset,metric} PATH REPO_ID [options]``: one subcommand per kind, each with only the
options that apply to it.

    tinystories push model runs/33m me/tinystories-33m --eval_results outputs/gpt_eval/runs--33m/results.json
    tinystories push dataset data/tinystories-gpt-4o-mini me/tinystories-gpt-4o-mini --private
    tinystories push metric - me/gpt_eval --space_requirement "tinystories @ git+https://github.com/OWNER/tinystories"

A user error is a ``PushError``, printed by the ``tinystories`` command as one line (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .dataset_card import DEFAULT_DATASET_LICENSE
from .eval_results import GPT_EVAL_FILE
from .metric_space import BUNDLED_METRIC, SPACE_REQUIREMENT_EXAMPLE
from .model_card import DEFAULT_MODEL_LICENSE
from .push import CARD_MODES, push_dataset, push_metric, push_model
from .upload import KINDS, PushOptions

PATH_HELP = {
    "model": "The output_dir of tinystories train.",
    "dataset": "The output_dir of tinystories generate.",
    "metric": f"An evaluate module folder, or one of {', '.join(BUNDLED_METRIC)} for the bundled GPT-Eval.",
}
KIND_HELP = {
    "model": "a trained model, with its model card",
    "dataset": "a generated dataset, with its dataset card",
    "metric": "an evaluate metric module, as a Gradio Space",
}


Argument = tuple[tuple[str, ...], dict[str, Any]]

#: The arguments of every kind: PATH (per kind, below), REPO_ID and the fields of ``PushOptions`` but the token
#: (from the environment only).
PUSH_ARGUMENTS: list[Argument] = [
    (("repo_id",), {"metavar": "REPO_ID", "help": "owner/name on the Hub (a bare name: your namespace)."}),
    (
        ("--private",),
        {
            "action": "store_true",
            "help": "Create the repository private; an existing public repository is refused (its visibility is not "
            "changed).",
        },
    ),
    (("--revision",), {"help": "Branch to push to (created if missing); the card's snippets load it."}),
    (("--commit_message",), {"help": "Message of the commit."}),
    (
        ("--dry_run",),
        {
            "action": "store_true",
            "help": "Print the files to upload and the rendered card; no network, no token, nothing written.",
        },
    ),
]
#: The arguments of the kinds whose card this package renders.
CARD_ARGUMENTS: list[Argument] = [
    (
        ("--card",),
        {
            "choices": CARD_MODES,
            "default": "render",
            "help": "render: upload a rendered card as README.md (PATH is not written to; default); keep: upload "
            "PATH's README.md as is.",
        },
    ),
]
KIND_ARGUMENTS: dict[str, list[Argument]] = {
    "model": [
        (
            ("--eval_results",),
            {
                "nargs": "+",
                "metavar": "RESULTS_JSON",
                "help": f"GPT-Eval results.json file(s) of tinystories evaluate, shown on the card and uploaded (as "
                f"{GPT_EVAL_FILE} for one, else gpt_eval_results_<config>_<judge>.json); PATH/{GPT_EVAL_FILE} is used "
                "too.",
            },
        ),
        (("--tags",), {"nargs": "+", "help": "Extra tags."}),
        (("--base_model",), {"help": "Hub id it was fine-tuned from (default: recorded by training)."}),
        (("--datasets",), {"nargs": "+", "help": "Hub dataset ids (default: recorded by training)."}),
        (("--license",), {"default": DEFAULT_MODEL_LICENSE, "help": f"License id (default {DEFAULT_MODEL_LICENSE})."}),
        *CARD_ARGUMENTS,
    ],
    "dataset": [
        (
            ("--license",),
            {
                "help": f"License id (default: the card's; {DEFAULT_DATASET_LICENSE} for a folder of tinystories "
                "generate)."
            },
        ),
        *CARD_ARGUMENTS,
    ],
    "metric": [
        (
            ("--space_requirement",),
            {
                "help": "Required (tinystories is not on PyPI): the requirements.txt line that installs tinystories "
                f"in the Space, e.g. '{SPACE_REQUIREMENT_EXAMPLE}'.",
            },
        ),
    ],
}


def _build() -> tuple[argparse.ArgumentParser, dict[str, set[str]]]:
    """The parser, and the option strings of each kind."""
    parser = argparse.ArgumentParser(
        prog="tinystories push",
        description="Publish a trained model, a generated dataset or a metric (as a Gradio Space) to the Hugging "
        "Face Hub with a rendered card. The token comes from HF_TOKEN or `hf auth login`, never from a file.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(KINDS) + "}")
    options: dict[str, set[str]] = {}
    for kind in KINDS:
        sub = kinds.add_parser(kind, help=f"Publish {KIND_HELP[kind]}.", description=f"Publish {KIND_HELP[kind]}.")
        options[kind] = set()
        for flags, kwargs in [(("path",), {"metavar": "PATH", "help": PATH_HELP[kind]}), *PUSH_ARGUMENTS]:
            sub.add_argument(*flags, **kwargs)
        for flags, kwargs in KIND_ARGUMENTS[kind]:
            options[kind].update(sub.add_argument(*flags, **kwargs).option_strings)
    return parser, options


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``parse_args``, with an option of another kind named as such (``--tags`` on ``push metric``)."""
    parser, options = _build()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hints = []
        for option in dict.fromkeys(a.split("=")[0] for a in unknown if a.startswith("--")):
            owners = [f"push {kind}" for kind in KINDS if option in options[kind]]
            if owners:
                hints.append(f"{option} is an option of {' and '.join(owners)} only")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else ""))
    return args


def push(args: argparse.Namespace) -> dict[str, Any]:
    """The push of parsed command-line ``args``."""
    options = PushOptions(
        private=args.private, revision=args.revision, commit_message=args.commit_message, dry_run=args.dry_run
    )
    if args.kind == "model":
        return push_model(
            args.path,
            args.repo_id,
            options,
            eval_results=args.eval_results,
            license=args.license,
            tags=args.tags,
            base_model=args.base_model,
            datasets=args.datasets,
            card=args.card,
        )
    if args.kind == "dataset":
        return push_dataset(args.path, args.repo_id, options, license=args.license, card=args.card)
    return push_metric(args.path, args.repo_id, options, requirement=args.space_requirement)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``tinystories push``: push, then list what was (or, with ``--dry_run``, would be) uploaded. A ``PushError``
    propagates: the ``tinystories`` command prints it as one line."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    result = push(args)
    if args.dry_run:
        print(f"Dry run: would push {len(result['files'])} files to {result['repo_type']} {args.repo_id}:")
    else:
        print(f"Pushed {len(result['files'])} files to {result['url']}:")
    for name in result["files"]:
        print(f"  {name}")
    if args.dry_run and result.get("card"):
        print("\nREADME.md as it would be uploaded:\n")
        print(result["card"])
    return result
