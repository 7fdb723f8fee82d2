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

Each event's JSON is made once for all subscribers. A sender takes what waits for it in
batches of at most `BATCH` events (`BATCH_MOST` batched) and sends them one message each (one
message in all, batched); it yields to the event loop after every batch, so a client that
leaves mid-replay is seen before the next batch.

Memory per subscriber is bounded (`queue_size` events beyond its replay, plus the socket's write
buffer); a client that stops reading altogether is disconnected once a batch has waited
`send_timeout` seconds. Publishing never waits for any subscriber. Keepalive pings are
uvicorn's (`ws_ping_interval`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from typing import Any

from starlette.websockets import WebSocket

from ..domain.errors import BadInput
from ..domain.events import Event
from ..engine.events import EventFilter, Subscription
from ..workbench import Workbench
from .gate import ShuttingDown
from .routing import error_response

log = logging.getLogger(__name__)

#: Events a subscriber may have waiting before it is skipped ahead.
QUEUE_SIZE = 1024
#: A batch of sends may wait this long for a client that reads nothing before it is dropped.
SEND_TIMEOUT = 30.0
#: Most events sent between two yields to the event loop: after a write to a vanished client
#: fails, asyncio logs a warning from the sixth write on, so no batch may make that many.
BATCH = 4
#: With `batch=true`: how long a message waits for more events after its first, and the most
#: events it holds.
BATCH_WINDOW = 0.1
BATCH_MOST = 256
#: Encoded events kept for the subscribers still to send them.
ENCODED_KEPT = 4096
#: Close code when the daemon shuts down ("going away").
GOING_AWAY = 1001


class EventFeed:
    """Serves `/ws` subscribers and closes them all cleanly with `close_all()` on shutdown.

    `queue_size` events may wait for one subscriber before it is skipped ahead; a send that
    waits `send_timeout` seconds for a client that reads nothing drops that client.
    """

    def __init__(
        self,
        workbench: Workbench,
        *,
        queue_size: int = QUEUE_SIZE,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._wb = workbench
        self._queue_size = queue_size
        self._send_timeout = send_timeout
        self._senders: set[asyncio.Task[None]] = set()
        self._encoded: OrderedDict[int, str] = OrderedDict()
        self._open = 0
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._closing = False

    @property
    def subscribers(self) -> int:
        return len(self._senders)

    async def endpoint(self, websocket: WebSocket) -> None:
        try:
            accept, since, batched = await self._parse_query(websocket)
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
            await self._serve(websocket, accept, since, batched)
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
        accept: EventFilter | None,
        resume: ResumePoint | None,
        batched: bool,
    ) -> None:
        bus = self._wb.bus
        since, truncated = self._replay_from(resume)
        replayed = len(bus.replay(since)) if since is not None else 0
        # Subscribe before accepting: once the client's handshake completes, nothing it
        # triggers can be missed. The replay gets room of its own (bounded by the bus's
        # replay buffer); `queue_size` bounds how far live events may run ahead.
        subscription = bus.subscribe(
            maxsize=self._queue_size + replayed, accept=accept, since=since
        )
        start_seq = bus.last_seq if since is None else since
        await websocket.accept()
        sender = asyncio.create_task(
            self._send_events(websocket, subscription, start_seq, truncated, batched)
        )
        self._senders.add(sender)
        if self._closing:  # `close_all` ran while the handshake completed
            sender.cancel()
        try:
            await self._wait_for_disconnect(websocket, sender)
        finally:
            subscription.close()
            self._senders.discard(sender)
            sender.cancel()
            # `wait`, not `await`: how the sender ended was already judged (and logged).
            await asyncio.wait({sender})
        if self._closing:
            # Deliver what was already published (e.g. `sweep.paused` at shutdown), then close.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    left = [self._encode(event) for event in subscription.drain()]
                    await self._send(websocket, left, batched)
                    await websocket.close(GOING_AWAY, "server shutting down")

    async def _parse_query(
        self, websocket: WebSocket
    ) -> tuple[EventFilter | None, ResumePoint | None, bool]:
        params = websocket.query_params
        unknown = set(params) - {"experiment", "since", "token", "batch"}
        if unknown:
            raise BadInput(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        since = parse_since(params["since"]) if "since" in params else None
        batch = params.get("batch", "false")
        if batch not in ("true", "false"):
            raise BadInput(f"batch must be true or false, got {batch[:40]!r}")
        accept: EventFilter | None = None
        if "experiment" in params:
            experiment_id = await self._wb.resolve_experiment(params["experiment"])

            def accept(event: Event) -> bool:
                return event.experiment_id == experiment_id

        return accept, since, batch == "true"

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
        subscription: Subscription,
        last_seq: int,
        truncated: dict[str, Any] | None,
        batched: bool,
    ) -> None:
        """Send events in order; `last_seq` is the seq the client has seen up to (for notices)."""
        if truncated is not None:
            notice = _json({"type": "feed.truncated", "data": truncated})
            await self._send(websocket, [notice], batched)
        most = BATCH_MOST if batched else BATCH
        reported = 0
        while True:
            batch = [await subscription.get()]
            if batched:
                await asyncio.sleep(BATCH_WINDOW)
            while len(batch) < most and (event := subscription.get_nowait()) is not None:
                batch.append(event)
            if subscription.dropped > reported:
                # Fell behind: the batch may be newer than a dropped event, so it goes too,
                # with everything queued; what follows is newer than all of it.
                skipped = subscription.dropped - reported + len(batch) + len(subscription.drain())
                reported = subscription.dropped
                epoch = self._wb.bus.epoch
                lagged = {"dropped": skipped, "last_seq": last_seq, "epoch": epoch}
                notice = _json({"type": "feed.lagged", "data": lagged})
                await self._send(websocket, [notice], batched)
                continue
            await self._send(websocket, [self._encode(event) for event in batch], batched)
            last_seq = batch[-1].seq

    def _encode(self, event: Event) -> str:
        """An event's JSON text, made once for all subscribers (most events go to each)."""
        text = self._encoded.get(event.seq)
        if text is None:
            text = _json(event.as_dict())
            self._encoded[event.seq] = text
            if len(self._encoded) > ENCODED_KEPT:
                self._encoded.popitem(last=False)
        return text

    async def _send(self, websocket: WebSocket, texts: list[str], batched: bool) -> None:
        """One message per text (batched: one JSON array of them all), within `send_timeout`."""
        async with asyncio.timeout(self._send_timeout):
            if batched:
                if texts:
                    await websocket.send_text("[" + ",".join(texts) + "]")
            else:
                for text in texts:
                    await websocket.send_text(text)
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


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
