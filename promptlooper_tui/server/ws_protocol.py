"""uvicorn's websocket protocol with one socket write for the messages of one event loop step.

Over loopback a socket write costs the daemon more than everything else about sending a
websocket message (the kernel delivers to the reader within the same call): with one write per
message, 50 subscribers of a fast sweep's one-event-per-message feed cost the sweep half its
speed. Here the frames an application sends in one step of the event loop are written
together, once the step ends, so a feed sender sending its batch of waiting events costs one
write per batch. Every message is still a frame of its own, in order.

Flow control is kept: a send waits while the transport's buffer is over its high-water mark.
What waits is written before uvicorn handles anything the client sent and before it shuts the
connection down, so no message can follow a close frame.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as uvicorn's `ws` protocol class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unwritten: list[bytes] = []

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
        if not self._unwritten:
            # call_soon: after this step, and before the next round of I/O callbacks.
            self.loop.call_soon(self._write_unwritten)
        self._unwritten += self.conn.data_to_send()

    def data_received(self, data: bytes) -> None:
        self._write_unwritten()
        super().data_received(data)

    def shutdown(self) -> None:
        self._write_unwritten()
        super().shutdown()

    def _write_unwritten(self) -> None:
        if self._unwritten:
            if not self.transport.is_closing():
                self.transport.write(b"".join(self._unwritten))
            self._unwritten.clear()
