"""Sweeps shared by processes on one store (DESIGN §10): work units, workers, takeover.

Each test runs on SQLite and on PostgreSQL (the `settings` fixture). A second Workbench on the
same store stands for another process: it has an identity, leases and claims of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from promptlooper_tui.domain.events import Event
from promptlooper_tui.settings import Settings
from promptlooper_tui.store import work
from promptlooper_tui.store import workers as stored_workers
from promptlooper_tui.workbench import SweepOverrides, Workbench, open_workbench

from ..conftest import experiment_yaml
from ..helpers import until

#: Bounds on waits for another task's work (generous: the machine is shared and slow).
WAIT_S = 60.0


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[Workbench]:
    """Another process's Workbench on the same store."""
    async with open_workbench(settings) as wb:
        yield wb


async def create(wb: Workbench, **overrides: Any) -> str:
    imported = await wb.import_text(experiment_yaml())
    return await wb.create_sweep(imported.id, SweepOverrides(**overrides))


async def runs_of(wb: Workbench, sweep_id: str) -> list[tuple[Any, ...]]:
    page = await wb.list_runs(sweep=sweep_id, limit=1000)
    return [(tuple(sorted(r.config.items())), r.item_index, r.repeat) for r in page.items]


def completions(wb: Workbench) -> tuple[asyncio.Event, Any]:
    """An event set whenever `wb`'s bus hears a sweep end (its own or relayed), and the
    subscription to close."""
    ended = asyncio.Event()

    def note(event: Event) -> bool:
        if event.type.startswith("sweep."):
            ended.set()
        return False

    return ended, wb.bus.subscribe(accept=note)


async def test_with_a_worker_about_a_sweep_runs_as_units_each_run_once(
    workbench: Workbench,
) -> None:
    # A worker reported a moment ago: the batch goes to the store as units.
    me = workbench.identity
    await workbench.db.write(
        [stored_workers.register_worker_statement("w", "w", me.host, 1, "now", time.time())]
    )
    sweep_id = await create(workbench, repeats=3)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"
    runs = await runs_of(workbench, sweep_id)
    assert len(runs) == len(set(runs)) == 2 * 2 * 3 * 3
    assert await work.units_left(workbench.db, sweep_id, 10**6) == 0
    assert await work.coordinator(workbench.db, sweep_id) is None


async def test_a_worker_shares_a_sweep_and_leaves_cleanly(
    workbench: Workbench, other: Workbench
) -> None:
    worker = other.team_worker("helper", concurrency=2)
    working = asyncio.create_task(worker.run())
    db = workbench.db
    await asyncio.wait_for(worker.ready.wait(), WAIT_S)
    assert await work.workers_seen_since(db, time.time() - 30) == 1
    sweep_id = await create(workbench, repeats=6)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"
    runs = await runs_of(workbench, sweep_id)
    assert len(runs) == len(set(runs)) == 2 * 2 * 3 * 6
    worker.leave()
    report = await asyncio.wait_for(working, WAIT_S)
    assert report.sweeps_taken_over == 0
    assert await stored_workers.list_workers(db) == []


async def test_a_sweep_whose_coordinator_is_gone_is_taken_over_and_completes(
    workbench: Workbench, other: Workbench
) -> None:
    sweep_id = await create(workbench, repeats=2)
    # Its creator holds the coordination: no worker takes it while the lease lasts.
    assert await work.orphaned_sweeps(workbench.db, time.time()) == []
    # The creator dies without a word: its lease runs out.
    holder = await work.coordinator(workbench.db, sweep_id)
    assert holder is not None and holder["owner"] == workbench.identity.owner
    await workbench.db.write([work.drop_coordinator_statement(sweep_id, workbench.identity.owner)])
    ended, subscription = completions(workbench)
    worker = other.team_worker("rescuer")
    working = asyncio.create_task(worker.run())

    async def completed() -> bool:
        return (await workbench.get_sweep(sweep_id)).status == "completed"

    # Woken by the sweep's end as relayed from the worker's process.
    with subscription:
        await until(completed, "the sweep to complete", WAIT_S, ended)
    worker.leave()
    report = await asyncio.wait_for(working, WAIT_S)
    assert report.sweeps_taken_over == 1
    runs = await runs_of(workbench, sweep_id)
    assert len(runs) == len(set(runs)) == 2 * 2 * 3 * 2
