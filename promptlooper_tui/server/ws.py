"""The websocket event feed at `/ws`: one JSON event per text message, as DESIGN.md section 6
(or, with `batch=true`, a JSON array of events per message).

Every event carries the daemon's `epoch`, a random id of the process that numbered it: seqs
start again at 1 when the daemon restarts, so a seq means something only with its epoch.

Query: `experiment=ID|NAME` keeps one experiment's events; `since=EPOCH:SEQ` (the `epoch` and
`seq` of the last event the client saw) first replays the buffered events after it, then
streams live ones, with no gap and no duplicate at the seam (the bus registers and replays in
one step). `since=SEQ` alone means a seq of the current epoch. `batch=true` makes every
message a JSON array of one or more events and notices, in order: the feed gathers what
arrives within `BATCH_WINDOW` seconds (up to `BATCH_MOST`) into one message, for subscribers
that follow busy sweeps (one message per event costs the daemon a write per event and
subscriber, which 50 subscribers of a fast sweep feel).

Besides events (which have a `seq`), the feed sends notices, which have none:
- `{"type": "feed.lagged", "data": {"dropped": N, "last_seq": S, "epoch": E}}`: this subscriber
  fell behind and was skipped ahead. Every event up to `last_seq` was delivered in order; after
  the notice come only events newer than anything skipped. Reconnect with `since=E:S` to replay
  the gap.
- `{"type": "feed.truncated", "data": {"oldest_seq": S, "epoch": E, "reason": R}}`: what the
  client missed cannot all be replayed. `reason` is `expired` (`since` is older than the replay
  buffer; events before S are gone, the replay starts at S), `restarted` (`since` names another
  epoch: the daemon restarted, and the replay starts with the oldest event of epoch E still
  buffered) or `ahead` (`since` is beyond the newest event, as after a restart when only a seq
  was given: the replay starts as for `restarted`). Live events follow the replay in every case.

All subscribers read one shared ring of events (`FeedRing`), each at its own position, and
each event's JSON and websocket frame are made once for all of them: where the server offers
it (the daemon's `ws_protocol`), one message per event goes out as those frames, without the
ASGI send path and the framing per message and subscriber. A sender takes what waits for it
in batches of at most `BATCH` events (`BATCH_MOST` batched) and sends them one message each
(one message in all, batched); it yields to the event loop after every batch, so a client
that leaves mid-replay is seen before the next batch. A sender with nothing to send is woken
at most every `WAKE_DELAY` seconds, with all that was published meanwhile.

Memory is bounded: the ring holds `queue_size` events (of all experiments; a subscriber further
behind is skipped ahead), a subscriber adds its position, its replay and the socket's write
buffer; a client that stops reading altogether is disconnected once a batch has waited
`send_timeout` seconds. Publishing never waits for any subscriber. Keepalive pings are
uvicorn's (`ws_ping_interval`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket

from ..domain.errors import BadInput
from ..workbench import Workbench
from .feed_ring import Encoded, FeedReader, FeedRing, encode_text
from .gate import ShuttingDown
from .routing import error_response
from .ws_frames import SEND_FRAMES, SendFrames

log = logging.getLogger(__name__)

#: Events the ring holds: a subscriber further behind is skipped ahead.
QUEUE_SIZE = 1024
#: A batch of sends may wait this long for a client that reads nothing before it is dropped.
SEND_TIMEOUT = 30.0
#: Most events sent between two yields to the event loop. The daemon's websocket protocol
#: writes them to the socket in one write (`ws_protocol`): with a write each, asyncio would
#: log a warning per write from the sixth on after one to a vanished client failed.
BATCH = 64
#: With `batch=true`: how long a message waits for more events after its first, and the most
#: events it holds.
BATCH_WINDOW = 0.1
BATCH_MOST = 256
#: How long a sender with nothing to send may sleep past a new event: a busy sweep's events
#: go out several per wake-up, not one task switch per event and subscriber.
WAKE_DELAY = 0.02
#: Close code when the daemon shuts down ("going away").
GOING_AWAY = 1001


class EventFeed:
    """Serves `/ws` subscribers and closes them all cleanly with `close_all()` on shutdown.

    A subscriber more than `queue_size` events (of all experiments) behind is skipped ahead; a
    send that waits `send_timeout` seconds for a client that reads nothing drops that client.
    """

    def __init__(
        self,
        workbench: Workbench,
        *,
        queue_size: int = QUEUE_SIZE,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._wb = workbench
        self._ring = FeedRing(workbench.bus, queue_size, WAKE_DELAY)
        self._send_timeout = send_timeout
        self._senders: set[asyncio.Task[None]] = set()
        self._open = 0
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._closing = False

    @property
    def subscribers(self) -> int:
        return len(self._senders)

    async def endpoint(self, websocket: WebSocket) -> None:
        try:
            experiment_id, since, batched = await self._parse_query(websocket)
        except Exception as exc:
            await websocket.send_denial_response(error_response(exc))
            return
        if self._closing:
            refusal = ShuttingDown("the daemon is shutting down; reconnect after restart")
            await websocket.send_denial_response(error_response(refusal))
            return
        self._open += 1
        self._all_closed.clear()
        try:
            await self._serve(websocket, experiment_id, since, batched)
        finally:
            self._open -= 1
            if not self._open:
                self._all_closed.set()

    async def close_all(self, grace: float = 5.0) -> None:
        """Refuse new subscribers, close every open one with code 1001 (after sending what was
        already published to it), and wait up to `grace` seconds for them to be closed."""
        self._closing = True
        for sender in list(self._senders):
            sender.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._all_closed.wait()

    async def _serve(
        self,
        websocket: WebSocket,
        experiment_id: str | None,
        resume: ResumePoint | None,
        batched: bool,
    ) -> None:
        bus = self._wb.bus
        since, truncated = self._replay_from(resume)
        # Join before accepting: once the client's handshake completes, nothing it triggers
        # can be missed. The replay and the join are one step: no gap, no duplicate.
        reader = self._ring.add(experiment_id, bus.replay(since) if since is not None else ())
        start_seq = bus.last_seq if since is None else since
        await websocket.accept()
        sender = asyncio.create_task(
            self._send_events(websocket, reader, start_seq, truncated, batched)
        )
        self._senders.add(sender)
        if self._closing:  # `close_all` ran while the handshake completed
            sender.cancel()
        try:
            await self._wait_for_disconnect(websocket, sender)
        finally:
            self._senders.discard(sender)
            sender.cancel()
            # `wait`, not `await`: how the sender ended was already judged (and logged).
            await asyncio.wait({sender})
            left: list[Encoded] = []
            while self._closing and (ready := self._ring.read(reader, BATCH_MOST)[0]):
                left += ready
            self._ring.remove(reader)
        if self._closing:
            # Deliver what was already published (e.g. `sweep.paused` at shutdown), then close.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._send(websocket, left, batched)
                    await websocket.close(GOING_AWAY, "server shutting down")

    async def _parse_query(
        self, websocket: WebSocket
    ) -> tuple[str | None, ResumePoint | None, bool]:
        params = websocket.query_params
        unknown = set(params) - {"experiment", "since", "token", "batch"}
        if unknown:
            raise BadInput(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        since = parse_since(params["since"]) if "since" in params else None
        batch = params.get("batch", "false")
        if batch not in ("true", "false"):
            raise BadInput(f"batch must be true or false, got {batch[:40]!r}")
        experiment_id = None
        if "experiment" in params:
            experiment_id = await self._wb.resolve_experiment(params["experiment"])
        return experiment_id, since, batch == "true"

    def _replay_from(self, resume: ResumePoint | None) -> tuple[int | None, dict[str, Any] | None]:
        """The seq to replay after, and the `feed.truncated` notice to send first, if any."""
        if resume is None:
            return None, None
        bus = self._wb.bus
        epoch, seq = resume
        if epoch is not None and epoch != bus.epoch:
            since, reason = 0, "restarted"
        elif seq > bus.last_seq:
            since, reason = 0, "ahead"
        else:
            since, reason = seq, "expired"
        replay = bus.replay(since)
        oldest = replay[0].seq if replay else bus.last_seq + 1
        if reason == "expired" and oldest <= since + 1:
            return since, None
        return since, {"oldest_seq": oldest, "epoch": bus.epoch, "reason": reason}

    async def _send_events(
        self,
        websocket: WebSocket,
        reader: FeedReader,
        last_seq: int,
        truncated: dict[str, Any] | None,
        batched: bool,
    ) -> None:
        """Send events in order; `last_seq` is the seq the client has seen up to (for notices)."""
        if truncated is not None:
            notice = _notice({"type": "feed.truncated", "data": truncated})
            await self._send(websocket, [notice], batched)
        most = BATCH_MOST if batched else BATCH
        while True:
            ready, lost = self._ring.read(reader, most)
            if lost:
                # Fell behind: skipped past everything published so far; what follows is
                # newer than all of it.
                epoch = self._wb.bus.epoch
                lagged = {"dropped": lost, "last_seq": last_seq, "epoch": epoch}
                notice = _notice({"type": "feed.lagged", "data": lagged})
                await self._send(websocket, [notice], batched)
            elif ready:
                await self._send(websocket, ready, batched)
                last_seq = ready[-1].seq
            else:
                await self._ring.wait(reader)
                if batched:
                    await asyncio.sleep(BATCH_WINDOW)

    async def _send(self, websocket: WebSocket, messages: list[Encoded], batched: bool) -> None:
        """One message each (batched: one JSON array of them all), within `send_timeout`."""
        send_frames: SendFrames | None = websocket.scope.get("extensions", {}).get(SEND_FRAMES)
        async with asyncio.timeout(self._send_timeout):
            if batched:
                if messages:
                    await websocket.send_text("[" + ",".join(m.text for m in messages) + "]")
            elif send_frames is not None:
                await send_frames([message.frame for message in messages])
            else:
                for message in messages:
                    await websocket.send_text(message.text)
        # A write into a buffer with room never suspends, so a long replay would otherwise run
        # to its end before the event loop could report a vanished client: each later write
        # to the dead socket would fail (and asyncio would log each one).
        await asyncio.sleep(0)

    async def _wait_for_disconnect(self, websocket: WebSocket, sender: asyncio.Task[None]) -> None:
        """Until the client leaves, the sender ends (stuck client, shutdown) or fails."""
        receiver = asyncio.create_task(_drain_client(websocket))
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            receiver.cancel()
            await asyncio.wait({receiver})
        if sender.done() and not sender.cancelled():
            exc = sender.exception()
            if isinstance(exc, TimeoutError):
                log.warning("dropped a websocket subscriber that stopped reading")
            elif exc is not None:
                # Mostly a client that vanished mid-send; nothing for an operator to do.
                log.debug("websocket send failed: %r", exc)


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects; the feed is one-way."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


#: Where a client resumes: the epoch it saw (None: the current one) and the seq.
ResumePoint = tuple[str | None, int]
#: Seqs are counted in 64 bits at most; anything larger is a mistake, not a position.
_MAX_SEQ = 2**63 - 1


def parse_since(text: str) -> ResumePoint:
    """`since=SEQ` or `since=EPOCH:SEQ` -> (epoch or None, seq); BadInput when malformed."""
    epoch, _, seq_text = text.rpartition(":")
    shape = "an event seq (a whole number) or EPOCH:SEQ"
    if ":" in text and not epoch:
        raise BadInput(f"since must be {shape}, got {text!r}")
    try:
        seq = int(seq_text)
    except ValueError:
        raise BadInput(f"since must be {shape}, got {text[:100]!r}") from None
    if not 0 <= seq <= _MAX_SEQ:
        raise BadInput(f"since's seq must be 0..{_MAX_SEQ}, got {seq_text[:40]}")
    return (epoch or None), seq


def _notice(message: dict[str, Any]) -> Encoded:
    """A message that is not an event."""
    return encode_text(0, json.dumps(message, separators=(",", ":")))
