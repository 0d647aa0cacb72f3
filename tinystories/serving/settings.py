"""The settings of ``tinystories serve`` and ``build_app``: one dataclass whose fields are the command's flags."""

import os
from dataclasses import dataclass, field, fields
from typing import Literal

from ..errors import ServeError

API_KEY_ENV = "TINYSTORIES_SERVE_API_KEY"
SERVE_EXTRA_HINT = "pip install 'tinystories[serve]'"
DTYPES = ("auto", "float32", "bfloat16", "float16")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class ServeSettings:
    """Options of ``tinystories serve MODEL [--key value ...]`` (and the keyword arguments of ``build_app``)."""

    model: str = field(
        metadata={"help": "A model folder (e.g. a tinystories train output_dir) or a Hub id.", "positional": True}
    )
    served_model_name: str | None = field(
        default=None, metadata={"help": "Model name clients use (None: the folder's name, or the Hub id)."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Interface to bind."})
    port: int = field(default=8000, metadata={"help": "Port (0: any free port; the URL is logged at start)."})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        default="auto", metadata={"help": "Weights dtype."}
    )
    device: str | None = field(
        default=None, metadata={"help": "cpu, cuda, cuda:1, ... (None: cuda if available, else cpu)."}
    )
    attn_implementation: str = field(
        default="sdpa", metadata={"help": "sdpa (GPT-Neo: this package's exact fast attention) or eager."}
    )
    max_batch_size: int = field(default=32, metadata={"help": "Rows (choices x prompts) in one generate call."})
    max_queue: int = field(default=256, metadata={"help": "Requests waiting at most; beyond, a 429 with retry-after."})
    batch_wait_ms: float = field(
        default=5.0, metadata={"help": "How long the worker waits for more requests to batch with (ms)."}
    )
    max_model_len: int | None = field(default=None, metadata={"help": "Context length (None: the model's positions)."})
    truncate_prompts: bool = field(
        default=False,
        metadata={"help": "Keep the last tokens of a prompt too long for the context instead of a 400 error."},
    )
    log_level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata={"help": "Log level."})
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": f"Require 'Authorization: Bearer KEY' on /v1/... requests (None: ${API_KEY_ENV}, else no key)."
            " Prefer the environment variable: a command line is visible to the machine's other users."
        },
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ServeError("a model is required: a model folder or a Hub id")
        if self.dtype not in DTYPES:
            raise ServeError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.log_level not in LOG_LEVELS:
            raise ServeError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.max_batch_size < 1:
            raise ServeError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_queue < 1:
            raise ServeError(f"max_queue must be at least 1, got {self.max_queue}")
        if self.batch_wait_ms < 0:
            raise ServeError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ServeError(f"max_model_len must be at least 2, got {self.max_model_len}")
        if not 0 <= self.port <= 65535:
            raise ServeError(f"port must be in [0, 65535], got {self.port}")
        if self.served_model_name is None:
            path = self.model.rstrip("/\\")
            self.served_model_name = os.path.basename(path) if os.path.isdir(path) else self.model
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None

    @classmethod
    def from_kwargs(cls, model: str, **kwargs) -> "ServeSettings":
        """Settings from ``build_app``'s keyword arguments; an unknown one is a ``ServeError`` naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ServeError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(model=model, **kwargs)


def require_serve_dependencies() -> None:
    """FastAPI and uvicorn (the ``serve`` extra) are importable, else a ``ServeError`` saying how to install them."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ServeError(
            f"tinystories serve needs FastAPI and uvicorn ({e.name} is missing): {SERVE_EXTRA_HINT}"
        ) from e
