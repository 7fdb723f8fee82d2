"""Sweeps for the monitor, runs, inspector, compare and export screens' tests: run for real
against the simulated endpoint, then, where a test needs it, made the same every time or grown
to thousands of runs with one SQL statement."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.screens.home import HomeScreen
from promptlooper_tui.workbench import Workbench, open_workbench

from ..conftest import experiment_yaml
from .conftest import wait_for_screen


@dataclass(frozen=True)
class SweptExperiment:
    experiment_id: str
    sweep_id: str
    #: Run ids newest first, as the runs list and the monitor show them.
    run_ids: list[str]


async def sweep_experiment(wb: Workbench, **changes: Any) -> SweptExperiment:
    """Import BASE_EXPERIMENT (with `changes`) and run one sweep of it to the end."""
    imported = await wb.import_text(experiment_yaml(**changes))
    sweep_id = await wb.create_sweep(imported.id)
    await wb.run_sweep(sweep_id)
    page = await wb.list_runs(sweep=sweep_id, limit=1000)
    return SweptExperiment(imported.id, sweep_id, [run.id for run in page.items])


async def make_deterministic(wb: Workbench, sweep_id: str) -> None:
    """Replace what the clock decides (latencies, finishing times) with fixed values, so a
    snapshot of the sweep is the same on every machine. Runs keep their order."""
    await wb.db.write(
        [
            (
                "UPDATE runs SET latency_ms = 100 + 10 * item_index, "
                "finished_at = printf('2026-01-01T00:00:%02d.000+00:00', rowid) "
                "WHERE sweep_id = ?",
                (sweep_id,),
            ),
            (
                "UPDATE stage_results SET latency_ms = 100 WHERE run_id IN "
                "(SELECT id FROM runs WHERE sweep_id = ?)",
                (sweep_id,),
            ),
            (
                "UPDATE sweeps SET created_at = '2026-01-01T00:00:00.000+00:00', "
                "finished_at = '2026-01-01T00:01:00.000+00:00' WHERE id = ?",
                (sweep_id,),
            ),
        ]
    )


async def add_bulk_runs(wb: Workbench, sweep_id: str, count: int) -> None:
    """Add `count` runs to a finished sweep in one statement (repeats of its first run's
    config and item): every 10th failed, scores cycling through 0.00-0.99."""
    await wb.db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, status, "
        "score, error, tokens_in, tokens_out, latency_ms, calls, finished_at) "
        "SELECT printf('run_bulk_%06d', i), r.sweep_id, r.config_id, r.experiment_id, "
        "r.item_index, 1000 + i, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END, "
        "CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 100) / 100.0 END, "
        "CASE WHEN i % 10 = 0 THEN 'simulated failure' END, 20, 10, 5, 1, "
        "printf('2025-01-01T00:00:00.%06d', i) "
        "FROM n, (SELECT * FROM runs WHERE sweep_id = ? ORDER BY id LIMIT 1) r",
        (count, sweep_id),
    )


def build_home(settings: Settings, *, bulk_runs: int = 0, **changes: Any) -> SweptExperiment:
    """A home holding one finished, deterministic sweep (plus `bulk_runs` added runs), for
    snapshot tests (which run the app in a loop of their own)."""

    async def build() -> SweptExperiment:
        async with open_workbench(settings) as wb:
            swept = await sweep_experiment(wb, **changes)
            await make_deterministic(wb, swept.sweep_id)
            if bulk_runs:
                await add_bulk_runs(wb, swept.sweep_id, bulk_runs)
            page = await wb.list_runs(sweep=swept.sweep_id, limit=20)
            return SweptExperiment(
                swept.experiment_id, swept.sweep_id, [run.id for run in page.items]
            )

    return asyncio.run(build())


async def open_over_home(pilot: Pilot[None], screen: Screen[None]) -> None:
    """Open `screen` once the app is up, as the experiments list would."""
    await wait_for_screen(pilot, HomeScreen)
    await pilot.app.push_screen(screen)
    await pilot.pause()
