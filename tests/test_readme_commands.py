"""Every command line the README (and each preset's README) shows is accepted by the command it names.

The lines come from the fenced shell blocks, and from the inline code spans that are whole ``tinystories`` /
``accelerate launch`` / ``python -m`` commands. Each is checked without running it: its arguments go through the
command's own parser (a recipe key that does not exist, a flag in the wrong place, a recipe or accelerate config file
that is not in the repository all fail), and ``--help`` of a command without a separate parser must list every flag
the line uses. Lines of other tools are skipped with the reason in ``SKIPPED``.
"""

import contextlib
import glob
import io
import os
import re
import runpy
import shlex
import sys

import pytest
from conftest import REPO

DOCUMENTS = [
    "README.md",
    *sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "recipes/*/README.md"))),
]
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")  # (a block without a language is a file tree, a listing)
#: First words of lines that are not checked, and why.
SKIPPED = {
    "pip": "installs packages (needs the network; setup.py's extras are tested in test_packaging.py)",
    "git": "changes a repository",
    "export": "sets a variable of the user's shell",
    "hf": "the Hugging Face CLI (a login: needs the network and a token)",
    "vllm": "another project's server",
    "tensorboard": "another project's viewer",
    "ollama": "another project's server",
}
#: Placeholders of inline examples, and a file of the repository that stands for them.
PLACEHOLDERS = {"RECIPE.yaml": "recipes/smoke/pretrain.yaml", "recipe.yaml": "recipes/smoke/pretrain.yaml"}
#: Commands whose RECIPE.yaml placeholder stands for another kind of recipe.
RECIPE_PLACEHOLDERS = {"reproduce": "recipes/reproduce/cpu-toy.yaml"}
INLINE_COMMAND = re.compile(r"^(tinystories \w|accelerate launch |python -m tinystories)")


def _shell_lines(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank and comment-only lines dropped."""
    lines, current = [], ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def readme_commands() -> list[tuple[str, str]]:
    """``(where, command line)`` of every shell line and every inline command of the documents."""
    found = []
    for document in DOCUMENTS:
        text = open(os.path.join(REPO, document), encoding="utf-8").read()
        outside = []
        for i, part in enumerate(re.split(r"^```", text, flags=re.MULTILINE)):
            if i % 2 == 0:
                outside.append(part)
                continue
            language, _, block = part.partition("\n")
            if language.strip() in SHELL_LANGUAGES:
                found += [(f"{document} (block)", line) for line in _shell_lines(block)]
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", "\n".join(outside)):
            # a command line, not a command's name (`tinystories train`) or a synopsis (`push {model,...} PATH`)
            if (
                INLINE_COMMAND.match(span)
                and len(span.split()) > 2
                and not set(span) & set("{(")
                and "..." not in span
            ):
                found.append((f"{document} (inline)", span))
    return found


def _words(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # VAR=value command ...
        words.pop(0)
    if words and words[-1] == "&":  # run in the background: the command is the same
        words.pop()
    return [PLACEHOLDERS.get(w, w) for w in words]


def _flags(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("--") and len(w) > 2]


def _help_text(argv: list[str]) -> str:
    """What ``tinystories ARGV --help`` prints (it must exit with 0)."""
    from tinystories.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0, out.getvalue()
    return out.getvalue()


def _parse_train(argv: list[str]) -> None:
    from tinystories.training import parse_train_args

    parse_train_args(argv)


def _parse_generate(argv: list[str]) -> None:
    from tinystories.logging_setup import pop_log_level
    from tinystories.synth.arguments import parse_generate_args

    parse_generate_args(pop_log_level(argv)[1])


def _parse_evaluate(argv: list[str]) -> None:
    from tinystories.evaluation.arguments import parse_evaluate_args
    from tinystories.logging_setup import pop_log_level

    parse_evaluate_args(pop_log_level(argv)[1])


def _parse_serve(argv: list[str]) -> None:
    from tinystories.serving.cli import parse_args

    parse_args(argv)


def _parse_push(argv: list[str]) -> None:
    from tinystories.hub.cli import parse_args

    parse_args(argv)


def _parse_reproduce(argv: list[str]) -> None:
    """The command line, then the recipe with its overrides (every section key checked), without running it."""
    from tinystories.reproduce import parse_command_line
    from tinystories.reproduce.recipe import load_reproduce_recipe

    path, _options, overrides = parse_command_line(argv)
    load_reproduce_recipe(os.path.join(REPO, path), overrides)


#: The parser of each ``tinystories`` command that has one apart from running it.
PARSERS = {
    "reproduce": _parse_reproduce,
    "train": _parse_train,
    "generate": _parse_generate,
    "evaluate": _parse_evaluate,
    "serve": _parse_serve,
    "push": _parse_push,
}


def check_recipe_path(argv: list[str]) -> None:
    if argv and argv[0].endswith((".yaml", ".yml")):
        assert os.path.isfile(os.path.join(REPO, argv[0])), f"{argv[0]} is not a file of the repository"


def check_tinystories(argv: list[str]) -> None:
    """``tinystories [--log_level L] COMMAND ARGS``: the command's parser accepts ARGS (``--help`` exits 0)."""
    from tinystories.cli import COMMANDS, split_global_options

    _, argv = split_global_options(argv)
    assert argv and argv[0] in COMMANDS, f"unknown command {argv[:1]}; commands: {', '.join(COMMANDS)}"
    command, rest = argv[0], argv[1:]
    if rest and rest[0] == PLACEHOLDERS["RECIPE.yaml"] and command in RECIPE_PLACEHOLDERS:
        rest = [RECIPE_PLACEHOLDERS[command], *rest[1:]]
    if any(a in ("-h", "--help") for a in rest):
        _help_text([command, *[a for a in rest if a not in ("-h", "--help")]])
        return
    check_recipe_path(rest)
    if command in PARSERS:
        PARSERS[command](rest)
    else:  # demo, vocabulary ...: every flag of the line is one of the command's
        text = _help_text([command])
        missing = [flag for flag in _flags(rest) if flag not in text]
        assert not missing, f"tinystories {command} has no option {missing}"


def check_accelerate(argv: list[str]) -> None:
    """``accelerate launch [FLAGS] -m tinystories.train ARGS``: accelerate's own parser, then the training one."""
    assert argv[:1] == ["launch"], f"only 'accelerate launch' is known here, not {argv[:1]}"
    from accelerate.commands.launch import launch_command_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = launch_command_parser().parse_args(argv[1:])
    except SystemExit as e:
        raise AssertionError(f"accelerate launch refuses the line: {err.getvalue().strip()}") from e
    if args.config_file:
        assert os.path.isfile(os.path.join(REPO, args.config_file)), f"{args.config_file} is not in the repository"
    assert args.module and args.training_script == "tinystories.train", "expected -m tinystories.train"
    check_recipe_path(args.training_script_args)
    _parse_train(args.training_script_args)


def check_python(argv: list[str]) -> None:
    """``python -m tinystories[.train] ...`` or ``python benchmarks/X.py [FLAGS]``."""
    if argv[:2] == ["-m", "tinystories"]:
        check_tinystories(argv[2:])
    elif argv[:2] == ["-m", "tinystories.train"]:
        check_recipe_path(argv[2:])
        _parse_train(argv[2:])
    elif argv[:2] == ["-m", "pytest"]:
        pytest.skip("runs the test suite itself")
    elif argv and argv[0].startswith("benchmarks/"):
        assert os.path.isfile(os.path.join(REPO, argv[0])), f"{argv[0]} is not in the repository"
        out = io.StringIO()  # the script's own argparse --help, in this process (its imports are loaded already)
        with (
            _argv([argv[0], "--help"]),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
            pytest.raises(SystemExit) as exited,
        ):
            runpy.run_path(os.path.join(REPO, argv[0]), run_name="__main__")
        assert exited.value.code == 0, out.getvalue()[-2000:]
        missing = [flag for flag in _flags(argv[1:]) if flag not in out.getvalue()]
        assert not missing, f"{argv[0]} has no option {missing}"
    else:
        raise AssertionError(f"a python line this test does not know: {argv}")


@contextlib.contextmanager
def _argv(argv: list[str]):
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def check_make(argv: list[str]) -> None:
    targets = set(re.findall(r"^([\w-]+):", open(os.path.join(REPO, "Makefile"), encoding="utf-8").read(), re.M))
    named = [a for a in argv if "=" not in a and not a.startswith("-")]
    assert named and set(named) <= targets, f"make targets {named}; the Makefile has {sorted(targets)}"


CHECKS = {"tinystories": check_tinystories, "accelerate": check_accelerate, "python": check_python, "make": check_make}


def check_line(line: str) -> None:
    """Check one README command line; an AssertionError (or a TinyStoriesError) says what is wrong with it."""
    words = _words(line)
    program, argv = words[0], words[1:]
    if program in SKIPPED:
        pytest.skip(f"{program}: {SKIPPED[program]}")
    assert program in CHECKS, f"a README command this test does not know ({program}): add a check or a skip reason"
    CHECKS[program](argv)


COMMANDS_FOUND = readme_commands()


def test_the_readme_lines_are_found():
    lines = [line for _, line in COMMANDS_FOUND]
    assert len(lines) > 20
    for expected in ("tinystories train recipes/smoke/pretrain.yaml", "tinystories serve tinystories-demo"):
        assert any(line.startswith(expected) for line in lines), expected
    # the multi-process CPU line is inline, not in a block
    assert any(line.startswith("accelerate launch --multi_gpu") for line in lines)


@pytest.mark.parametrize("where,line", COMMANDS_FOUND, ids=[f"{w}: {line[:70]}" for w, line in COMMANDS_FOUND])
def test_readme_command_is_accepted(where, line, monkeypatch):
    monkeypatch.chdir(REPO)  # the lines are written to run from the repository root
    check_line(line)


@pytest.mark.parametrize(
    "line,complaint",
    [
        # the README's old multi-process line: --use_cpu is a training key, accelerate launch has no such flag
        (
            "accelerate launch --multi_gpu --num_processes 2 --use_cpu -m tinystories.train recipes/smoke/pretrain.yaml",
            "unrecognized arguments: --use_cpu",
        ),
        ("tinystories train recipes/smoke/pretrain.yaml --max_step 10", "did you mean max_steps"),
        ("tinystories generate recipes/generation/local-server.yaml --num_story 3", "Unknown key"),
        ("tinystories serve tinystories-demo --prot 8000", "unrecognized arguments"),
        ("tinystories train recipes/smoke/missing.yaml", "not a file of the repository"),
        ("accelerate launch --config_file recipes/accelerate_configs/nope.yaml -m tinystories.train", "nope.yaml"),
        ("tinystories demo --no_such_flag 1", "no option"),
        ("make tset", "make targets"),
    ],
)
def test_a_line_the_command_refuses_fails_the_check(line, complaint, monkeypatch):
    from tinystories.errors import TinyStoriesError

    monkeypatch.chdir(REPO)
    with pytest.raises((AssertionError, TinyStoriesError, SystemExit)) as failed:
        check_line(line)
    assert complaint in str(failed.value)
