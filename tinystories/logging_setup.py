"""How much the commands log: quiet by default, ``--log_level info|debug|warning|error`` for more or less.

By default the package's own messages (``tinystories.*``) show at INFO and every library at WARNING: the HTTP
clients (``httpx``, ``httpcore``, ``openai``) log one INFO line per request, which would bury the progress bar and
the summary. ``--log_level`` sets one level for everything (``info`` shows the per-request lines, ``debug`` the
clients' internals too). It is a global option of ``tinystories`` (``tinystories --log_level debug generate ...``)
and is also accepted among a command's own arguments (``tinystories generate RECIPE.yaml --log_level debug``).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from .errors import RecipeError

LOG_LEVELS = ("debug", "info", "warning", "error")
#: Loggers kept at WARNING by default: one line per HTTP request (or per file lock / fsspec call) is noise.
QUIET_LOGGERS = ("httpx", "httpcore", "openai", "urllib3", "filelock", "fsspec")
FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"
DATE_FORMAT = "%H:%M:%S"


def configure_logging(level: str | None = None, stream: TextIO | None = None) -> None:
    """Set the levels: ``None`` is the quiet default (``tinystories`` at INFO, the rest at WARNING), a name of
    ``LOG_LEVELS`` is that level for everything. Adds one stream handler (``stream``, default stderr) to the root
    logger unless it already has a handler (a test's log capture, an application's own setup); calling again
    changes only the levels."""
    if level is not None and level not in LOG_LEVELS:
        raise RecipeError(f"Bad value for --log_level: {level!r}; choose one of {', '.join(LOG_LEVELS)}")
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        root.addHandler(handler)
    numeric = logging.WARNING if level is None else getattr(logging, level.upper())
    root.setLevel(numeric)
    logging.getLogger("tinystories").setLevel(logging.INFO if level is None else numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(numeric)


def pop_log_level(argv: list[str]) -> tuple[str | None, list[str]]:
    """``(level, the other arguments)`` of a command line holding ``--log_level LEVEL`` (or ``--log_level=LEVEL``)
    anywhere; ``(None, argv)`` without one. The last one given wins."""
    level, rest, i = None, [], 0
    while i < len(argv):
        word = argv[i]
        if word == "--log_level" or word == "--log-level":
            if i + 1 >= len(argv):
                raise RecipeError(f"--log_level needs a value: one of {', '.join(LOG_LEVELS)}")
            level, i = argv[i + 1], i + 2
        elif word.startswith(("--log_level=", "--log-level=")):
            level, i = word.partition("=")[2], i + 1
        else:
            rest.append(word)
            i += 1
    if level is not None and level not in LOG_LEVELS:
        raise RecipeError(f"Bad value for --log_level: {level!r}; choose one of {', '.join(LOG_LEVELS)}")
    return level, rest


def logging_from_argv(argv: list[str]) -> list[str]:
    """Configure logging from a command line's ``--log_level`` (the quiet default without one); the arguments
    without it, for the command's own parser."""
    level, rest = pop_log_level(list(argv))
    configure_logging(level)
    return rest


__all__ = ["LOG_LEVELS", "QUIET_LOGGERS", "configure_logging", "logging_from_argv", "pop_log_level"]
