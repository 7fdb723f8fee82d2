"""Sweep progress on stderr while `run` and `resume` wait for a sweep: a redrawn bar on a
terminal, a plain line now and then otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from typing import Any, TextIO

from ..domain.events import Event
from ..domain.records import RateLimitCounts
from ..engine.events import EventBus


class SweepProgress:
    """Follows a sweep's events and draws progress on stderr: a redrawn bar on a terminal,
    a plain line every few seconds otherwise (only when something changed).

    While the endpoint answers 429 the line counts those answers and shows the current wait;
    on a terminal the wait counts down even when no event comes, so a rate-limited sweep never
    looks hung.
    """

    def __init__(self, bus: EventBus, sweep_id: str, *, out: TextIO = sys.stderr) -> None:
        self._subscription = bus.subscribe(accept=lambda e: e.sweep_id == sweep_id)
        self._out = out
        self._tty = out.isatty()
        self.total = 0
        self.done = self.failed = self.cached = self.tokens = 0
        #: The sweep's 429 answers so far, and the calls waiting on one at the last report.
        self.responses_429 = self.waiting_calls = 0
        self._waiting_until = 0.0
        self._before = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._changed = False

    async def follow(self) -> None:
        interval = 0.1 if self._tty else 5.0
        try:
            while True:
                event = await self._next_event(self._patience(interval, time.monotonic()))
                if event is not None:
                    self._take(event)
                    for more in self._subscription.drain():
                        self._take(more)
                    self._changed = True
                now = time.monotonic()
                if self._patience(interval, now) == 0.0:
                    self._draw(now)
        finally:
            self._subscription.close()

    async def _next_event(self, within: float | None) -> Event | None:
        """The next event, or None when `within` seconds pass first."""
        if within is None:
            return await self._subscription.get()
        try:
            async with asyncio.timeout(within):
                return await self._subscription.get()
        except TimeoutError:
            return None

    def _patience(self, interval: float, now: float) -> float | None:
        """How long until the line is due to be drawn (0: now; None: not before the next
        event): a change not drawn yet after `interval`, a countdown on a terminal every second."""
        if self._changed:
            return max(0.0, self._last_draw + interval - now)
        if self._counting_down(now):
            return max(0.0, self._last_draw + 1.0 - now)
        return None

    def _counting_down(self, now: float) -> bool:
        return self._tty and self.waiting_calls > 0 and now < self._waiting_until + 1.0

    def _take(self, event: Event) -> None:
        data = event.data
        if event.type == "sweep.started":
            self.total = int(data.get("expected_runs", 0))
            self._before = int(data.get("finished_before", 0))
        elif event.type == "run.completed":
            self.done += 1
            self.cached += bool(data.get("cached"))
            self.tokens += int(data.get("paid_tokens", 0))
        elif event.type == "run.failed":
            self.failed += 1
            self.tokens += int(data.get("paid_tokens", 0))
        elif event.type == "sweep.rate_limited":
            self.responses_429 = int(data.get("responses_429", 0))
            self.waiting_calls = int(data.get("waiting_calls", 0))
            self._waiting_until = time.monotonic() + float(data.get("waiting_s", 0.0))

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._changed = False
        finished = self.done + self.failed
        total = max(self.total, finished + self._before)
        so_far = finished + self._before
        elapsed = now - self._started
        rate = finished / elapsed if elapsed > 0 else 0.0
        eta = (total - so_far) / rate if rate > 0 else None
        counts = (
            f"{so_far}/{total} runs · {self.cached} cached · {self.failed} failed · "
            f"{_tokens(self.tokens)} tokens · ETA {_duration(eta)}"
        ) + self._rate_limited(now)
        if self._tty:
            # The bar gives way to the counts on a narrow terminal: a wrapped line would not
            # be redrawn in place.
            columns = shutil.get_terminal_size((100, 24)).columns
            width = min(24, columns - len(counts) - 2)
            filled = int(width * so_far / total) if total and width > 0 else 0
            bar = "█" * filled + "░" * (width - filled) + " " if width >= 8 else ""
            self._out.write(f"\r\x1b[2K{bar}{counts}")
        else:
            self._out.write(counts + "\n")
        self._out.flush()

    def _rate_limited(self, now: float) -> str:
        """The rate-limit part of the line, the wait counted down to `now`; "" before any 429."""
        counts = RateLimitCounts(
            responses_429=self.responses_429,
            waiting_s=max(0.0, self._waiting_until - now),
            waiting_calls=self.waiting_calls,
        )
        text = counts.describe()
        return f" · rate limited: {text}" if text else ""

    def finish(self) -> None:
        self._draw(time.monotonic())
        if self._tty:
            self._out.write("\n")
        self._out.flush()


async def cancel_quietly(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _tokens(count: int) -> str:
    return f"{count / 1000:.1f}k" if count >= 10_000 else str(count)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
