"""uvicorn's websocket protocol with one socket write for the messages of one event loop step,
and frames made once for many connections sent as they are.

Over loopback a socket write costs the daemon more than everything else about sending a
websocket message (the kernel delivers to the reader within the same call): with one write per
message, 50 subscribers of a fast sweep's one-event-per-message feed cost the sweep half its
speed. Here the frames an application sends in one step of the event loop are written
together, once the step ends, so a feed sender sending its batch of waiting events costs one
write per batch. Every message is still a frame of its own, in order.

Where no extension changes the wire format, the scope offers `ws_frames.SEND_FRAMES`: the feed
hands over frames it made once for all subscribers (`ws_frames.text_frame`), skipping the ASGI
send path and the framing of each message for each connection.

Flow control is kept: a send waits while the transport's buffer is over its high-water mark.
What waits is written before uvicorn handles anything the client sent and before it shuts the
connection down, so no message can follow a close frame.
"""

from __future__ import annotations

from typing import Any, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request
from websockets.protocol import State

from .ws_frames import SEND_FRAMES


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as uvicorn's `ws` protocol class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unwritten: list[bytes] = []

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The application's task is created but has not run yet: it sees the extension.
        if self.response.status_code == 101 and not self.conn.extensions:
            extensions = cast(dict[str, Any], self.scope["extensions"])
            extensions[SEND_FRAMES] = self.send_frames

    async def send(self, message: Any) -> None:
        if (
            message["type"] != "websocket.send"
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
        ):
            # Anything else (accept, close, denial) goes as uvicorn sends it, after what waits.
            self._write_unwritten()
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        try:
            if message.get("bytes") is not None:
                self.conn.send_binary(message["bytes"])
            elif message.get("text") is not None:
                self.conn.send_text(message["text"].encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self._queue(self.conn.data_to_send())

    async def send_frames(self, frames: list[bytes]) -> None:
        """Send `frames` (complete frames, see `ws_frames.text_frame`) in order, as `send`
        sends messages: after waiting for room in the transport's buffer, written with the
        rest of this step's."""
        await self.writable.wait()
        if self.disconnected or self.conn.state is not State.OPEN:
            # Not open (yet, or any more: either side began closing), as `send` reports it.
            raise ClientDisconnected()
        self._queue(frames)

    def data_received(self, data: bytes) -> None:
        self._write_unwritten()
        super().data_received(data)

    def shutdown(self) -> None:
        self._write_unwritten()
        super().shutdown()

    def _queue(self, frames: list[bytes]) -> None:
        if not self._unwritten:
            # call_soon: after this step, and before the next round of I/O callbacks.
            self.loop.call_soon(self._write_unwritten)
        self._unwritten += frames

    def _write_unwritten(self) -> None:
        if self._unwritten:
            if not self.transport.is_closing():
                self.transport.write(b"".join(self._unwritten))
            self._unwritten.clear()
