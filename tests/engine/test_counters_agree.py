"""Counters mean one thing everywhere (DESIGN §3): `runs.total` is the sweep's planned total,
`calls` count the whole sweep over its resumes, a stopped sweep is never 100% done, and the
CLI summary, `sweeps list`, the API status object, MCP sweep_status and the app's monitor agree
on one sweep's numbers, read while it is paused, after it was stopped, and once resumed to
its end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.server.mcp.app import create_mcp_app
from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.sweep_feed import Counts
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml
from ..helpers import cli
from ..server.conftest import AUTH, TOKEN, RunningApi, running_api

#: 4 configs x 3 items x 10 repeats, one call at a time: far from done when the test stops it.
PLANNED = 120


@contextlib.asynccontextmanager
async def mcp_client(wb: Workbench) -> AsyncIterator[Client]:
    async with (
        serve_app(create_mcp_app(wb, TOKEN)) as port,
        httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
    ):
        yield client


async def every_view(
    wb: Workbench, sweep_id: str, home: Path, api: RunningApi, mcp: Client
) -> dict[str, dict[str, Any]]:
    """One sweep's numbers as each front-end shows them: status, runs and calls."""
    summary = await wb.sweep_summary(sweep_id)
    record = await wb.get_sweep(sweep_id)
    monitor = Counts.stored(summary, record)
    [listed] = [s for s in json.loads(cli(home, "sweeps", "list", "--json").stdout)]
    shown = json.loads(cli(home, "sweeps", "show", sweep_id, "--json").stdout)
    status = (await api.client.get(f"/api/sweeps/{sweep_id}")).json()
    [api_listed] = (await api.client.get("/api/sweeps")).json()
    result = await mcp.call_tool("sweep_status", {"sweep": sweep_id})
    assert not result.is_error and result.structured_content is not None
    tool = result.structured_content

    def full(doc: dict[str, Any]) -> dict[str, Any]:
        runs = doc["runs"]
        return {
            "status": doc["status"],
            "total": runs["total"],
            "completed": runs["completed"],
            "failed": runs["failed"],
            "calls": doc["calls"],
        }

    def listing(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": doc["status"],
            "total": doc["runs_total"],
            "completed": doc["runs_completed"],
            "failed": doc["runs_failed"],
        }

    return {
        "summary": full(summary.model_dump(mode="json")),
        "cli sweeps show": full(shown),
        "api status": full(status),
        "mcp sweep_status": full(tool),
        "cli sweeps list": listing(listed),
        "api sweeps": listing(api_listed),
        "monitor": {
            "status": record.status,
            "total": monitor.expected,
            "completed": monitor.done,
            "failed": monitor.failed,
        },
    }


def assert_agree(views: dict[str, dict[str, Any]]) -> dict[str, Any]:
    reference = views["summary"]
    for name, view in views.items():
        assert view == {k: reference[k] for k in view}, name
    return reference


async def stop_after_some_runs(wb: Workbench, sweep_id: str, runs: int) -> None:
    """Stop the sweep once `runs` of its runs are announced done (it has more in store)."""
    subscription = wb.bus.subscribe(accept=lambda e: e.sweep_id == sweep_id)
    try:
        await wb.start_sweep(sweep_id)
        seen = 0
        while seen < runs:
            event = await subscription.get()
            seen += event.type in ("run.completed", "run.failed")
    finally:
        subscription.close()
    await wb.stop_sweep(sweep_id)


async def test_every_view_agrees_on_one_sweep_across_stop_pause_and_resume(
    workbench: Workbench, settings: Settings
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    sweep_id = await workbench.create_sweep(imported.id, SweepOverrides(repeats=10, concurrency=1))
    home = settings.home
    async with running_api(workbench) as api, mcp_client(workbench) as mcp:
        await stop_after_some_runs(workbench, sweep_id, 5)
        stopped = assert_agree(await every_view(workbench, sweep_id, home, api, mcp))
        assert stopped["status"] == "stopped"
        # The planned total, not what finished: a stopped sweep is not 100% done.
        assert stopped["total"] == PLANNED
        assert 5 <= stopped["completed"] < PLANNED
        first_calls = stopped["calls"]["requested"]
        assert first_calls == stopped["completed"]  # one call per run

        # Resume it here, then pause it and let the runs in flight land.
        await workbench.resume_sweep(sweep_id)
        await workbench.pause_sweep(sweep_id)
        runner = workbench.runner(sweep_id)
        assert runner is not None
        await runner.wait_inflight(30)
        # Every write queued before this one is committed once it is: other processes see
        # what this one counts.
        await workbench.db.write([("SELECT 1", ())])
        paused = assert_agree(await every_view(workbench, sweep_id, home, api, mcp))
        assert paused["status"] == "paused" and paused["total"] == PLANNED
        assert paused["calls"]["requested"] == paused["completed"] >= first_calls

        # Resume to the end: calls count both invocations; this one's are apart.
        await workbench.resume_paused_sweep(sweep_id)
        task = workbench.live.tasks.get(sweep_id)
        assert task is not None
        await asyncio.shield(task)
        done = assert_agree(await every_view(workbench, sweep_id, home, api, mcp))
        assert done["status"] == "completed"
        assert done["total"] == done["completed"] == PLANNED
        assert done["calls"]["requested"] == PLANNED
        summary = await workbench.sweep_summary(sweep_id)
        assert summary.calls_this_run is not None
        assert summary.calls_this_run.requested == PLANNED - first_calls
        assert not summary.runs.total_is_estimate
