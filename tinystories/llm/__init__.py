"""Talking to LLMs through OpenAI-compatible APIs: ``LLMConfig`` (the shared settings), the engine (cache, retries,
budget, adaptive concurrency, failure reasons, progress), the request cache, prices, and the OpenAI Batch API
runner."""

from .config import LLM_SETTINGS, LLMConfig, llm_arguments
from .engine import SAMPLING_KEYS, LLMEngine
from .failures import failure_table, reason_of
from .outcomes import ContentFailure, EngineStats, PermanentFailure, Rejection, Result, RetryableFailure
from .pricing import DEFAULT_PRICES, price_of
from .request_cache import RequestCache, request_key

__all__ = [
    "DEFAULT_PRICES",
    "LLM_SETTINGS",
    "SAMPLING_KEYS",
    "ContentFailure",
    "EngineStats",
    "LLMConfig",
    "LLMEngine",
    "PermanentFailure",
    "Rejection",
    "RequestCache",
    "Result",
    "RetryableFailure",
    "failure_table",
    "llm_arguments",
    "price_of",
    "reason_of",
    "request_key",
]
