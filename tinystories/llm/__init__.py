"""Talking to LLMs through OpenAI-compatible APIs: ``LLMConfig`` (the shared settings), the engine (cache, retries,
budget, concurrency, progress), the request cache, prices, and the OpenAI Batch API runner."""

from .config import LLM_SETTINGS, LLMConfig, llm_arguments
from .engine import SAMPLING_KEYS, EngineStats, LLMEngine, PermanentFailure, Result, RetryableFailure
from .pricing import DEFAULT_PRICES, price_of
from .request_cache import RequestCache, request_key

__all__ = [
    "DEFAULT_PRICES",
    "LLM_SETTINGS",
    "SAMPLING_KEYS",
    "EngineStats",
    "LLMConfig",
    "LLMEngine",
    "PermanentFailure",
    "RequestCache",
    "Result",
    "RetryableFailure",
    "llm_arguments",
    "price_of",
    "request_key",
]
