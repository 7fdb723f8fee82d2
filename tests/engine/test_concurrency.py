"""AdaptiveLimiter: the cap holds, AIMD adapts, FIFO order, cancellation never leaks a slot."""

from __future__ import annotations

import asyncio
import random

import pytest

from promptlooper_tui.engine.concurrency import AdaptiveLimiter


async def _settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_never_more_than_limit_in_flight() -> None:
    limiter = AdaptiveLimiter(3)
    in_flight = peak = 0

    async def work() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(random.uniform(0, 0.002))
            in_flight -= 1

    await asyncio.gather(*(work() for _ in range(40)))
    assert peak == 3
    assert limiter.in_flight == 0


async def test_cap_holds_while_the_limit_moves() -> None:
    limiter = AdaptiveLimiter(6, increase_every=2)
    in_flight = 0
    violations: list[tuple[int, int]] = []

    async def work(index: int) -> None:
        nonlocal in_flight
        async with limiter.slot():
            in_flight += 1
            if in_flight > limiter.max_concurrency:
                violations.append((in_flight, limiter.limit))
            await asyncio.sleep(0)
            if index % 7 == 0:
                limiter.on_rate_limited()
            else:
                limiter.on_success()
            in_flight -= 1

    await asyncio.gather(*(work(i) for i in range(200)))
    assert violations == []
    assert limiter.in_flight == 0


async def test_waiters_are_admitted_in_fifo_order() -> None:
    limiter = AdaptiveLimiter(1)
    admitted: list[int] = []

    async def work(index: int) -> None:
        async with limiter.slot():
            admitted.append(index)
            await asyncio.sleep(0)

    async with limiter.slot():
        tasks = []
        for index in range(5):
            tasks.append(asyncio.create_task(work(index)))
            await _settle()
    await asyncio.gather(*tasks)
    assert admitted == [0, 1, 2, 3, 4]


async def test_rate_limit_halves_and_floors_at_one() -> None:
    limiter = AdaptiveLimiter(8)
    assert limiter.on_rate_limited()
    assert limiter.limit == 4
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    assert limiter.limit == 1


async def test_one_burst_of_rate_limits_halves_once() -> None:
    limiter = AdaptiveLimiter(8)
    everyone_in = asyncio.Event()

    async def rate_limited_request() -> None:
        async with limiter.slot():
            if limiter.in_flight == 8:
                everyone_in.set()
            await everyone_in.wait()
            limiter.on_rate_limited()

    await asyncio.gather(*(rate_limited_request() for _ in range(8)))
    assert limiter.limit == 4
    # The burst is over: a rate limit seen by a request admitted after it halves again.
    async with limiter.slot():
        assert limiter.on_rate_limited()
    assert limiter.limit == 2


async def test_lowering_the_limit_keeps_in_flight_work_and_admits_no_one() -> None:
    limiter = AdaptiveLimiter(4)
    release = [asyncio.Event() for _ in range(4)]
    finished: list[int] = []

    async def holder(index: int) -> None:
        async with limiter.slot():
            await release[index].wait()
        finished.append(index)

    holders = [asyncio.create_task(holder(i)) for i in range(4)]
    await _settle()
    limiter.on_rate_limited()
    assert (limiter.limit, limiter.in_flight) == (2, 4)

    newcomer = asyncio.create_task(limiter.slot().__aenter__())
    for index in range(2):
        release[index].set()
        await _settle()
        assert not newcomer.done(), f"admitted with {limiter.in_flight} in flight"
    release[2].set()
    await _settle()
    assert newcomer.done()
    assert (limiter.in_flight, sorted(finished)) == (2, [0, 1, 2])
    release[3].set()
    await asyncio.gather(*holders)


async def test_successes_grow_the_limit_up_to_max() -> None:
    limiter = AdaptiveLimiter(3, initial=1, increase_every=2)
    limiter.on_success()
    assert limiter.limit == 1
    limiter.on_success()
    assert limiter.limit == 2
    for _ in range(10):
        limiter.on_success()
    assert limiter.limit == 3


async def test_a_rate_limit_breaks_the_success_streak() -> None:
    limiter = AdaptiveLimiter(8, initial=4, increase_every=3)
    limiter.on_success()
    limiter.on_success()
    limiter.on_rate_limited()
    limiter.on_success()
    limiter.on_success()
    assert limiter.limit == 2
    limiter.on_success()
    assert limiter.limit == 3


async def test_growth_admits_a_waiter() -> None:
    limiter = AdaptiveLimiter(2, initial=1, increase_every=1)
    async with limiter.slot():
        waiter = asyncio.create_task(limiter.slot().__aenter__())
        await _settle()
        assert not waiter.done()
        limiter.on_success()
        await _settle()
        assert waiter.done()
        assert limiter.in_flight == 2


async def test_cancelled_waiter_leaks_no_slot() -> None:
    limiter = AdaptiveLimiter(1)
    async with limiter.slot():
        waiter = asyncio.create_task(limiter.slot().__aenter__())
        await _settle()
        waiter.cancel()
        await _settle()
        assert waiter.cancelled()
        assert limiter.in_flight == 1
    assert limiter.in_flight == 0
    async with asyncio.timeout(1), limiter.slot():
        assert limiter.in_flight == 1


async def test_a_slot_freed_between_a_cancel_and_its_cleanup_skips_the_cancelled_waiter() -> None:
    limiter = AdaptiveLimiter(1)
    holder = limiter.slot()
    await holder.__aenter__()
    cancelled = asyncio.create_task(limiter.slot().__aenter__())
    next_in_line = asyncio.create_task(limiter.slot().__aenter__())
    await _settle()
    cancelled.cancel()  # its future is cancelled at once; its cleanup runs later
    await holder.__aexit__(None, None, None)  # the slot goes to `next_in_line`, no error
    await _settle()
    assert cancelled.cancelled() and next_in_line.done() and next_in_line.exception() is None
    assert limiter.in_flight == 1


async def test_waiter_cancelled_just_after_admission_hands_the_slot_on() -> None:
    limiter = AdaptiveLimiter(1)
    holder = limiter.slot()
    await holder.__aenter__()
    unlucky = asyncio.create_task(limiter.slot().__aenter__())
    next_in_line = asyncio.create_task(limiter.slot().__aenter__())
    await _settle()
    await holder.__aexit__(None, None, None)  # admits `unlucky`, which has not run yet
    unlucky.cancel()
    await _settle()
    assert unlucky.cancelled()
    assert next_in_line.done()
    assert limiter.in_flight == 1


async def test_timeout_while_waiting_leaks_no_slot() -> None:
    limiter = AdaptiveLimiter(1)
    async with limiter.slot():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01), limiter.slot():
                pytest.fail("admitted past the limit")
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    ("max_concurrency", "initial", "increase_every"),
    [(0, None, 10), (4, 5, 10), (4, 0, 10), (4, 2, 0)],
)
def test_rejects_nonsense_settings(
    max_concurrency: int, initial: int | None, increase_every: int
) -> None:
    with pytest.raises(ValueError):
        AdaptiveLimiter(max_concurrency, initial=initial, increase_every=increase_every)
