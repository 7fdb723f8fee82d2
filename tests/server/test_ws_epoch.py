"""The websocket feed across daemon restarts (epochs) and clients that vanish mid-replay, with
real websockets clients over real sockets against the API app served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as connect_sync

from promptlooper_tui.engine.events import EventBus
from promptlooper_tui.workbench import Workbench

from .conftest import AUTH, RunningApi, running_api
from .test_ws import WITHIN, contiguous, events_until, receive, seqs


def publish(api: RunningApi, count: int, **data: Any) -> list[int]:
    return [api.wb.bus.publish("score.added", "exp_x", data=data).seq for _ in range(count)]


def test_every_bus_has_its_own_epoch() -> None:
    first, second = EventBus(), EventBus()
    assert first.epoch != second.epoch
    assert first.publish("score.added", "exp_x").as_dict()["epoch"] == first.epoch


async def test_since_epoch_and_seq_resumes_after_that_event(api: RunningApi) -> None:
    publish(api, 5)
    epoch = api.wb.bus.epoch
    async with connect(api.ws_url(f"since={epoch}:3"), additional_headers=AUTH) as ws:
        replayed = [await receive(ws), await receive(ws)]
        assert [m["seq"] for m in replayed] == [4, 5]
        assert {m["epoch"] for m in replayed} == {epoch}
        live = api.wb.bus.publish("sweep.completed", "exp_x")
        assert (await receive(ws))["seq"] == live.seq


async def test_since_from_another_epoch_is_a_notice_then_this_epochs_events(
    api: RunningApi,
) -> None:
    """A client that saw seq 500 of a daemon that has since restarted: it learns so, gets every
    event of the new epoch, then the live ones."""
    publish(api, 3)
    bus = api.wb.bus
    async with connect(api.ws_url("since=0123abcd:500"), additional_headers=AUTH) as ws:
        notice = await receive(ws)
        assert notice == {
            "type": "feed.truncated",
            "data": {"oldest_seq": 1, "epoch": bus.epoch, "reason": "restarted"},
        }
        bus.publish("sweep.completed", "exp_x")
        messages = await events_until(ws, "sweep.completed")
    assert seqs(messages) == contiguous(1, 4)


async def test_since_beyond_the_newest_event_is_a_notice_not_silence(api: RunningApi) -> None:
    publish(api, 2)
    bus = api.wb.bus
    async with connect(api.ws_url("since=40"), additional_headers=AUTH) as ws:
        notice = await receive(ws)
        assert notice["type"] == "feed.truncated"
        assert notice["data"] == {"oldest_seq": 1, "epoch": bus.epoch, "reason": "ahead"}
        live = bus.publish("sweep.completed", "exp_x")
        messages = await events_until(ws, "sweep.completed")
    assert seqs(messages) == [1, 2, live.seq]


async def test_since_of_the_current_epoch_with_nothing_missed_has_no_notice(
    api: RunningApi,
) -> None:
    publish(api, 2)
    bus = api.wb.bus
    async with connect(api.ws_url(f"since={bus.epoch}:2"), additional_headers=AUTH) as ws:
        live = bus.publish("sweep.completed", "exp_x")
        assert await receive(ws) == {**live.as_dict()}


@pytest.mark.parametrize("since", [":5", "abc:", "abc:-1", "abc:x", "1e3", str(2**63), "9" * 5000])
async def test_malformed_since_is_a_400_saying_the_shape(api: RunningApi, since: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(api.ws_url(f"since={since}"), additional_headers=AUTH):
            pass
    assert refused.value.response.status_code == 400
    error = json.loads(refused.value.response.body)["error"]
    assert "since" in error and ("EPOCH:SEQ" in error or "0.." in error)


# -- a client that leaves mid-replay ------------------------------------------------------------


def _read_then_reset(url: str, messages: int) -> list[dict[str, Any]]:
    """A client (in its own thread) that reads `messages` messages, then drops the connection
    with a TCP reset, as a killed process or a vanished network does."""
    with connect_sync(url, additional_headers=AUTH, open_timeout=WITHIN) as ws:
        received = [json.loads(ws.recv(timeout=WITHIN)) for _ in range(messages)]
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.socket.close()
    return received


async def test_a_client_that_drops_mid_replay_ends_it_without_a_flood_of_logs(
    workbench: Workbench, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_api(workbench) as api:
        publish(api, 10_000, text="x" * 200)  # the whole replay buffer
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        received = await asyncio.to_thread(_read_then_reset, api.ws_url("since=0"), 5)
        assert seqs(received) == [1, 2, 3, 4, 5]
        async with asyncio.timeout(WITHIN):
            while api.feed.subscribers:  # noqa: ASYNC110 - until the server sees the client go
                await asyncio.sleep(0.01)
        # Still serving: a new subscriber gets the replay.
        async with connect(api.ws_url("since=9999"), additional_headers=AUTH) as ws:
            assert (await receive(ws))["seq"] == 10_000
    server_side = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and not record.name.startswith("websockets")
    ]
    assert len(server_side) <= 1, [record.getMessage() for record in server_side]
    assert not [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
