"""A sweep's 429s for the people watching it and for its row: `sweep.rate_limited` events at
most once a second (a 429 storm is one story, told as it goes and always to its latest state),
and the count of 429s not yet added to the stored sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..domain.records import RateLimitCounts
from .concurrency import RateLimitMeter

#: At most one `sweep.rate_limited` event per this many seconds.
RATE_LIMIT_EVENT_EVERY = 1.0


class SweepRateLimits:
    """Watches a sweep's `RateLimitMeter`; `publish(type, **data)` sends the events."""

    def __init__(self, meter: RateLimitMeter, publish: Callable[..., Any]) -> None:
        self._meter = meter
        self._publish = publish
        meter.on_change = self._changed
        #: 429s of this sweep counted before this invocation (the stored count).
        self.counted_before = 0
        self._saved = 0
        self._note: asyncio.TimerHandle | None = None
        self._noted = float("-inf")

    def counts(self) -> RateLimitCounts:
        """The sweep's 429s so far (all its invocations) and the calls waiting on them now."""
        meter = self._meter
        return RateLimitCounts(
            responses_429=self.counted_before + meter.responses_429,
            waiting_s=round(meter.waiting_s(), 1),
            waiting_calls=meter.waiting_calls,
        )

    def unsaved(self) -> int:
        """429s counted since the last call, for the write that adds them to the sweep's row."""
        count = self._meter.responses_429
        unsaved, self._saved = count - self._saved, count
        return unsaved

    async def last_word(self) -> None:
        """Announce news not yet told before the sweep's end (not after it, or never), and no
        sooner than the one-a-second rhythm allows."""
        if self._note is None:
            return
        self._note.cancel()
        due = self._noted + RATE_LIMIT_EVENT_EVERY
        await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        self._announce()

    def _changed(self) -> None:
        if self._note is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._noted + RATE_LIMIT_EVENT_EVERY - loop.time())
        self._note = loop.call_later(delay, self._announce)

    def _announce(self) -> None:
        self._note = None
        self._noted = asyncio.get_running_loop().time()
        self._publish("sweep.rate_limited", **self.counts().model_dump())
