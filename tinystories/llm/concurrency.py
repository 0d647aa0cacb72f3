"""Adaptive concurrency per endpoint (AIMD, like TCP's congestion window): how many requests each endpoint gets at
once, lowered when it is overloaded (timeouts, HTTP 429/503) and raised back while it answers. The rules, and why,
are in docs/llm.md ("Adaptive concurrency").

Requests wait for a slot of an endpoint's current limit in one FIFO queue; a slot is handed straight to the next
waiter when one frees (no thundering herd over thousands of waiting requests)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from .failures import OVERLOAD, TIMEOUT

#: Replies faster than this share of the request timeout count toward an increase of the limit.
FAST_REPLY = 0.5
#: A reply slower than this share of the timeout lowers the limit as an overload does (queueing near the timeout).
SLOW_REPLY = 0.75


@dataclass
class Ticket:
    """A slot held by one attempt: its endpoint, and the limit's window (``epoch``) and value when it was sent."""

    endpoint: EndpointLimit
    epoch: int
    limit: int
    sent_at: float = field(default_factory=time.monotonic)


class EndpointLimit:
    """The concurrency limit of one endpoint.

    - It starts at ``maximum`` and never goes above it.
    - Multiplicative decrease: an overload (timeout, 429, 503) of an attempt sent in the current window halves it
      (floor 1) and opens a new window; overloads of attempts sent before that (the same wave, already answered
      for) do not lower it again. It goes lower when the replies of the last ``timeout`` seconds say the endpoint
      sustains less (Little's law: ``replies/s * FAST_REPLY * timeout`` requests in flight answer within half the
      timeout); with no reply at all in that time it drops to 1, and climbs back fast (+1 per reply) to half the
      old limit.
    - A reply that took more than ``SLOW_REPLY`` (3/4) of the request timeout lowers it like an overload: requests
      queue so long that the next ones will time out.
    - Additive increase: +1 after ``limit`` replies (a window of successes), counting only replies that came back
      within ``FAST_REPLY`` (half) of the request timeout: a server answering near the timeout is not given more.
    - Hopeless: once at 1, a timeout of a request sent alone (two in a row if this endpoint ever answered) with no
      reply between means even one request at a time times out: the endpoint gets no more requests.
    With ``adaptive`` false the limit stays at ``maximum`` (only the hopeless rule applies, at ``maximum == 1``).
    """

    def __init__(self, maximum: int, adaptive: bool = True, timeout: float | None = None):
        self.maximum = self.limit = self.threshold = maximum
        self.adaptive = adaptive
        self.timeout = timeout
        self.fast_reply_s = None if timeout is None else FAST_REPLY * timeout
        self.slow_reply_s = None if timeout is None else SLOW_REPLY * timeout
        self._recent: deque[float] = deque()  # times of the replies of the last ``timeout`` seconds
        self.started: float | None = None  # first send of the run: the rate of replies is measured since then
        self.in_flight = 0
        self.epoch = 0
        self.lowest = maximum
        self.decreases = self.increases = 0
        self.replies = 0  # replies received from this endpoint (any content)
        self._successes = 0  # counted toward the next additive increase
        self._floor_timeouts = 0
        self.hopeless = False

    def on_reply(self, ticket: Ticket) -> None:
        self.replies += 1
        self._floor_timeouts = 0
        now = time.monotonic()
        latency = now - ticket.sent_at
        self._recent.append(now)
        if self.adaptive and self.slow_reply_s is not None and latency > self.slow_reply_s:
            self._decrease(ticket)  # answered, but so late that the next ones will time out
            return
        if not self.adaptive or self.limit >= self.maximum:
            return
        if self.fast_reply_s is not None and latency > self.fast_reply_s:
            return  # answered, but not far from the timeout: no more load
        if self.limit < self.threshold:
            self.limit += 1  # back fast to half the limit that failed
            self.increases += 1
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit, self._successes = self.limit + 1, 0
            self.increases += 1

    def on_overload(self, ticket: Ticket, reason: str) -> None:
        if reason == TIMEOUT and ticket.limit == 1:
            self._floor_timeouts += 1
            if self._floor_timeouts >= (1 if self.replies == 0 else 2):
                self.hopeless = True
        if self.adaptive:
            self._decrease(ticket)

    def sustained(self) -> int | None:
        """Requests in flight that the replies of the last ``timeout`` seconds could answer within half of it."""
        if self.timeout is None:
            return None
        now = time.monotonic()
        while self._recent and self._recent[0] < now - self.timeout:
            self._recent.popleft()
        span = min(self.timeout, now - (self.started or now))
        return int(len(self._recent) / span * FAST_REPLY * self.timeout) if span > 0 else 0

    def _decrease(self, ticket: Ticket) -> None:
        if ticket.epoch != self.epoch:
            return  # sent before the last decrease: that wave was answered for already
        old, sustained = self.limit, self.sustained()
        self.limit = self.threshold = max(1, old // 2 if sustained is None else min(old // 2, sustained))
        if sustained == 0:  # nothing came back in time: from 1, back fast (+1 a reply) to half the old limit
            self.threshold = max(1, old // 2)
        self.epoch += 1
        self._successes = 0
        self.decreases += int(self.limit < old)
        self.lowest = min(self.lowest, self.limit)


class ConcurrencyPool:
    """The endpoints' limits and the queue of requests waiting for a slot (``acquire`` / ``release``)."""

    def __init__(self, urls: list, maximum: int, adaptive: bool = True, timeout: float | None = None):
        self.urls = list(urls)
        self.limits = [EndpointLimit(maximum, adaptive, timeout) for _ in self.urls]
        self._waiters: deque[asyncio.Future] = deque()

    def start_run(self) -> None:
        """A run starts (the rates of replies are measured from now at most)."""
        for endpoint in self.limits:
            endpoint.started = None
            endpoint._recent.clear()

    @property
    def hopeless(self) -> bool:
        return all(e.hopeless for e in self.limits)

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.limits)

    def describe(self) -> str:
        """``current/maximum`` summed over the endpoints still in use (e.g. ``4/16``), for the progress bar."""
        live = [e for e in self.limits if not e.hopeless] or self.limits
        return f"{sum(e.limit for e in live)}/{sum(e.maximum for e in live)}"

    def url_of(self, ticket: Ticket):
        return self.urls[self.limits.index(ticket.endpoint)]

    def _take(self) -> Ticket | None | bool:
        """A ticket of the least-loaded endpoint with a free slot; ``None`` when every endpoint is hopeless;
        ``False`` when all are busy."""
        live = [e for e in self.limits if not e.hopeless]
        if not live:
            return None
        free = [e for e in live if e.in_flight < e.limit]
        if not free:
            return False
        endpoint = min(free, key=lambda e: e.in_flight)
        endpoint.in_flight += 1
        endpoint.started = endpoint.started or time.monotonic()
        return Ticket(endpoint, endpoint.epoch, endpoint.limit)

    async def acquire(self) -> Ticket | None:
        """Wait for a slot (first come, first served); ``None`` when no endpoint is usable any more."""
        if not self._waiters:
            ticket = self._take()
            if ticket is not False:
                return ticket
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # handed a slot just as it was cancelled: give it back
            raise

    def release(self, ticket: Ticket, outcome: str | None = None, replied: bool = False) -> None:
        """Free ``ticket``'s slot; ``replied``: a reply came back (whatever its content); ``outcome``: the failure
        reason otherwise (an overload lowers the limit; other failures, e.g. a refused connection, leave it)."""
        endpoint = ticket.endpoint
        endpoint.in_flight -= 1
        if replied:
            endpoint.on_reply(ticket)
        elif outcome in OVERLOAD:
            endpoint.on_overload(ticket, outcome)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiters:
            if self._waiters[0].done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            ticket = self._take()
            if ticket is False:
                return
            self._waiters.popleft().set_result(ticket)
