"""The OpenAI Batch API as an alternative to live requests (half the price, results within 24 hours), sharing the
engine's cache, validation and accounting; batch ids are recorded at once, so a re-run polls instead of paying again
(docs/llm.md)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from .engine import SAMPLING_KEYS, LLMEngine
from .failures import reason_of
from .outcomes import Result, RetryableFailure
from .request_cache import request_key

logger = logging.getLogger(__name__)

MAX_REQUESTS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 200 * 1024 * 1024
TERMINAL = ("completed", "expired", "failed", "cancelled")
BATCH_DISCOUNT = 0.5


def split_jsonl(lines: Sequence[str], max_requests: int, max_bytes: int) -> list[list[str]]:
    """Consecutive chunks of JSONL lines, each within both limits."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line_bytes = len(line.encode()) + 1
        if line_bytes > max_bytes:
            raise ValueError(f"one request is {line_bytes} bytes, over the {max_bytes}-byte file limit")
        if current and (len(current) >= max_requests or size + line_bytes > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(line)
        size += line_bytes
    if current:
        chunks.append(current)
    return chunks


class BatchRunner:
    """Runs an engine's requests through the Batch API, sharing its config, cache, validation and accounting."""

    def __init__(
        self,
        engine: LLMEngine,
        poll_interval: float = 30.0,
        max_requests_per_file: int = MAX_REQUESTS_PER_FILE,
        max_bytes_per_file: int = MAX_BYTES_PER_FILE,
    ):
        if engine.cache is None:
            raise ValueError("the Batch API mode needs a request cache (cache_dir) to keep batch ids and results")
        self.engine = engine
        self.poll_interval = poll_interval
        self.max_requests = max_requests_per_file
        self.max_bytes = max_bytes_per_file
        self.state_path = os.path.join(engine.config.cache_dir, "batches.json")

    def _client(self):
        from openai import OpenAI

        config = self.engine.config
        base_url = config.endpoints()[0]
        return OpenAI(
            base_url=base_url,
            api_key=config.api_key(base_url),
            timeout=config.request_timeout,
            max_retries=config.max_retries,
        )

    def _load_state(self) -> dict[str, dict]:
        if not os.path.isfile(self.state_path):
            return {}
        with open(self.state_path) as f:
            return json.load(f)

    def _save_state(self, state: dict[str, dict]) -> None:
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
        os.replace(tmp, self.state_path)  # atomic: a crash leaves the old or the new state, never half of one

    def submit(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[str]:
        """Upload and create batches for the uncached requests not already submitted; returns all pending ids."""
        unknown = [k for k in params if k not in SAMPLING_KEYS]
        if unknown:
            raise ValueError(f"Unknown sampling parameters {unknown}; known: {', '.join(SAMPLING_KEYS)}")
        model, cache = self.engine.config.model, self.engine.cache
        lines = []
        for messages in requests:
            key = request_key(model, messages, params)
            if cache.get(key) is None:
                body = {"model": model, "messages": list(messages), **params}
                lines.append(
                    json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body})
                )
        state = self._load_state()
        client = self._client()
        for chunk in split_jsonl(sorted(set(lines)), self.max_requests, self.max_bytes):
            chunk_id = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
            if chunk_id in state:
                continue  # submitted by an earlier run: poll it, never pay twice
            upload = client.files.create(
                file=(f"tinystories-{chunk_id}.jsonl", ("\n".join(chunk) + "\n").encode()), purpose="batch"
            )
            batch = client.batches.create(
                input_file_id=upload.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"tinystories_chunk": chunk_id},
            )
            state[chunk_id] = {"batch_id": batch.id, "input_file_id": upload.id, "requests": len(chunk)}
            self._save_state(state)
            logger.info("Submitted batch %s (%d requests)", batch.id, len(chunk))
        return [entry["batch_id"] for entry in state.values()]

    def collect(self, wait: bool = True) -> None:
        """Poll the recorded batches; store the results of finished ones in the cache and forget those batches."""
        state = self._load_state()
        client = self._client()
        while state:
            for chunk_id, entry in list(state.items()):
                batch = client.batches.retrieve(entry["batch_id"])
                if batch.status not in TERMINAL:
                    continue
                stored = self._store(client, batch)
                logger.info("Batch %s %s: %d results stored", batch.id, batch.status, stored)
                del state[chunk_id]
                self._save_state(state)
            if state and wait:
                time.sleep(self.poll_interval)
            elif not wait:
                break

    def _store(self, client, batch) -> int:
        stored = 0
        if batch.output_file_id:
            for line in client.files.content(batch.output_file_id).text.splitlines():
                item = json.loads(line)
                response = item.get("response") or {}
                if response.get("status_code") != 200:
                    continue
                body = response["body"]
                try:
                    self.engine.check_reply(
                        body, -1, validate=False
                    )  # the caller's validation needs the index: in run()
                except RetryableFailure as e:
                    logger.warning("Batch reply %s rejected: %s", item["custom_id"][:12], e.reason)
                    continue
                usage = body.get("usage") or {}
                self.engine.stats.prompt_tokens += usage.get("prompt_tokens", 0)
                self.engine.stats.completion_tokens += usage.get("completion_tokens", 0)
                self.engine.stats.cost_usd += BATCH_DISCOUNT * self.engine.cost_of(usage)
                self.engine.cache.put(item["custom_id"], self.engine.config.model, body)
                stored += 1
        return stored

    def run(self, requests: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[Result]:
        """Submit (or resume), wait for the batches, and return results in the order of ``requests``."""
        self.submit(requests, **params)
        self.collect(wait=True)
        results = []
        model, cache = self.engine.config.model, self.engine.cache
        for index, messages in enumerate(requests):
            key = request_key(model, messages, params)
            hit = cache.get(key)
            if hit is None:
                self.engine.stats.failed += 1
                self.engine.stats.failures["batch"] += 1
                results.append(Result(key, False, error="batch: no valid result (expired, failed or rejected)"))
                continue
            try:
                text, finish = self.engine.check_reply(hit, index)
            except RetryableFailure as e:  # the batch's reply, refused by the caller's check (no live re-ask)
                self.engine.stats.failed += 1
                self.engine.stats.failures[reason_of(e.reason)] += 1
                results.append(Result(key, False, cached=True, error=e.reason, response=hit))
                continue
            self.engine.stats.succeeded += 1
            results.append(Result(key, True, text, finish, hit.get("usage", {}), cached=True, response=hit))
        return results
