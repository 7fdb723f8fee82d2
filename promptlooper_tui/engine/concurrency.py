"""How a sweep answers an endpoint that says "slow down": an asyncio gate whose limit backs off
(`AdaptiveLimiter`), and a meter of the 429s and of the calls waiting on them (`RateLimitMeter`).

The limit follows AIMD (additive increase, multiplicative decrease), the scheme TCP uses for
congestion: halve on a rate limit, add one after a run of successes, never above the ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType


class AdaptiveLimiter:
    """Admit at most `limit` concurrent holders of `slot()`; `limit` adapts within [1, max].

    Waiters are admitted in FIFO order. A waiter cancelled while queued (or just after being
    admitted) never keeps a slot. Lowering the limit cancels nothing: it only stops admitting
    until `in_flight` falls below the new limit.

    Single event loop only: all methods must be called from the loop that uses the slots.
    """

    def __init__(
        self, max_concurrency: int, *, initial: int | None = None, increase_every: int = 10
    ) -> None:
        """`initial` defaults to `max_concurrency`; `increase_every` successes in a row add 1."""
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        start = max_concurrency if initial is None else initial
        if not 1 <= start <= max_concurrency:
            raise ValueError(f"initial must be between 1 and {max_concurrency}, got {initial}")
        if increase_every < 1:
            raise ValueError(f"increase_every must be at least 1, got {increase_every}")
        self._max = max_concurrency
        self._limit = start
        self._increase_every = increase_every
        self._in_flight = 0
        self._successes = 0
        # Each waiter's future resolves to the generation it was admitted under.
        self._waiters: deque[asyncio.Future[int]] = deque()
        # A halving bumps the generation; while any slot admitted under an older generation is
        # still held, the requests that provoked the halving are still answering, so their 429s
        # describe the old limit and must not halve again.
        self._generation = 0
        self._stale_in_flight = 0

    @property
    def limit(self) -> int:
        """How many slots may be held at once right now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """How many slots are held right now (may exceed `limit` just after a halving)."""
        return self._in_flight

    @property
    def max_concurrency(self) -> int:
        """The ceiling `limit` grows back to."""
        return self._max

    def slot(self) -> _Slot:
        """An async context manager holding one slot for the duration of its block."""
        return _Slot(self)

    def on_rate_limited(self) -> bool:
        """Halve the limit (not below 1); returns whether it did.

        Call it from inside the slot of the request that was rate limited: later reports from
        requests admitted before the halving are ignored, so one burst of 429s halves once.
        """
        self._successes = 0
        if self._stale_in_flight:
            return False
        self._limit = max(1, self._limit // 2)
        self._generation += 1
        self._stale_in_flight = self._in_flight
        return True

    def on_success(self) -> None:
        """Count a success; every `increase_every` in a row raise the limit by 1 (up to max)."""
        self._successes += 1
        if self._successes < self._increase_every:
            return
        self._successes = 0
        if self._limit < self._max:
            self._limit += 1
            self._admit_waiters()

    async def _acquire(self) -> int:
        """Wait for a slot; returns the generation it was admitted under."""
        if not self._waiters and self._in_flight < self._limit:
            self._in_flight += 1
            return self._generation
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):  # already dropped by _admit_waiters
                    self._waiters.remove(waiter)
            else:
                # Admitted, then cancelled before it could run: hand the slot on.
                self._release(waiter.result())
            raise

    def _release(self, generation: int) -> None:
        self._in_flight -= 1
        if generation != self._generation:
            # A halving only happens when no stale slot is left, so every slot held at that
            # moment (and only those) carries the previous generation and was counted.
            self._stale_in_flight -= 1
        self._admit_waiters()

    def _admit_waiters(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            waiter = self._waiters.popleft()
            if waiter.done():
                # Cancelled while queued; its task has not run its cleanup yet (which then
                # finds it gone) and must not be handed a slot.
                continue
            self._in_flight += 1
            waiter.set_result(self._generation)


class _Slot:
    """One held slot of an AdaptiveLimiter; returned by `AdaptiveLimiter.slot()`."""

    __slots__ = ("_generation", "_limiter")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter
        self._generation = 0

    async def __aenter__(self) -> None:
        self._generation = await self._limiter._acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._limiter._release(self._generation)


class RateLimitMeter:
    """One sweep's view of its endpoints' 429s, for the people watching it.

    The client counts each 429 answer (`on_429`) and registers each wait it makes because of
    one (`waiting`); `waiting_s()` is how long until the last waiting call tries again.
    `wait_cap` is how many seconds one call may wait on 429s in all before it gives up (the
    sweep's `rate_limit_wait_s`; None leaves it to the endpoint's setting). `on_change` (set by
    the owner) is called after every change, from the event loop.
    """

    def __init__(
        self, *, wait_cap: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.wait_cap = wait_cap
        #: 429 answers counted so far (by this meter, so in this process).
        self.responses_429 = 0
        self.on_change: Callable[[], None] | None = None
        self._clock = clock
        self._until: dict[int, float] = {}
        self._tokens = itertools.count()

    @property
    def waiting_calls(self) -> int:
        """Calls waiting right now because of a 429."""
        return len(self._until)

    def waiting_s(self) -> float:
        """Seconds until the last call now waiting on a 429 tries again (0 when none waits)."""
        if not self._until:
            return 0.0
        return max(0.0, max(self._until.values()) - self._clock())

    def on_429(self) -> None:
        self.responses_429 += 1
        self._changed()

    @contextlib.contextmanager
    def waiting(self, seconds: float) -> Iterator[None]:
        """Hold this around a wait of `seconds` that a 429 asked for."""
        token = next(self._tokens)
        self._until[token] = self._clock() + seconds
        self._changed()
        try:
            yield
        finally:
            del self._until[token]
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
