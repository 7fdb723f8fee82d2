"""The in-process event bus: numbered events, a replay buffer, and bounded subscriber queues.

Publishing never blocks and never waits for a subscriber: a subscriber whose queue is full is
marked as lagging and loses events (it is told how many when it next reads), so a slow websocket
client or a busy screen can never slow the engine down or grow memory without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from ..domain.events import Event

EventFilter = Callable[[Event], bool]


class Subscription:
    """An async iterator over events; `dropped` counts events lost because it fell behind."""

    def __init__(self, bus: EventBus, maxsize: int, accept: EventFilter | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._accept = accept
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._accept is not None and not self._accept(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Event:
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self) -> list[Event]:
        """Every event waiting now, without blocking (for coalesced screen updates)."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publish with `publish(type, experiment_id, ...)`; subscribe with `subscribe()`.

    `epoch` is a random id of this bus (so of this process): seqs start at 1 in every epoch,
    so a seq means something only together with the epoch its event carries.
    """

    def __init__(self, replay: int = 10_000) -> None:
        self.epoch = secrets.token_hex(8)
        self._seq = itertools.count(1)
        self._buffer: deque[Event] = deque(maxlen=replay)
        self._subscribers: list[Subscription] = []

    def publish(
        self,
        type: str,
        experiment_id: str,
        *,
        sweep_id: str | None = None,
        run_id: str | None = None,
        data: dict[str, Any] | None = None,
        origin: str | None = None,
    ) -> Event:
        """Number and deliver an event; `origin` names the process that published it first,
        for an event relayed in from another process on the store (`Event.origin`)."""
        event = Event(
            seq=next(self._seq),
            ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
            type=type,
            experiment_id=experiment_id,
            sweep_id=sweep_id,
            run_id=run_id,
            data=data or {},
            epoch=self.epoch,
            origin=origin,
        )
        self._buffer.append(event)
        for subscriber in self._subscribers:
            subscriber._offer(event)
        return event

    def subscribe(
        self, *, maxsize: int = 10_000, accept: EventFilter | None = None, since: int | None = None
    ) -> Subscription:
        """A new subscription; with `since`, buffered events after that seq come first.

        Replay and registration happen in one step of the event loop, so there is no gap and
        no duplicate between the replayed events and the live ones.
        """
        subscription = Subscription(self, maxsize, accept)
        if since is not None:
            for event in self._buffer:
                if event.seq > since:
                    subscription._offer(event)
        self._subscribers.append(subscription)
        return subscription

    def replay(self, since: int = 0) -> list[Event]:
        return [event for event in self._buffer if event.seq > since]

    @property
    def last_seq(self) -> int:
        return self._buffer[-1].seq if self._buffer else 0

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)
