"""The websocket feed `/ws` with the `websockets` client over real sockets: live events, replay
with `since`, the experiment filter, auth, slow subscribers, keepalive pings and shutdown."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from promptlooper_tui.server.ws import EventFeed
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import RunningSimulator, simulated_endpoint
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml
from .conftest import AUTH, TOKEN, RunningApi, running_api, wait_for_sweep

#: Bounds every wait for the feed, so that a bug fails the test instead of hanging it.
WITHIN = 20


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunningSimulator]:
    """A simulated endpoint slow enough that a sweep is still running while a test acts."""
    async with simulated_endpoint(SimulatorOptions(latency_ms=15)) as running:
        yield running


async def import_experiment(api: RunningApi, base_url: str | None = None, **changes: Any) -> str:
    if base_url is not None:
        changes["endpoint"] = {"base_url": base_url}
    created = await api.client.post("/api/experiments", json={"yaml": experiment_yaml(**changes)})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def start_sweep(api: RunningApi, experiment: str = "support", **overrides: Any) -> str:
    started = await api.client.post(f"/api/experiments/{experiment}/sweeps", json=overrides)
    assert started.status_code == 202, started.text
    return str(started.json()["sweep_id"])


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WITHIN):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def events_until(ws: ClientConnection, last_type: str) -> list[dict[str, Any]]:
    """Every message up to and including the first of type `last_type`."""
    messages = []
    while True:
        messages.append(await receive(ws))
        if messages[-1]["type"] == last_type:
            return messages


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages if "seq" in m]


def contiguous(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


# -- live events and replay -------------------------------------------------------------------


async def test_a_subscriber_sees_a_sweep_live_in_order(api: RunningApi) -> None:
    await import_experiment(api)
    async with connect(api.ws_url(), additional_headers=AUTH) as ws:
        sweep_id = await start_sweep(api)
        messages = await events_until(ws, "sweep.completed")
    assert seqs(messages) == contiguous(messages[0]["seq"], messages[-1]["seq"])
    types = [m["type"] for m in messages]
    assert types[0] == "sweep.started"
    assert types.count("run.completed") == types.count("run.started") == 12
    assert {m["sweep_id"] for m in messages} == {sweep_id}
    assert set(messages[0]) == {
        *("epoch", "seq", "ts", "type", "experiment_id", "sweep_id", "run_id", "data")
    }
    assert {m["epoch"] for m in messages} == {api.wb.bus.epoch}


async def test_batched_messages_carry_the_same_events_in_order(api: RunningApi) -> None:
    """`batch=true`: each message is a JSON array; together they are the unbatched feed."""
    await import_experiment(api)
    async with (
        connect(api.ws_url("batch=true"), additional_headers=AUTH) as batched,
        connect(api.ws_url(), additional_headers=AUTH) as single,
    ):
        await start_sweep(api)
        events: list[dict[str, Any]] = []
        messages = 0
        while not events or events[-1]["type"] != "sweep.completed":
            async with asyncio.timeout(WITHIN):
                message = json.loads(await batched.recv())
            assert isinstance(message, list) and message
            events += message
            messages += 1
        assert events == await events_until(single, "sweep.completed")
    assert messages < len(events)


async def test_a_batched_replay_starts_with_its_notice(api: RunningApi) -> None:
    bus = api.wb.bus
    for _ in range(10_003):  # the bus keeps the latest 10,000 for replay
        bus.publish("score.added", "exp_other")
    oldest = bus.replay()[0].seq
    async with connect(api.ws_url("since=1&batch=true"), additional_headers=AUTH) as ws:
        async with asyncio.timeout(WITHIN):
            first = json.loads(await ws.recv())
        assert first == [
            {
                "type": "feed.truncated",
                "data": {"oldest_seq": oldest, "epoch": bus.epoch, "reason": "expired"},
            }
        ]
        replayed: list[int] = []
        while len(replayed) < 10_000:
            async with asyncio.timeout(WITHIN):
                replayed += seqs(json.loads(await ws.recv()))
    assert replayed == contiguous(oldest, bus.last_seq)


async def test_since_replays_then_streams_live_without_gap_or_duplicate(
    api: RunningApi, slow_sim: RunningSimulator
) -> None:
    """Many subscribers join mid-sweep, each from a different `since`: each gets every event
    after its `since` exactly once and in order, across the seam of replay and live."""
    await import_experiment(api, slow_sim.base_url, sweep={"max_concurrency": 2})
    bus = api.wb.bus
    with bus.subscribe() as published:
        await start_sweep(api, repeats=2)
        async with asyncio.timeout(WITHIN):
            while (await published.get()).seq < 20:
                pass

    async def follow(since: int) -> list[int]:
        async with connect(api.ws_url(f"since={since}"), additional_headers=AUTH) as ws:
            return seqs(await events_until(ws, "sweep.completed"))

    starts = list(range(0, 20, 2))
    received = await asyncio.gather(*(follow(since) for since in starts))
    last = bus.last_seq
    assert [m.type for m in bus.replay(last - 1)] == ["sweep.completed"]
    for since, got in zip(starts, received, strict=True):
        assert got == contiguous(since + 1, last), f"since={since}"


async def test_since_older_than_the_buffer_says_what_was_lost(api: RunningApi) -> None:
    support_id = await import_experiment(api)
    bus = api.wb.bus
    for _ in range(10_005):  # the bus keeps the latest 10,000 for replay
        bus.publish("score.added", "exp_other")
    kept = bus.publish("score.added", support_id)
    oldest = bus.replay()[0].seq
    assert oldest > 2
    async with connect(api.ws_url("since=1&experiment=support"), additional_headers=AUTH) as ws:
        notice = await receive(ws)
        assert notice == {
            "type": "feed.truncated",
            "data": {"oldest_seq": oldest, "epoch": bus.epoch, "reason": "expired"},
        }
        assert (await receive(ws))["seq"] == kept.seq


async def test_the_experiment_filter(api: RunningApi) -> None:
    support_id = await import_experiment(api)
    await import_experiment(api, name="other")
    async with (
        connect(api.ws_url("experiment=support"), additional_headers=AUTH) as by_name,
        connect(api.ws_url(f"experiment={support_id}"), additional_headers=AUTH) as by_id,
        connect(api.ws_url(), additional_headers=AUTH) as everything,
    ):
        other_sweep = await start_sweep(api, "other")
        await wait_for_sweep(api.client, other_sweep)
        support_sweep = await start_sweep(api, "support")
        mine = await events_until(by_name, "sweep.completed")
        assert await events_until(by_id, "sweep.completed") == mine
        all_events = await events_until(everything, "sweep.completed")
        all_events += await events_until(everything, "sweep.completed")
    assert {(m["experiment_id"], m["sweep_id"]) for m in mine} == {(support_id, support_sweep)}
    assert mine == [m for m in all_events if m["experiment_id"] == support_id]
    assert len(all_events) == 2 * len(mine)


async def test_bad_queries_are_refused_before_the_handshake(api: RunningApi) -> None:
    for query, status in [
        ("experiment=nope", 404),
        ("since=soon", 400),
        ("since=-1", 400),
        ("channel=all", 400),
        ("batch=yes", 400),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(api.ws_url(query), additional_headers=AUTH):
                pass
        assert refused.value.response.status_code == status, query
        assert json.loads(refused.value.response.body)["error"]


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("", {"Authorization": "Bearer wrong"}),
        ("", {"Authorization": f"Basic {TOKEN}"}),
        ("token=wrong", {}),
        ("token=", {}),
    ],
    ids=["none", "wrong-header", "not-bearer", "wrong-query", "empty-query"],
)
async def test_a_subscriber_without_the_token_gets_401(
    api: RunningApi, query: str, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(api.ws_url(query), additional_headers=headers):
            pass
    assert refused.value.response.status_code == 401
    assert TOKEN not in refused.value.response.body.decode()
    assert api.feed.subscribers == 0


async def test_the_token_may_come_as_a_query_parameter(api: RunningApi) -> None:
    async with connect(api.ws_url(f"token={TOKEN}&since=0")) as ws:
        api.wb.bus.publish("score.added", "exp_x")
        assert (await receive(ws))["type"] == "score.added"


# -- slow subscribers ---------------------------------------------------------------------------


async def test_a_subscriber_that_falls_behind_is_skipped_ahead_with_a_notice(
    workbench: Workbench,
) -> None:
    async with running_api(workbench, feed=EventFeed(workbench, queue_size=8)) as api:
        bus = api.wb.bus
        bus.publish("score.added", "exp_x")
        async with connect(api.ws_url(), additional_headers=AUTH) as ws:
            before = bus.last_seq
            for _ in range(100):  # one burst: the subscriber's queue of 8 overflows
                bus.publish("score.added", "exp_x")
            notice = await receive(ws)
            data = {"dropped": 100, "last_seq": before, "epoch": bus.epoch}
            assert notice == {"type": "feed.lagged", "data": data}
            after = bus.publish("sweep.completed", "exp_x")
            assert (await receive(ws))["seq"] == after.seq
        # Reconnecting from the notice's `last_seq` replays the skipped events (the replay has
        # room of its own beyond the queue size).
        async with connect(api.ws_url(f"since={before}"), additional_headers=AUTH) as ws:
            replayed = await events_until(ws, "sweep.completed")
        assert seqs(replayed) == contiguous(before + 1, after.seq)


async def test_a_subscriber_that_stops_reading_is_dropped(workbench: Workbench) -> None:
    feed = EventFeed(workbench, send_timeout=0.3)
    async with running_api(workbench, feed=feed) as api:
        bus = api.wb.bus
        async with (
            connect(api.ws_url(), additional_headers=AUTH, max_queue=1) as stuck,
            connect(api.ws_url(), additional_headers=AUTH) as reader,
        ):
            assert feed.subscribers == 2
            published = 0
            async with asyncio.timeout(WITHIN):
                # Fill the socket buffers between the server and the client that reads nothing
                # until a send waits longer than `send_timeout`. The padding is random, so
                # that permessage-deflate cannot shrink it.
                while feed.subscribers == 2:
                    padding = secrets.token_hex(32_000)
                    bus.publish("run.completed", "exp_x", data={"padding": padding})
                    published += 1
                    await asyncio.sleep(0.002)
            assert feed.subscribers == 1
            # The reading subscriber was neither slowed nor skipped: it has every event.
            got = [await receive(reader) for _ in range(published)]
            assert seqs(got) == contiguous(1, published)
            with pytest.raises(ConnectionClosed):
                while True:
                    await stuck.recv()


# -- keepalive and shutdown ---------------------------------------------------------------------


async def test_keepalive_pings_and_a_silent_client_is_closed(workbench: Workbench) -> None:
    """A raw client that never answers pings: the server pings it, then closes with 1011."""
    async with running_api(workbench, ws_ping_interval=0.05, ws_ping_timeout=0.2) as api:
        protocol = ClientProtocol(parse_uri(api.ws_url()))
        request = protocol.connect()
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        protocol.send_request(request)
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"".join(protocol.data_to_send()))
        received: list[Response | Frame] = []
        async with asyncio.timeout(WITHIN):
            while data := await reader.read(65536):
                protocol.receive_data(data)
                received += protocol.events_received()
        writer.close()
    response, *frames = received
    assert isinstance(response, Response) and response.status_code == 101
    opcodes = [frame.opcode for frame in frames if isinstance(frame, Frame)]
    assert opcodes[0] == Opcode.PING and opcodes[-1] == Opcode.CLOSE
    assert protocol.close_rcvd is not None and protocol.close_rcvd.code == 1011


async def test_a_client_that_answers_pings_stays_connected(workbench: Workbench) -> None:
    async with (
        running_api(workbench, ws_ping_interval=0.05, ws_ping_timeout=2) as api,
        connect(api.ws_url(), additional_headers=AUTH, ping_interval=None) as ws,
    ):
        # Long enough for several server pings; the client's library answers each with a pong.
        await asyncio.sleep(0.6)
        api.wb.bus.publish("score.added", "exp_x")
        assert (await receive(ws))["type"] == "score.added"


async def test_shutdown_closes_subscribers_with_1001_after_what_was_published(
    api: RunningApi,
) -> None:
    await import_experiment(api)
    async with (
        connect(api.ws_url(), additional_headers=AUTH) as first,
        connect(api.ws_url("experiment=support"), additional_headers=AUTH) as filtered,
    ):
        last = api.wb.bus.publish("sweep.paused", "exp_x")
        await api.feed.close_all()
        assert api.feed.subscribers == 0
        assert (await receive(first))["seq"] == last.seq
        for ws in (first, filtered):
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    with pytest.raises(InvalidStatus) as refused:
        async with connect(api.ws_url(), additional_headers=AUTH):
            pass
    assert refused.value.response.status_code == 503
