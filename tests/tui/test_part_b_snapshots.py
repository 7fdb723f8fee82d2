"""Snapshots of the monitor, inspector, compare and export screens at 100x30, over a finished
sweep made the same every time (numbered ids, fixed latencies and times). Update with
`--snapshot-update`, after looking at the report."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown, Static

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.factory import make_app
from promptlooper_tui.tui.screens.compare import CompareScreen
from promptlooper_tui.tui.screens.export import ExportScreen
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable
from promptlooper_tui.tui.widgets.run_table import LatestRuns
from promptlooper_tui.workbench import open_workbench

from .conftest import SIZE, wait_for_screen, wait_until
from .sweep_data import SweptExperiment, build_home, open_over_home

SnapCompare = Callable[..., bool]

MARKDOWN_REPLY = (
    "## Invite a teammate\n\n1. Go to **Team**\n2. Press **Invite**\n\n"
    "They get an email with a link."
)


@pytest.fixture
def swept(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> SweptExperiment:
    """One finished sweep of the base experiment, its newest run answering in markdown."""
    numbers = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(numbers) << 88))
    monkeypatch.setattr("promptlooper_tui.export.best.utc_now", lambda: "2026-01-01T00:02:00+00:00")
    swept = build_home(settings)

    async def answer_in_markdown() -> None:
        async with open_workbench(settings) as wb:
            await wb.db.execute(
                "UPDATE stage_results SET output = ? WHERE run_id = ?",
                (MARKDOWN_REPLY, swept.run_ids[0]),
            )

    asyncio.run(answer_in_markdown())
    return swept


def test_monitor_of_a_finished_sweep(
    settings: Settings, swept: SweptExperiment, snap_compare: SnapCompare
) -> None:
    async def monitor_loaded(pilot: Pilot[None]) -> None:
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        board, latest = monitor.query_one(LeaderboardTable), monitor.query_one(LatestRuns)
        await wait_until(pilot, lambda: len(board.entries) == 4, "the leaderboard")
        await wait_until(pilot, lambda: latest.row_count == 12, "the latest runs")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=monitor_loaded)


def test_inspector_with_a_markdown_output(
    settings: Settings, swept: SweptExperiment, snap_compare: SnapCompare
) -> None:
    async def run_loaded(pilot: Pilot[None]) -> None:
        inspector = RunInspectorScreen(swept.run_ids[0], swept.run_ids)
        await open_over_home(pilot, inspector)
        await wait_until(pilot, lambda: inspector.query(Markdown), "the markdown output")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=run_loaded)


def test_compare_two_runs(
    settings: Settings, swept: SweptExperiment, snap_compare: SnapCompare
) -> None:
    first, second = swept.run_ids[:2]

    async def compared(pilot: Pilot[None]) -> None:
        inspector = RunInspectorScreen(first, [first, second])
        await open_over_home(pilot, inspector)
        await wait_until(pilot, lambda: inspector.run is not None, "the first run")
        await pilot.press("c", "n")
        await wait_until(
            pilot, lambda: inspector.run is not None and inspector.run.id == second, "the second"
        )
        await pilot.press("c")
        await wait_for_screen(pilot, CompareScreen)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=compared)


def test_export_yaml_preview(
    settings: Settings, swept: SweptExperiment, snap_compare: SnapCompare
) -> None:
    async def previewed(pilot: Pilot[None]) -> None:
        export = ExportScreen(swept.experiment_id)
        await open_over_home(pilot, export)
        preview = export.query_one("#preview", Static)
        await wait_until(pilot, lambda: "experiment: support" in str(preview.render()), "yaml")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=previewed)
