"""``LLMConfig``: how to reach an OpenAI-compatible LLM and how hard to push it, the one set of settings that story
generation, ``tinystories evaluate``, the GPT-Eval judge and the metric module share, under the same key names.

This module has no ``from __future__ import annotations``: the fields' types stay real types, so the recipe
dataclass that ``llm_arguments`` derives from them parses with ``HfArgumentParser`` like any other.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

#: Where the API key is read from (never from a recipe or a file).
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass
class LLMConfig:
    """The LLM's name and endpoint(s), its key's environment variable, and the engine's limits."""

    model: str = field(default="gpt-4o-mini", metadata={"help": "The model, as the server knows it."})
    base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible endpoint(s), comma-separated (default: OPENAI_BASE_URL, else OpenAI)."},
    )
    api_key_env: str = field(
        default=DEFAULT_API_KEY_ENV,
        metadata={"help": "Environment variable holding the API key (a local server needs none)."},
    )
    max_concurrency: int = field(
        default=16,
        metadata={"help": "Requests in flight at once per endpoint (the adaptive limit starts here, never above)."},
    )
    adaptive_concurrency: bool = field(
        default=True,
        metadata={
            "help": "Halve an endpoint's concurrency on timeouts, HTTP 429 and 503 and raise it back by one per "
            "window of replies (AIMD); false: always max_concurrency."
        },
    )
    max_retries: int = field(
        default=6, metadata={"help": "Re-sends of a request after a transport failure (429, 5xx, timeout, dropped)."}
    )
    max_content_retries: int = field(
        default=2,
        metadata={
            "help": "Re-asks of a request whose reply is cut at max_tokens, empty or rejected by the caller's check "
            "(no backoff; independent of max_retries; paid rejected replies count, also from the cache)."
        },
    )
    request_timeout: float = field(
        default=300.0,
        metadata={"help": "Seconds before a request times out (time queued in the server counts)."},
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Request cache folder (default: output_dir/.cache): a paid reply is never paid again."},
    )
    budget_usd: float | None = field(default=None, metadata={"help": "Hard cap on the money spent by this run."})
    prices: dict | str | None = field(
        default=None,
        metadata={"help": "USD per 1M tokens of models not in the built-in table: {model: [input, output]}."},
    )
    backoff_base: float = field(default=1.0, metadata={"help": "First retry's backoff in seconds (then doubled)."})
    backoff_max: float = field(default=60.0, metadata={"help": "Longest backoff between retries, in seconds."})
    max_retry_after: float = field(
        default=120.0, metadata={"help": "Longest server-requested wait (retry-after) that is honoured, in seconds."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.prices, str):
            self.prices = yaml.safe_load(self.prices)
        self.prices = {name: tuple(float(p) for p in price) for name, price in (self.prices or {}).items()}
        if any(len(price) != 2 for price in self.prices.values()):
            raise ValueError(f"prices must map each model to [input, output] USD per 1M tokens, got {self.prices}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.max_content_retries < 0:
            raise ValueError(f"max_content_retries must be >= 0, got {self.max_content_retries}")
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {self.request_timeout}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ValueError(f"budget_usd must be >= 0, got {self.budget_usd}")

    def endpoints(self) -> list[str | None]:
        """The base URLs requests are spread over (``[None]``: the openai client's default, OpenAI itself)."""
        urls = self.base_url or os.environ.get("OPENAI_BASE_URL")
        if not urls:
            return [None]
        return [u.strip() for u in urls.split(",") if u.strip()] if isinstance(urls, str) else list(urls)

    def api_key(self, base_url: str | None) -> str | None:
        """The key from ``api_key_env``; a placeholder for a local server without one (the client needs a value)."""
        return os.environ.get(self.api_key_env) or ("EMPTY" if base_url else None)

    def public_base_url(self) -> str | None:
        """``base_url`` (or ``OPENAI_BASE_URL``) without any ``user:password@`` part, fit for results and cards."""
        from urllib.parse import urlsplit, urlunsplit

        urls = self.base_url or os.environ.get("OPENAI_BASE_URL")
        if not urls:
            return None
        public = []
        for url in urls.split(","):
            parts = urlsplit(url.strip())
            if parts.username or parts.password:
                host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
                url = urlunsplit(parts._replace(netloc=host))
            public.append(url.strip())
        return ",".join(public)

    def with_cache_dir(self, default: str) -> "LLMConfig":
        """This config with ``cache_dir`` defaulting to ``default`` (each command has its own default folder)."""
        return self if self.cache_dir else dataclasses.replace(self, cache_dir=default)


def llm_arguments(class_name: str, module: str, model_key: str, default_model: str, model_help: str) -> type:
    """A recipe dataclass with ``LLMConfig``'s fields, the model's key named ``model_key`` (``tinystories evaluate``
    and the metric name the judge ``judge_model``: its own ``model_name_or_path`` is the graded model).

    The fields are ``LLMConfig``'s (same types, defaults and help), so they are declared once; ``llm_config()`` of
    an instance is the ``LLMConfig`` it stands for, and its ``__post_init__`` applies ``LLMConfig``'s checks.
    Assign the result to ``class_name`` in ``module`` (so that it pickles).
    """
    specs: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(LLMConfig):
        if f.name == "model":
            specs.append((model_key, str, field(default=default_model, metadata={"help": model_help})))
        else:
            specs.append((f.name, f.type, field(default=f.default, metadata=dict(f.metadata))))

    def llm_config(self) -> LLMConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(LLMConfig) if f.name != "model"}
        return LLMConfig(model=getattr(self, model_key), **values)

    def __post_init__(self) -> None:
        self.prices = llm_config(self).prices  # LLMConfig's checks; prices written as text become a mapping

    cls = dataclasses.make_dataclass(
        class_name, specs, namespace={"llm_config": llm_config, "__post_init__": __post_init__}
    )
    cls.__module__ = module
    cls.__doc__ = f"LLMConfig's settings as recipe keys, the model named ``{model_key}``."
    return cls


#: The fields every user of an LLM accepts (``judge_model`` or ``model`` aside), e.g. as the metric's kwargs.
LLM_SETTINGS = tuple(f.name for f in dataclasses.fields(LLMConfig) if f.name != "model")

__all__ = ["DEFAULT_API_KEY_ENV", "LLMConfig", "LLM_SETTINGS", "llm_arguments"]
