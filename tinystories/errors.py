"""User errors: what a user can fix (a recipe, a file, a setting), said in one line.

The command line catches ``TinyStoriesError`` for every command and prints it as one line on stderr with exit
code 2; anything else is a bug and keeps its traceback. Each subclass also derives from the built-in exception it
refines, so code that catches ``ValueError`` (say) keeps working.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


class TinyStoriesError(Exception):
    """A user error: the message names the bad value and what would be accepted."""


class RecipeError(TinyStoriesError, ValueError):
    """A recipe or command line that cannot run: an unknown key, a bad value, or a setting that conflicts with the
    run (e.g. a fresh run over another run's checkpoints)."""


class DataError(TinyStoriesError, ValueError):
    """A data source that cannot be used: missing, empty, malformed or without the text column."""


class GenerationError(TinyStoriesError, RuntimeError):
    """A generation run that produced nothing usable (every request failed or every story was filtered out)."""


class EvaluationError(TinyStoriesError, ValueError):
    """An evaluation that cannot run: no model, a model that cannot be loaded, unusable prompts."""


class PushError(TinyStoriesError, ValueError):
    """A push that cannot run: a PATH that is not a folder of its kind, unreadable results, no token, a public
    repository asked to be private."""


class ServeError(TinyStoriesError, ValueError):
    """A server that cannot start: a missing model folder, bad settings, the serve extra not installed."""


class RunLockError(TinyStoriesError, RuntimeError):
    """A folder (``output_dir``, ``cache_dir``) held by another run: the message names it (``tinystories.run_lock``)."""


@contextlib.contextmanager
def one_line_errors(command: str) -> Iterator[None]:
    """A ``TinyStoriesError`` raised inside becomes one line on stderr (``tinystories COMMAND: error: ...``) and
    exit code 2; any other exception keeps its traceback."""
    try:
        yield
    except TinyStoriesError as e:
        print(f"tinystories {command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = [
    "DataError",
    "EvaluationError",
    "GenerationError",
    "PushError",
    "RecipeError",
    "RunLockError",
    "ServeError",
    "TinyStoriesError",
    "one_line_errors",
]
