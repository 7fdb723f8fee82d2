"""Events across the processes sharing a store (DESIGN §10): what this process's bus publishes
is written to the store's `events` table, and what the others wrote there is published on this
bus, so every front-end of every process sees every sweep live, whoever runs it.

Out: a filter on the bus (it sees each event in the publisher's step and keeps none) gathers the
events of one step of the event loop into one row, a JSON array, which the store's group commit
joins with the sweep's own writes: one insert a step, not one an event (a row per event cost a
daemon serving 50 websocket subscribers a sweep's 3 %).

In: a follower reads the rows after the last seq it saw, woken by the store where it can tell
(PostgreSQL's NOTIFY) and by a poll otherwise (SQLite). Seqs are handed out before commit, so on
PostgreSQL a transaction may commit a lower seq after a higher one is visible: the follower
remembers such gaps and asks for them again until they fill or are old enough to be rollbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..domain.errors import StorageError
from ..domain.events import Event
from ..store import events as stored_events
from ..store.database import Database, Row
from .events import EventBus

log = logging.getLogger(__name__)

#: Not relayed: every run announces itself as it starts and again as it finishes; the start
#: would double the rows written for something no front-end of another process needs to see.
LOCAL_ONLY = frozenset({"run.started"})
#: The channel the store's triggers notify on new events.
CHANNEL = "promptlooper"
#: How often the follower looks without being woken: SQLite cannot wake it; on PostgreSQL
#: this is a safety net for a lost notification or connection.
POLL_SQLITE_S = 0.25
POLL_NOTIFIED_S = 2.0
#: At most this often a read, however many notifications come (a busy store's commits each
#: notify): events are then read in runs, well within the second they may take.
MIN_READ_GAP_S = 0.05
#: Most rows read at once.
READ_LIMIT = 2000
#: How long a gap in the seqs is asked for again before it is taken for a rollback, and the
#: most gaps kept (the newest): a jump of the seqs (a big rollback) costs no more.
GAP_PATIENCE_S = 30.0
MAX_GAPS = 10_000
#: Events are kept this long in the table, and pruned about this often.
KEEP_S = 600.0
PRUNE_EVERY_S = 60.0

_encode = json.JSONEncoder(separators=(",", ":")).encode


class EventRelay:
    """One per Workbench: `start()` relays both ways, `aclose()` stops after writing out what
    was published."""

    def __init__(self, db: Database, bus: EventBus, origin: str) -> None:
        self._db = db
        self._bus = bus
        #: This process's owner name: the `origin` of the rows it writes.
        self.origin = origin
        self._outgoing: list[Event] = []
        self._last_seq = 0
        #: Seqs below the last one read that were missing, and when each was first missed.
        self._gaps: dict[int, float] = {}
        #: (monotonic time, last seq read then): what `_prune` may delete once old enough.
        self._marks: deque[tuple[float, int]] = deque()
        self._last_prune = time.monotonic()
        self._wake = asyncio.Event()
        #: Whether the last look at the store failed (said once until a look works again).
        self._reading_failed = False
        self._reading = asyncio.Lock()
        self._stop_listening: Callable[[], Awaitable[None]] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._subscription = bus.subscribe(maxsize=1, accept=self._relay_out)

    async def start(self) -> None:
        """Follow the events written from now on (earlier ones are history: not replayed)."""
        self._last_seq = await stored_events.last_seq(self._db)
        self._stop_listening = await self._db.listen(CHANNEL, self._wake.set, payload="events")
        poll = POLL_SQLITE_S if self._stop_listening is None else POLL_NOTIFIED_S
        self._follower = asyncio.create_task(self._follow(poll), name="event-relay")

    async def aclose(self) -> None:
        """Stop following, and queue the events published so far for writing (call before
        the database closes: it commits what is queued)."""
        self._subscription.close()
        self.flush()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._stop_listening is not None:
            stop, self._stop_listening = self._stop_listening, None
            await stop()

    # -- out -----------------------------------------------------------------------------------

    def _relay_out(self, event: Event) -> bool:
        if event.origin is None and event.type not in LOCAL_ONLY:
            if not self._outgoing:
                asyncio.get_running_loop().call_soon(self.flush)
            self._outgoing.append(event)
        return False

    def flush(self) -> None:
        """Queue the events gathered so far as one row."""
        if self._outgoing:
            events, self._outgoing = self._outgoing, []
            row = _encode([_relayed(event) for event in events])
            statement = stored_events.insert_statement(self.origin, row, events[-1].ts)
            self._db.submit([statement]).add_done_callback(_note_failure)

    # -- in ------------------------------------------------------------------------------------

    async def _follow(self, poll: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.read_new()
                await self._prune()
            except StorageError as exc:
                # The store is away for a moment (a restart, a full disk): try again later,
                # saying so once, not at every look.
                if not self._reading_failed:
                    log.warning("events of other processes not read: %s", exc)
                self._reading_failed = True
            else:
                self._reading_failed = False
            await asyncio.sleep(MIN_READ_GAP_S)

    async def read_new(self) -> int:
        """Publish the other processes' events written since the last read; returns how many."""
        async with self._reading:
            return await self._read_new()

    async def _read_new(self) -> int:
        now = time.monotonic()
        rows: list[Row] = []
        if self._gaps:
            rows += await stored_events.among(self._db, sorted(self._gaps), self.origin)
            for row in rows:
                del self._gaps[row["seq"]]
            for seq, since in list(self._gaps.items()):
                if now - since > GAP_PATIENCE_S:
                    del self._gaps[seq]
        while True:
            batch = await stored_events.after(self._db, self._last_seq, self.origin, READ_LIMIT)
            for row in batch:
                seq = row["seq"]
                for missing in range(max(self._last_seq + 1, seq - MAX_GAPS), seq):
                    self._gaps[missing] = now
                self._last_seq = seq
            rows += batch
            if len(batch) < READ_LIMIT:
                break
        return sum(self._publish(row) for row in rows)

    def _publish(self, row: Row) -> int:
        """Publish the events of another process's row here; how many."""
        if row["origin"] == self.origin:
            return 0
        events: list[dict[str, Any]] = json.loads(row["events"])
        for event in events:
            self._bus.publish(
                event["type"],
                event["experiment_id"],
                sweep_id=event["sweep_id"],
                run_id=event["run_id"],
                data=event["data"],
                origin=row["origin"],
            )
        return len(events)

    async def _prune(self) -> None:
        """Now and then, delete the events read more than `KEEP_S` ago (any process may: the
        deletes of two are the same rows)."""
        now = time.monotonic()
        if not self._marks or self._marks[-1][1] != self._last_seq:
            self._marks.append((now, self._last_seq))
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        through = 0
        while self._marks and now - self._marks[0][0] > KEEP_S:
            through = self._marks.popleft()[1]
        if through:
            await self._db.write([stored_events.prune_statement(through)])


def _relayed(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "experiment_id": event.experiment_id,
        "sweep_id": event.sweep_id,
        "run_id": event.run_id,
        "data": event.data,
    }


def _note_failure(written: asyncio.Future[None]) -> None:
    """Front-ends of other processes miss these events; this process's own are unaffected.
    Not a warning: the writes that failed with it (a run's, a sweep's status) say why where it
    matters, and a second line would only repeat it."""
    if not written.cancelled() and written.exception() is not None:
        log.debug("events not relayed to other processes: %s", written.exception())
