"""Events across the processes sharing a store (DESIGN §10): two Workbenches on one store, each
as another process would open it, see each other's sweeps on their own buses, on SQLite and on
PostgreSQL. (A real second process, and control from one to the other: tests/server.)"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from promptlooper_tui.domain.events import Event
from promptlooper_tui.engine import event_relay
from promptlooper_tui.engine.events import Subscription
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.workbench import SweepOverrides, Workbench, open_workbench

from ..conftest import experiment_yaml

#: Bounds every wait for a relayed event, so that a bug fails the test instead of hanging it.
WITHIN = 10


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[Workbench]:
    """A second Workbench on the same store, as another process opens it."""
    async with open_workbench(settings) as wb:
        yield wb


async def events_until(subscription: Subscription, *last_types: str) -> list[Event]:
    """Every event up to and including the first of one of `last_types`."""
    events = []
    async with asyncio.timeout(WITHIN):
        while True:
            events.append(await subscription.get())
            if events[-1].type in last_types:
                return events


async def committed(wb: Workbench) -> None:
    """Once the events `wb` published so far are in the store (a write queued after them)."""
    wb.relay.flush()  # what it would queue at the end of this step, queued now
    await wb.db.write([])


def relayable(event: Event) -> tuple[str, str, str | None, str | None, dict[str, Any]]:
    return (event.type, event.experiment_id, event.sweep_id, event.run_id, event.data)


async def test_a_sweep_of_one_process_is_live_on_the_others_bus(
    workbench: Workbench, other: Workbench
) -> None:
    with other.bus.subscribe() as seen:
        imported = await workbench.import_text(experiment_yaml())
        sweep_id = await workbench.create_sweep(imported.id)
        summary = await workbench.run_sweep(sweep_id)
        relayed = await events_until(seen, "sweep.completed")

    assert summary.status == "completed"
    own = [e for e in workbench.bus.replay() if e.sweep_id == sweep_id]
    assert {e.origin for e in own} == {None}
    # Everything but the runs' starts, in order, as the runner published it.
    assert [relayable(e) for e in relayed] == [relayable(e) for e in own if e.type != "run.started"]
    assert [e.type for e in relayed].count("run.completed") == 12
    assert {e.origin for e in relayed} == {workbench.relay.origin}
    assert workbench.relay.origin != other.relay.origin
    # Numbered by the bus that delivers them, like its own events.
    assert {e.epoch for e in relayed} == {other.bus.epoch}
    assert [e.seq for e in relayed] == sorted(e.seq for e in relayed)
    # A process's own rows do not come back to it.
    assert not [e for e in workbench.bus.replay() if e.origin is not None]


async def test_each_process_sees_the_others_and_not_its_own_again(
    workbench: Workbench, other: Workbench
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    first = await workbench.run_sweep(await workbench.create_sweep(imported.id))
    run = (await workbench.list_runs(sweep=first.sweep_id, limit=1)).items[0]
    with workbench.bus.subscribe(accept=lambda e: e.origin is not None) as back:
        await other.add_score(run.id, 0.9, note="from the other process")
        [score] = await events_until(back, "score.added")
    assert score.run_id == run.id and score.origin == other.relay.origin
    assert score.data["value"] == 0.9 and score.data["note"] == "from the other process"
    await other.relay.read_new()  # past its own row: which it must not publish again
    scores = [e for e in other.bus.replay() if e.type == "score.added"]
    assert [e.origin for e in scores] == [None]


async def test_a_new_follower_starts_at_the_newest_event(
    workbench: Workbench, settings: Settings
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    summary = await workbench.run_sweep(await workbench.create_sweep(imported.id))
    run = (await workbench.list_runs(sweep=summary.sweep_id, limit=1)).items[0]
    await committed(workbench)
    async with open_workbench(settings) as late:
        with late.bus.subscribe() as seen:
            await workbench.add_score(run.id, 0.5)
            first = (await events_until(seen, "score.added"))[0]
    # The finished sweep's events are history: the first one relayed is the score.
    assert first.type == "score.added"


async def test_events_relayed_in_are_not_delivered_to_webhooks_again(
    workbench: Workbench, other: Workbench
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await other.add_webhook("http://127.0.0.1:9/hook", ["sweep.completed"])
    await other.webhooks.reload()
    with other.bus.subscribe(accept=lambda e: e.type == "sweep.completed") as seen:
        await workbench.run_sweep(sweep_id)
        [relayed] = await events_until(seen, "sweep.completed")
    assert relayed.origin == workbench.relay.origin
    # The process that ran the sweep delivers it; the one it was relayed to would repeat it.
    assert not other.webhooks._wanted(relayed)
    assert other.webhooks._wanted(workbench.bus.replay()[-1])


async def test_a_seq_committed_late_is_still_relayed(
    workbench: Workbench, other: Workbench
) -> None:
    """On PostgreSQL a transaction may commit a lower seq after a higher one is read: the
    follower asks for the missing one again until it comes."""
    relay = other.relay
    await relay.read_new()
    base = relay._last_seq
    insert = (
        "INSERT INTO events (seq, origin, events, created_at) "
        "VALUES (?, 'elsewhere', ?, '2026-01-01T00:00:00')"
    )

    def row(type: str) -> str:
        event = {"type": type, "experiment_id": "exp", "sweep_id": None, "run_id": None}
        return json.dumps([{**event, "data": {}}])

    with other.bus.subscribe(accept=lambda e: e.origin == "elsewhere") as seen:
        await workbench.db.write([(insert, (base + 2, row("score.added")))])
        await events_until(seen, "score.added")
        assert base + 1 in relay._gaps
        await workbench.db.write([(insert, (base + 1, row("sweep.paused")))])
        await events_until(seen, "sweep.paused")
    assert base + 1 not in relay._gaps


async def test_old_events_are_pruned(
    workbench: Workbench, other: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    await workbench.run_sweep(await workbench.create_sweep(imported.id))
    await committed(workbench)
    relay = other.relay
    await relay.read_new()
    monkeypatch.setattr(event_relay, "KEEP_S", 0.0)
    monkeypatch.setattr(event_relay, "PRUNE_EVERY_S", 0.0)
    relay._marks.clear()
    await relay._prune()  # marks what it has read
    await relay._prune()  # deletes what was marked
    rows = await workbench.db.fetchall("SELECT seq FROM events")
    assert rows == []


async def test_relayed_events_carry_no_secret(workbench: Workbench, other: Workbench) -> None:
    key = "sk-relaycheck-" + secrets.token_hex(16)
    async with simulated_endpoint(SimulatorOptions(api_key=key)) as sim:
        await workbench.add_endpoint("keyed", sim.base_url, api_key=key)
        # A second endpoint with the wrong key: its runs fail with the endpoint's answer.
        await workbench.add_endpoint("wrong", sim.base_url, api_key=key[::-1])
        relayed: list[Event] = []
        with other.bus.subscribe(accept=lambda e: e.origin is not None) as seen:
            for endpoint in ("keyed", "wrong"):
                imported = await workbench.import_text(
                    experiment_yaml(name=f"secret-{endpoint}", endpoint=endpoint)
                )
                overrides = SweepOverrides(no_cache=True)
                sweep_id = await workbench.create_sweep(imported.id, overrides)
                await workbench.run_sweep(sweep_id)
                relayed += await events_until(seen, "sweep.completed", "sweep.stopped")
    rows = await workbench.db.fetchall("SELECT * FROM events")
    stored = json.dumps([dict(zip(row.keys(), tuple(row), strict=True)) for row in rows])
    events = [event for row in rows for event in json.loads(row["events"])]
    assert len(events) >= 24 and "run.failed" in stored
    assert key not in stored and key[::-1] not in stored
    assert not [e for e in relayed if key in json.dumps(e.as_dict())]
