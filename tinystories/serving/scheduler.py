"""The batching scheduler: a queue of jobs and the one worker thread that runs them, several requests at a time, as
one left-padded ``model.generate`` call (docs/serving.md says how batches are formed and why)."""

import logging
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .api_errors import GENERIC_500, APIError
from .logprobs import prompt_logprobs
from .rows import Job
from .sampler import RowSampler, RowTracker
from .served_model import ServedModel
from .settings import ServeSettings

logger = logging.getLogger("tinystories.serve")


@dataclass
class BatchStats:
    """What ``/health`` reports of the batching (counts since start)."""

    requests: int = 0
    rejected: int = 0
    cancelled: int = 0  # requests whose client disconnected before the reply
    failed: int = 0  # requests answered with a 500 (an error while generating)
    generate_calls: int = 0
    rows: int = 0
    max_rows_per_call: int = 0
    prompt_tokens: int = 0  # once a prompt, as in usage (not once a row)
    completion_tokens: int = 0
    generate_seconds: float = 0.0


def _bucket(max_tokens: int) -> int:
    return (max_tokens - 1).bit_length()  # 1, 2, 3-4, 5-8, ..., 33-64, 65-128, ...


class BatchScheduler:
    """A queue of jobs and the worker thread that runs them in batches.

    ``sampler_class`` and ``tracker_class`` are the logits processor and stopping criterion each batch runs with.
    """

    sampler_class = RowSampler
    tracker_class = RowTracker

    def __init__(self, served: ServedModel, settings: ServeSettings):
        self.served = served
        self.max_batch_size = settings.max_batch_size
        self.max_queue = settings.max_queue
        self.batch_wait = settings.batch_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: deque[Job] = deque()
        self._running = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(target=self._work, name="tinystories-generate", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop: the running batch ends at its next step (its requests get a 503), queued requests get a 503."""
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs (and the server is not shutting down)."""
        return self._thread is not None and self._thread.is_alive() and not self._closing.is_set()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing.is_set() or self._thread is None:
                raise APIError(503, "The server is shutting down.", code="shutting_down")
            if not self._thread.is_alive():
                raise APIError(503, "The server cannot generate (its generation worker stopped).", code="unavailable")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise APIError(
                    429,
                    f"The server's queue is full ({self.max_queue} requests waiting); retry later.",
                    code="queue_full",
                    kind="rate_limit_error",
                    headers={"retry-after": "1"},
                )
            self.stats.requests += 1
            job.arrived = time.monotonic()
            self._queue.append(job)
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        """The client is gone: a queued job leaves the queue, a running one stops at the next step."""
        with self._cond:
            if not job.cancelled and not job.resolved:
                self.stats.cancelled += 1
                try:
                    self._queue.remove(job)
                except ValueError:  # running (or not queued yet)
                    pass
                self._cond.notify_all()
            job.cancelled = True

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            stats = asdict(self.stats)
            stats["queued"] = len(self._queue)
            stats["running"] = self._running
        stats["mean_rows_per_call"] = (
            round(stats["rows"] / stats["generate_calls"], 2) if stats["generate_calls"] else 0
        )
        stats["generate_seconds"] = round(stats["generate_seconds"], 3)
        return stats

    # -- worker thread ------------------------------------------------------------------------------------------
    def _pick(self) -> list[Job]:
        """The oldest job and the queued jobs that can share its generate call (lock held)."""
        if any(job.cancelled for job in self._queue):  # (cancel() removes them: this is a safety net)
            self._queue = deque(job for job in self._queue if not job.cancelled)
        if not self._queue:
            return []
        first = self._queue[0]
        batch = [first]
        if not first.alone:
            rows, longest_prompt, longest_reply = len(first.rows), first.max_prompt, first.max_tokens
            for job in list(self._queue)[1:]:
                if job.alone or _bucket(job.max_tokens) != _bucket(first.max_tokens):
                    continue
                if rows + len(job.rows) > self.max_batch_size:
                    continue
                if max(longest_prompt, job.max_prompt) + max(longest_reply, job.max_tokens) > self.served.context:
                    continue
                batch.append(job)
                rows += len(job.rows)
                longest_prompt, longest_reply = max(longest_prompt, job.max_prompt), max(longest_reply, job.max_tokens)
                if rows == self.max_batch_size:
                    break
        for job in batch:
            self._queue.remove(job)
        return batch

    def _gathering(self) -> float:
        """Seconds left to wait for company (lock held): a burst of requests is still arriving while they come less
        than batch_wait apart; stop at a quiet gap, a full batch, or 10 x batch_wait after the oldest arrived."""
        queue = self._queue
        if not queue or queue[0].alone or sum(len(j.rows) for j in queue) >= self.max_batch_size:
            return 0.0
        deadline = min(queue[-1].arrived + self.batch_wait, queue[0].arrived + 10 * self.batch_wait)
        return deadline - time.monotonic()

    def _work(self) -> None:
        try:
            while True:
                batch: list[Job] = []
                try:
                    with self._cond:
                        while not self._queue and not self._closing.is_set():
                            self._cond.wait()
                        while not self._closing.is_set() and (left := self._gathering()) > 0:
                            self._cond.wait(left)
                        if self._closing.is_set():
                            return
                        batch = self._pick()
                        self._running = len(batch)
                    if batch:
                        self._run(batch)
                except Exception:  # a bug outside generate: answer the requests at hand, keep the worker alive
                    logger.exception("the generation worker failed (it goes on)")
                    with self._cond:
                        if not batch and self._queue:
                            batch = [self._queue.popleft()]
                    self._fail(batch)
                finally:
                    with self._cond:
                        self._running = 0
        finally:
            with self._cond:
                pending, self._queue = list(self._queue), deque()
            if self._closing.is_set():
                error = {"message": "The server is shutting down.", "code": "shutting_down"}
            else:
                logger.error("the generation worker stopped: the server answers 503 to every request")
                error = {
                    "message": "The server cannot generate (its generation worker stopped).",
                    "code": "unavailable",
                }
            for job in pending:
                job.resolve(APIError(503, **error))

    def _fail(self, jobs: list[Job]) -> None:
        """Answer the jobs not answered yet with a generic 500 (the traceback is in the log, not in the reply)."""
        unresolved = [job for job in jobs if not job.resolved]
        with self._cond:
            self.stats.failed += len(unresolved)
        for job in unresolved:
            job.resolve(APIError(500, GENERIC_500, code="generation_error"))

    def _run(self, batch: list[Job]) -> None:
        served = self.served
        rows = [row for job in batch for row in job.rows]
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                self._echo(batch)
                width = max(len(r.prompt.ids) for r in rows)
                input_ids = torch.full((len(rows), width), served.pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, row in enumerate(rows):
                    input_ids[i, width - len(row.prompt.ids) :] = torch.tensor(row.prompt.ids)
                    mask[i, width - len(row.prompt.ids) :] = 1
                # a seeded job runs alone: its seed; else any (one generator for the whole batch)
                seed = batch[0].seed if batch[0].alone else random.getrandbits(63)
                generator = torch.Generator().manual_seed(seed % 2**64)
                sampler = self.sampler_class(rows, served.vocab_size, served.device, generator)
                tracker = self.tracker_class(rows, sampler, self._closing)
                served.model.generate(
                    input_ids=input_ids.to(served.device),
                    attention_mask=mask.to(served.device),
                    max_new_tokens=max(r.params.max_tokens for r in rows),
                    do_sample=False,
                    logits_processor=[sampler],
                    stopping_criteria=[tracker],
                    pad_token_id=served.pad_id,
                )
                tracker.flush(final=True)
        except Exception:  # a failed batch must not kill the worker: answer its requests with a 500
            logger.exception("generation failed for a batch of %d rows (%d requests)", len(rows), len(batch))
            self._fail(batch)
        finally:
            elapsed = time.perf_counter() - start
            with self._cond:
                s = self.stats
                s.generate_calls += 1
                s.rows += len(rows)
                s.max_rows_per_call = max(s.max_rows_per_call, len(rows))
                s.generate_seconds += elapsed
                s.prompt_tokens += sum(job.prompt_tokens for job in batch)
                s.completion_tokens += sum(job.completion_tokens for job in batch)

    def _echo(self, batch: list[Job]) -> None:
        """``echo``: score the prompts that need logprobs (one unpadded forward pass each), stream the prompts."""
        served = self.served
        for job in batch:
            if job.wants_prompt_logprobs:
                k = max(r.params.logprobs or 0 for r in job.rows)
                for prompt in job.prompts:
                    prompt.logprobs = prompt_logprobs(
                        served.model, prompt.ids, k, served.device, served.decode, prompt.text
                    )
            if job.echo and job.stream:
                job.publish([row.echo_delta() for row in job.rows])
