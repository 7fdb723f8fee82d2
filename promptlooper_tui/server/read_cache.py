"""Answers of the API's pollable reads (runs pages, leaderboards, sweep status, lists), kept as
encoded JSON so that many clients polling the same URL cost one computation, not one each.

An answer is served again while both hold:
- nothing has *settled* since it was made: no change was admitted through the `WorkGate` (any
  API or MCP call that changes state) and no sweep-level event was published (a sweep started,
  paused, resumed, stopped, ran out of budget or completed). A caller therefore always reads
  its own writes, and a sweep's final state as soon as its event is out;
- it is younger than `max_age` seconds. Within that window a running sweep's progress (its
  `run.*`, `score.added` and `sweep.rate_limited` events) does not invalidate it, so a live
  runs page or leaderboard lags by at most `max_age`; so do changes made by another process on
  the same home, which this one cannot see.

Concurrent requests for an answer not yet made wait for one computation. Memory is bounded:
answers larger than `max_entry_bytes` are served but not kept, and the oldest are dropped
beyond `max_bytes` in all.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..domain.events import Event
from ..engine.events import EventBus
from .gate import WorkGate

#: Events of a running sweep's progress: they may leave answers up to `max_age` old.
PROGRESS_EVENTS = frozenset(
    {"run.started", "run.completed", "run.failed", "score.added", "sweep.rate_limited"}
)
#: How long an answer may lag a running sweep's progress.
MAX_AGE = 0.5
MAX_ENTRY_BYTES = 1024 * 1024
MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """An encoded JSON answer and its entity tag (`ETag`, unique per answer made)."""

    body: bytes
    etag: str
    settled: int
    made_at: float


class ReadCache:
    def __init__(
        self,
        bus: EventBus,
        gate: WorkGate,
        *,
        max_age: float = MAX_AGE,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._gate = gate
        self._max_age = max_age
        self._max_entry_bytes = max_entry_bytes
        self._max_bytes = max_bytes
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._bytes = 0
        self._making: dict[tuple[str, int], asyncio.Future[Answer]] = {}
        self._sweep_events = 0
        self._tags = itertools.count(1)
        self._epoch = bus.epoch
        # The filter sees every event as it is published, in the publisher's step, so a
        # settling event invalidates answers before anyone can read about it; it keeps none.
        bus.subscribe(maxsize=1, accept=self._count_settling)

    def _count_settling(self, event: Event) -> bool:
        if event.type not in PROGRESS_EVENTS:
            self._sweep_events += 1
        return False

    @property
    def settled(self) -> int:
        """Grows with every change admitted by the gate and every sweep-level event."""
        return self._gate.changes + self._sweep_events

    def fresh(self, key: str) -> Answer | None:
        """The kept answer of `key` if it may still be served."""
        answer = self._answers.get(key)
        if answer is None:
            return None
        if answer.settled != self.settled or time.monotonic() - answer.made_at >= self._max_age:
            return None
        return answer

    async def answer(self, key: str, make: Callable[[], Awaitable[bytes]]) -> Answer:
        """The answer of `key`: a fresh kept one, the one being made now, or a new one."""
        answer = self.fresh(key)
        if answer is not None:
            return answer
        settled = self.settled
        making = self._making.get((key, settled))
        if making is None:
            making = asyncio.ensure_future(self._make(key, settled, make))
            self._making[(key, settled)] = making
        # Shielded: one client giving up must not cancel the answer the others wait for.
        return await asyncio.shield(making)

    async def _make(self, key: str, settled: int, make: Callable[[], Awaitable[bytes]]) -> Answer:
        try:
            body = await make()
        finally:
            del self._making[(key, settled)]
        answer = Answer(body, f'"{self._epoch}-{next(self._tags)}"', settled, time.monotonic())
        if len(body) <= self._max_entry_bytes:
            self._keep(key, answer)
        return answer

    def _keep(self, key: str, answer: Answer) -> None:
        old = self._answers.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._answers[key] = answer
        self._bytes += len(answer.body)
        while self._bytes > self._max_bytes:
            _, dropped = self._answers.popitem(last=False)
            self._bytes -= len(dropped.body)
