"""The adaptive concurrency limit (AIMD) of an endpoint and the queue of requests waiting for a slot."""

import asyncio
import time

from tinystories.llm.concurrency import ConcurrencyPool, EndpointLimit, Ticket


def sent(endpoint, ago=0.0):
    """A ticket of ``endpoint`` as if taken ``ago`` seconds ago (its latency when it comes back now)."""
    endpoint.started = endpoint.started or time.monotonic() - 1000
    return Ticket(endpoint, endpoint.epoch, endpoint.limit, time.monotonic() - ago)


def test_one_wave_of_timeouts_halves_the_limit_once_and_each_later_wave_again_never_below_one():
    endpoint = EndpointLimit(16)  # no timeout given: plain halving
    wave = [sent(endpoint) for _ in range(12)]
    for ticket in wave:
        endpoint.on_overload(ticket, "timeout")
    assert endpoint.limit == 8 and endpoint.decreases == 1  # twelve timeouts of one wave: one decrease
    for reason in ("HTTP 429", "HTTP 503", "timeout", "timeout", "timeout"):
        endpoint.on_overload(sent(endpoint), reason)  # each sent after the last decrease
    assert endpoint.limit == 1 and endpoint.lowest == 1 and endpoint.decreases == 4


def test_replies_raise_it_by_one_per_window_up_to_the_maximum_only():
    endpoint = EndpointLimit(6)
    endpoint.on_overload(sent(endpoint), "HTTP 429")
    endpoint.on_overload(sent(endpoint), "HTTP 429")
    assert endpoint.limit == 1
    limits = []
    for _ in range(40):
        endpoint.on_reply(sent(endpoint))
        limits.append(endpoint.limit)
    # +1 after `limit` replies: 1 reply at 1, 2 at 2, 3 at 3 ... and never above max_concurrency
    assert limits[:10] == [2, 2, 3, 3, 3, 4, 4, 4, 4, 5]
    assert max(limits) == 6 == endpoint.maximum and limits[-1] == 6


def test_slow_replies_lower_it_and_replies_near_the_timeout_do_not_raise_it():
    endpoint = EndpointLimit(8, timeout=4.0)
    endpoint.started = time.monotonic() - 4.0
    for _ in range(20):  # 5/s: what sustains 10 in flight, more than the halving leaves
        endpoint.on_reply(sent(endpoint, ago=0.1))
    endpoint.on_overload(sent(endpoint), "HTTP 503")
    assert endpoint.limit == 4
    for _ in range(20):
        endpoint.on_reply(sent(endpoint, ago=2.5))  # answered within the timeout, but past half of it
    assert endpoint.limit == 4  # no increase
    endpoint.on_reply(sent(endpoint, ago=3.5))  # past 3/4 of the timeout: the next ones would time out
    assert endpoint.limit == 2 and endpoint.decreases == 2


def test_timeouts_with_nothing_answered_drop_to_one_then_climb_fast_to_half():
    endpoint = EndpointLimit(16, timeout=10.0)
    for ticket in [sent(endpoint) for _ in range(16)]:
        endpoint.on_overload(ticket, "timeout")
    assert endpoint.limit == 1 and endpoint.threshold == 8  # Little's law: no reply in 10 s sustains nothing
    for _ in range(7):
        endpoint.on_reply(sent(endpoint, ago=0.1))
    assert endpoint.limit == 8  # +1 a reply up to half the old limit
    endpoint.on_reply(sent(endpoint, ago=0.1))
    assert endpoint.limit == 8  # then +1 a window


def test_a_decrease_goes_to_what_recent_replies_sustain():
    endpoint = EndpointLimit(16, timeout=4.0)
    endpoint.started = time.monotonic() - 4.0
    for _ in range(8):  # 8 replies in the last 4 s: 2/s, so 4 in flight answer within 2 s
        endpoint.on_reply(sent(endpoint, ago=1.0))
    endpoint.on_overload(sent(endpoint), "timeout")
    assert endpoint.limit == 4  # not 8


def test_even_one_at_a_time_timing_out_makes_the_endpoint_hopeless():
    never = EndpointLimit(4)
    for reason in ("timeout", "timeout"):
        never.on_overload(sent(never), reason)
    assert never.limit == 1 and not never.hopeless  # the second wave was sent at 2
    never.on_overload(sent(never), "timeout")  # sent alone, never answered anything
    assert never.hopeless
    once = EndpointLimit(1)
    once.on_reply(sent(once))  # it answered once: two timeouts in a row at 1 before giving up
    once.on_overload(sent(once), "timeout")
    assert not once.hopeless
    once.on_reply(sent(once))
    once.on_overload(sent(once), "timeout")
    assert not once.hopeless  # a reply in between starts the count again
    once.on_overload(sent(once), "timeout")
    assert once.hopeless
    fixed = EndpointLimit(8, adaptive=False)
    for _ in range(20):
        fixed.on_overload(sent(fixed), "timeout")
    assert fixed.limit == 8 and not fixed.hopeless and fixed.decreases == 0


def test_the_pool_hands_slots_first_come_first_served_within_the_limit():
    async def scenario():
        pool = ConcurrencyPool(["a", "b"], maximum=2)
        held = [await pool.acquire() for _ in range(4)]
        assert sorted(pool.url_of(t) for t in held) == ["a", "a", "b", "b"]  # least loaded first
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters) and pool.in_flight == 4
        pool.release(held[0], replied=True)
        await asyncio.sleep(0)
        assert [w.done() for w in waiters] == [True, False, False]  # the first waiter, and only it
        first_b = next(t for t in held if t.endpoint is pool.limits[1])
        pool.release(first_b, "HTTP 429")  # b halves to 1 with 1 still in flight: no slot for the others
        await asyncio.sleep(0)
        assert [w.done() for w in waiters] == [True, False, False] and pool.describe() == "3/4"
        for endpoint in pool.limits:
            endpoint.hopeless = True
        pool.release(held[1])
        await asyncio.sleep(0)
        assert [w.result() for w in waiters[1:]] == [None, None]  # no endpoint left: nobody waits forever
        assert await pool.acquire() is None

    asyncio.run(scenario())
