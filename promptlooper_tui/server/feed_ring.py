"""The websocket feed's events in one ring that every subscriber reads at its own position.

One bus subscription serves all subscribers: each event is appended once, encoded once (by
the first subscriber to send it: its JSON text and that text's websocket frame), and a
subscriber is a position in the ring, not a queue of its own, so publishing costs the same at
any number of subscribers. Parked subscribers (with nothing left to send) are woken at most
once every `wake_delay` seconds, with everything published meanwhile waiting for them: a busy
sweep's events then go out in runs of several per wake-up instead of one task switch per
event and subscriber.

Memory is bounded: the ring holds `size` events (of all experiments); a subscriber further
behind than that is skipped ahead (`FeedRing.read` says how many of its events it lost). A
subscriber's own memory is its position and the replay it was given when it joined (at most
the bus's replay buffer, shared events).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from ..domain.events import Event
from ..engine.events import EventBus
from .ws_frames import text_frame


class Encoded(NamedTuple):
    """A message ready to send: the event's seq (0 for a notice, which has none), its JSON
    text and that text's websocket frame."""

    seq: int
    text: str
    frame: bytes


class FeedReader:
    """One subscriber: the experiment it follows (None: all), the replayed events it has yet
    to send, and its position in the ring."""

    __slots__ = ("counted", "experiment_id", "position", "replay", "replayed")

    def __init__(self, experiment_id: str | None, position: int, counted: int) -> None:
        self.experiment_id = experiment_id
        #: The ring position it reads next.
        self.position = position
        #: How many of its experiment's events (all events, unfiltered) it has passed.
        self.counted = counted
        self.replay: Sequence[Event] = ()
        self.replayed = 0


class FeedRing:
    def __init__(self, bus: EventBus, size: int, wake_delay: float) -> None:
        self._size = size
        self._wake_delay = wake_delay
        self._events: list[Event | None] = [None] * size
        self._encoded: list[Encoded | None] = [None] * size
        #: Ring position of the next event appended.
        self._end = 0
        self._readers: set[FeedReader] = set()
        #: Events appended per experiment that a reader follows, and how many follow each.
        self._published: dict[str, int] = {}
        self._followers: Counter[str] = Counter()
        self._parked: dict[FeedReader, asyncio.Future[None]] = {}
        #: Experiments with events appended since the parked readers were last woken.
        self._touched: set[str] = set()
        self._wake_pending = False
        # The filter sees every event in the publisher's step, in order, and keeps none in the
        # subscription's queue: the ring is the one copy.
        bus.subscribe(maxsize=1, accept=self._append)

    def add(self, experiment_id: str | None, replay: Sequence[Event] = ()) -> FeedReader:
        """A reader that sends `replay` (events already published), then every event appended
        from now on, of `experiment_id` only if given."""
        if experiment_id is None:
            counted = self._end
        else:
            self._followers[experiment_id] += 1
            counted = self._published.setdefault(experiment_id, 0)
        reader = FeedReader(experiment_id, self._end, counted)
        reader.replay = [e for e in replay if experiment_id in (None, e.experiment_id)]
        self._readers.add(reader)
        return reader

    def remove(self, reader: FeedReader) -> None:
        self._readers.discard(reader)
        waiter = self._parked.pop(reader, None)
        if waiter is not None:
            waiter.cancel()
        followed = reader.experiment_id
        if followed is not None:
            self._followers[followed] -= 1
            if not self._followers[followed]:
                del self._followers[followed], self._published[followed]

    def read(self, reader: FeedReader, most: int) -> tuple[list[Encoded], int]:
        """Up to `most` of the reader's next events, in order, and 0; or, when events of its
        own were overwritten before it read them, no events and how many it lost: it is
        skipped past everything appended so far."""
        if reader.replayed < len(reader.replay):
            chunk = reader.replay[reader.replayed : reader.replayed + most]
            reader.replayed += len(chunk)
            return [encode(event) for event in chunk], 0
        followed = reader.experiment_id
        start = max(0, self._end - self._size)
        if reader.position < start:
            published = self._end if followed is None else self._published[followed]
            if published - reader.counted > self._matching(followed, start):
                lost = published - reader.counted
                reader.position, reader.counted = self._end, published
                return [], lost
            reader.position = start  # only others' events were overwritten
        ready: list[Encoded] = []
        while reader.position < self._end and len(ready) < most:
            slot = reader.position % self._size
            reader.position += 1
            event = self._events[slot]
            assert event is not None
            if followed is not None and event.experiment_id != followed:
                continue
            encoded = self._encoded[slot]
            if encoded is None:
                encoded = self._encoded[slot] = encode(event)
            ready.append(encoded)
        reader.counted += len(ready)
        return ready, 0

    async def wait(self, reader: FeedReader) -> None:
        """Until events may be waiting for `reader` (call when `read` gave nothing)."""
        waiter = asyncio.get_running_loop().create_future()
        self._parked[reader] = waiter
        try:
            await waiter
        finally:
            self._parked.pop(reader, None)

    def _matching(self, followed: str | None, start: int) -> int:
        """Events of `followed` (any, if None) from ring position `start` to the end."""
        if followed is None:
            return self._end - start
        events = (self._events[position % self._size] for position in range(start, self._end))
        return sum(1 for event in events if event is not None and event.experiment_id == followed)

    def _append(self, event: Event) -> bool:
        if not self._readers:
            return False
        slot = self._end % self._size
        self._events[slot] = event
        self._encoded[slot] = None
        self._end += 1
        followed = event.experiment_id
        if followed in self._published:
            self._published[followed] += 1
        if self._parked:
            self._touched.add(followed)
            if not self._wake_pending:
                self._wake_pending = True
                asyncio.get_running_loop().call_later(self._wake_delay, self._wake)
        return False

    def _wake(self) -> None:
        self._wake_pending = False
        touched, self._touched = self._touched, set()
        for reader, waiter in list(self._parked.items()):
            if reader.experiment_id is None or reader.experiment_id in touched:
                del self._parked[reader]
                if not waiter.done():
                    waiter.set_result(None)
            else:
                # Everything appended since it parked is another experiment's: nothing to
                # read, and nothing it could lose.
                reader.position = self._end


def encode(event: Event) -> Encoded:
    return encode_text(event.seq, json.dumps(event.as_dict(), separators=(",", ":")))


def encode_text(seq: int, text: str) -> Encoded:
    return Encoded(seq, text, text_frame(text))
