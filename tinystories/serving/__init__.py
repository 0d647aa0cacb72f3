"""Serving a causal LM behind an OpenAI-compatible HTTP API (``tinystories serve``), batching concurrent requests
into one ``generate`` call. docs/serving.md says how it works and why.

``build_app`` and ``ServerThread`` load on first use: importing this package needs neither FastAPI nor uvicorn
(the ``serve`` extra); using them without it is a ``ServeError`` saying how to install it.
"""

from typing import TYPE_CHECKING

from .cli import main
from .settings import API_KEY_ENV, ServeSettings, require_serve_dependencies

if TYPE_CHECKING:
    from .app import ServerThread, build_app

__all__ = ["API_KEY_ENV", "ServeSettings", "ServerThread", "build_app", "main"]


def __getattr__(name: str):
    if name in ("build_app", "ServerThread"):
        require_serve_dependencies()
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
