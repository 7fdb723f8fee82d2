"""Frames made once for many connections: their bytes, the daemon's protocol sending them as
they are where nothing changes the wire format, and the feed without that protocol."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.server.ws_frames import SEND_FRAMES, text_frame
from promptlooper_tui.workbench import Workbench

from .conftest import AUTH, UVICORN_WS, running_api
from .test_ws import contiguous, events_until, receive, seqs


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 100_000])
def test_a_text_frame_is_what_the_websocket_library_would_send(size: int) -> None:
    text = ("é" * size)[: size // 2] + "x" * (size - size // 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert text_frame(text) == expected


async def frames_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, says whether it was offered `SEND_FRAMES`, sends two messages through it when
    it was (then one the usual way), and closes."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    send_frames = scope["extensions"].get(SEND_FRAMES)
    await send({"type": "websocket.send", "text": f"offered={send_frames is not None}"})
    if send_frames is not None:
        await send_frames([text_frame("one"), text_frame("two" * 100)])
    await send({"type": "websocket.send", "text": "three"})
    await send({"type": "websocket.close", "code": 1000})


async def test_the_daemons_protocol_sends_frames_in_order_then_closes() -> None:
    async with (
        serve_app(frames_app, **UVICORN_WS) as port,
        connect(f"ws://127.0.0.1:{port}/", compression=None) as ws,
    ):
        got = [await ws.recv() for _ in range(4)]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert got == ["offered=True", "one", "two" * 100, "three"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


async def test_no_frames_are_offered_when_compression_changes_the_wire() -> None:
    deflating = UVICORN_WS | {"ws_per_message_deflate": True}
    async with (
        serve_app(frames_app, **deflating) as port,
        connect(f"ws://127.0.0.1:{port}/", compression="deflate") as ws,
    ):
        assert [await ws.recv(), await ws.recv()] == ["offered=False", "three"]


async def test_the_feed_sends_each_event_without_the_daemons_protocol(
    workbench: Workbench,
) -> None:
    async with running_api(workbench, ws="websockets-sansio") as api:
        bus = api.wb.bus
        bus.publish("score.added", "exp_x")
        async with connect(api.ws_url("since=0"), additional_headers=AUTH) as ws:
            assert (await receive(ws))["seq"] == 1
            for _ in range(100):
                bus.publish("score.added", "exp_x")
            last = bus.publish("sweep.completed", "exp_x")
            assert seqs(await events_until(ws, "sweep.completed")) == contiguous(2, last.seq)
