"""Snapshots at 80x24, the smallest terminal the README promises: the experiments, the editor,
the monitor of a sweep mid-way and of a failed one, and the inspector. Update with
`--snapshot-update`, after looking at the report."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Markdown

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.factory import make_app
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable
from promptlooper_tui.tui.widgets.run_table import LatestRuns
from promptlooper_tui.workbench import open_workbench

from .conftest import wait_until
from .sweep_data import SweptExperiment, open_over_home
from .test_part_b_snapshots import swept  # noqa: F401 - the fixture
from .test_snapshots import editor_planned, home_loaded, home_with_results, when  # noqa: F401

SnapCompare = Callable[..., bool]
SMALL = (80, 24)
ABORTED = "aborted after 6 failed runs in a row; last error: HTTP 500 from the endpoint"


def change_sweep(settings: Settings, sweep_id: str, *statements: tuple[str, tuple[object, ...]]):
    async def change() -> None:
        async with open_workbench(settings) as wb:
            await wb.db.write(list(statements))

    asyncio.run(change())


async def monitor_loaded(pilot: Pilot[None], sweep_id: str, entries: int, rows: int) -> None:
    monitor = MonitorScreen(sweep_id)
    await open_over_home(pilot, monitor)
    board, latest = monitor.query_one(LeaderboardTable), monitor.query_one(LatestRuns)
    await wait_until(pilot, lambda: len(board.entries) == entries, "the leaderboard")
    await wait_until(pilot, lambda: latest.row_count == rows, "the latest runs")
    await wait_until(pilot, lambda: monitor.frames > 0, "a frame")


def test_home_80x24(home_with_results: Settings, snap_compare: SnapCompare) -> None:  # noqa: F811
    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SMALL, run_before=when(home_loaded))


def test_editor_80x24(home_with_results: Settings, snap_compare: SnapCompare) -> None:  # noqa: F811
    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SMALL, run_before=when(home_loaded, editor_planned))


def test_monitor_mid_sweep_80x24(
    settings: Settings,
    swept: SweptExperiment,  # noqa: F811
    snap_compare: SnapCompare,
) -> None:
    # As a sweep another process runs shows it: half its planned runs done, still running.
    change_sweep(
        settings,
        swept.sweep_id,
        (
            "UPDATE sweeps SET status = 'running', finished_at = NULL, owner_pid = ?, "
            "planned_runs = 24 WHERE id = ?",
            (os.getppid(), swept.sweep_id),
        ),
    )

    async def loaded(pilot: Pilot[None]) -> None:
        await monitor_loaded(pilot, swept.sweep_id, entries=4, rows=12)

    assert snap_compare(make_app(settings), terminal_size=SMALL, run_before=loaded)


def test_monitor_failed_80x24(
    settings: Settings,
    swept: SweptExperiment,  # noqa: F811
    snap_compare: SnapCompare,
) -> None:
    change_sweep(
        settings,
        swept.sweep_id,
        ("UPDATE sweeps SET status = 'failed', error = ? WHERE id = ?", (ABORTED, swept.sweep_id)),
        (
            "UPDATE runs SET status = 'failed', score = NULL, error = ? "
            "WHERE sweep_id = ? AND item_index > 0",
            ("HTTP 500 from the endpoint (3 attempts)", swept.sweep_id),
        ),
    )

    async def loaded(pilot: Pilot[None]) -> None:
        await monitor_loaded(pilot, swept.sweep_id, entries=4, rows=12)
        monitor = pilot.app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_until(pilot, lambda: monitor.reason is not None, "the reason")

    assert snap_compare(make_app(settings), terminal_size=SMALL, run_before=loaded)


def test_inspector_80x24(
    settings: Settings,
    swept: SweptExperiment,  # noqa: F811
    snap_compare: SnapCompare,
) -> None:
    async def run_loaded(pilot: Pilot[None]) -> None:
        inspector = RunInspectorScreen(swept.run_ids[0], swept.run_ids)
        await open_over_home(pilot, inspector)
        await wait_until(pilot, lambda: inspector.query(Markdown), "the markdown output")

    assert snap_compare(make_app(settings), terminal_size=SMALL, run_before=run_loaded)
