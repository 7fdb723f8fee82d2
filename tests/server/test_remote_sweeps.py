"""A sweep run by `promptlooper run` in another process, seen and controlled from this one's
front-ends (DESIGN §10): the websocket feed streams its events, the API and MCP show its
progress moving, and pause, resume and stop reach the process that runs it. On SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect

from promptlooper_tui.domain.events import Event
from promptlooper_tui.engine.events import Subscription
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import RunningSimulator, simulated_endpoint
from promptlooper_tui.store import sweeps as stored_sweeps
from promptlooper_tui.workbench import Workbench

from ..conftest import make_experiment
from .conftest import AUTH, RunningApi
from .test_mcp import call, http_client, mcp_http

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

#: Bounds every wait, so that a bug fails the test instead of hanging it.
WITHIN = 20
#: Runs of the other process's sweep: more than it can finish while the test acts on it.
RUNS = 2 * 2 * 3 * 20


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunningSimulator]:
    async with simulated_endpoint(SimulatorOptions(latency_ms=40)) as running:
        yield running


async def start_run(settings: Settings, experiment: Path) -> asyncio.subprocess.Process:
    """`promptlooper run` in a process of its own, on the test's store ($PROMPTLOOPER_DB is
    set for PostgreSQL)."""
    return await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "promptlooper_tui", "--home", str(settings.home)],
        *["run", str(experiment), "--json"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class Landed:
    """The runs of other processes relayed to `wb`'s bus, counted as the test takes them."""

    def __init__(self, wb: Workbench) -> None:
        self.taken = 0
        self._subscription = wb.bus.subscribe(
            accept=lambda e: e.type in ("run.completed", "run.failed") and e.origin is not None
        )

    async def take(self) -> Event:
        event = await next_event(self._subscription, "run.completed", "run.failed")
        self.taken += 1
        return event

    def close(self) -> None:
        self._subscription.close()


async def next_event(subscription: Subscription, *types: str) -> Event:
    async with asyncio.timeout(WITHIN):
        while True:
            event = await subscription.get()
            if event.type in types:
                return event


async def next_message(ws: ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(WITHIN):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message.get("type") in types:
                return message


async def test_a_sweep_of_another_process_is_live_and_controlled_here(
    api: RunningApi, settings: Settings, slow_sim: RunningSimulator, tmp_path: Path
) -> None:
    wb: Workbench = api.wb
    experiment = tmp_path / "elsewhere.yaml"
    spec = make_experiment(
        name="elsewhere",
        endpoint={"base_url": slow_sim.base_url},
        sweep={"repeats": 20, "max_concurrency": 2},
    )
    experiment.write_text(yaml.safe_dump(spec))
    runs = Landed(wb)
    sweep_events = wb.bus.subscribe(accept=lambda e: e.type.startswith("sweep."))
    async with connect(api.ws_url(), additional_headers=AUTH) as ws:
        other = await start_run(settings, experiment)
        try:
            started = await next_message(ws, "sweep.started")
            sweep_id = started["sweep_id"]
            # The websocket feed streams the other process's runs as they land.
            first = await next_message(ws, "run.completed")
            assert first["sweep_id"] == sweep_id and first["data"]["config"]
            assert "origin" not in first  # as any event of this process's own

            # The API's status object moves with them (the store's counts).
            progress = (await api.client.get(f"/api/sweeps/{sweep_id}")).json()
            assert progress["status"] == "running" and 0 < progress["runs"]["completed"] < RUNS
            # As more runs land, the answer moves too (once its short-lived copy is renewed:
            # the API keeps one at most MAX_AGE, while a few runs land).
            async with asyncio.timeout(WITHIN):
                while True:
                    await runs.take()
                    later = (await api.client.get(f"/api/sweeps/{sweep_id}")).json()
                    if later["runs"]["completed"] > progress["runs"]["completed"]:
                        break

            # Pause from here: the other process pauses it and says so.
            paused = await api.client.post(f"/api/sweeps/{sweep_id}/pause")
            assert paused.status_code == 200 and paused.json()["status"] == "paused"
            said = await next_event(sweep_events, "sweep.paused")
            assert said.sweep_id == sweep_id and said.origin is not None
            row = await stored_sweeps.sweep_with_experiment_name(wb.db, sweep_id)
            assert row is not None
            assert row["status"] == "paused" and row["owner_pid"] == other.pid
            assert (await next_message(ws, "sweep.paused"))["sweep_id"] == sweep_id
            # Runs in flight finish (each run is one call); no new one is dispatched.
            while runs.taken < slow_sim.state.requests:
                await runs.take()
            calls = slow_sim.state.requests
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await runs.take()
            assert slow_sim.state.requests == runs.taken == calls < RUNS
            assert (await wb.get_sweep(sweep_id)).status == "paused"

            # Resume from here: runs land again.
            resumed = await api.client.post(f"/api/sweeps/{sweep_id}/resume", json={})
            assert resumed.status_code == 202 and resumed.json()["status"] == "running"
            await next_event(sweep_events, "sweep.resumed")
            await runs.take()

            # MCP's status shows it too, and stops it there.
            async with mcp_http(wb) as url, http_client(url) as client:
                status = await call(client, "sweep_status", sweep=sweep_id)
                assert status["status"] == "running" and status["runs"]["completed"] > 0
                stopped = await call(client, "stop_sweep", sweep=sweep_id)
            assert stopped["status"] == "stopped"
            out, err = await asyncio.wait_for(other.communicate(), WITHIN)
        finally:
            if other.returncode is None:
                other.kill()
                await other.wait()
    summary = json.loads(out)
    assert summary["status"] == "stopped" and summary["sweep_id"] == sweep_id, err
    assert 0 < summary["runs"]["completed"] < RUNS
    assert (await wb.get_sweep(sweep_id)).status == "stopped"
    runs.close()
    sweep_events.close()


async def test_a_sweep_whose_process_died_reads_interrupted_and_resumes_here(
    api: RunningApi, settings: Settings, slow_sim: RunningSimulator, tmp_path: Path
) -> None:
    wb: Workbench = api.wb
    experiment = tmp_path / "orphan.yaml"
    spec = make_experiment(
        name="orphan",
        endpoint={"base_url": slow_sim.base_url},
        sweep={"repeats": 20, "max_concurrency": 2},
    )
    experiment.write_text(yaml.safe_dump(spec))
    with wb.bus.subscribe(accept=lambda e: e.type == "run.completed") as runs:
        other = await start_run(settings, experiment)
        try:
            sweep_id = (await next_event(runs, "run.completed")).sweep_id
        finally:
            other.kill()
            await other.wait()
    assert sweep_id is not None
    record = await wb.get_sweep(sweep_id)
    assert record.status == "interrupted" and record.resumable
    refused = await api.client.post(f"/api/sweeps/{sweep_id}/pause")
    assert refused.status_code == 409 and "resume it first" in refused.json()["error"]
    resumed = await api.client.post(f"/api/sweeps/{sweep_id}/resume", json={})
    assert resumed.status_code == 202
    assert wb.runner(sweep_id) is not None  # resumed here, as before
    stopped = await api.client.post(f"/api/sweeps/{sweep_id}/stop")
    assert stopped.json()["status"] == "stopped"
