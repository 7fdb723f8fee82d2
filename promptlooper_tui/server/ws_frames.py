"""Websocket text frames made once and sent to many connections.

A server's frames are not masked, and the daemon negotiates no compression, so the bytes of a
message on the wire are the same for every subscriber: the feed frames each event once. The
daemon's websocket protocol (`ws_protocol`) offers, as the scope extension `SEND_FRAMES`, an
async callable that sends such frames as they are, skipping the ASGI send path and the
websocket library's framing of every message for every subscriber. Importing this module loads
no server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: Scope extension: an async callable taking a list of frames made by `text_frame`, sent in
#: order, each a message of its own. Present only where no extension (compression) changes
#: the wire format.
SEND_FRAMES = "promptlooper.websocket.send_frames"

SendFrames = Callable[[list[bytes]], Awaitable[None]]

_FIN_TEXT = 0x81


def text_frame(text: str) -> bytes:
    """The unmasked, final, uncompressed frame of the text message `text` (RFC 6455 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big")
    return header + payload
