"""The live sweep monitor: control keys, counters, coalescing of fast events, and sweeps that
run elsewhere (polled from the database)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.tui.app import PromptLooperApp
from promptlooper_tui.tui.screens import monitor as monitor_module
from promptlooper_tui.tui.screens.confirm import ConfirmScreen
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable, config_key
from promptlooper_tui.tui.widgets.run_table import LatestRuns
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml
from .conftest import SIZE, AppMaker, screen_text, wait_for_screen, wait_until
from .sweep_data import open_over_home, sweep_experiment


async def start_slow_sweep(wb: Workbench, latency_ms: float, concurrency: int) -> str:
    """A running sweep of the 12-run base experiment, each call taking `latency_ms`."""
    await wb.start_simulated_endpoint(SimulatorOptions(latency_ms=latency_ms))
    imported = await wb.import_text(experiment_yaml(sweep={"max_concurrency": concurrency}))
    sweep_id = await wb.create_sweep(imported.id)
    await wb.start_sweep(sweep_id)
    return sweep_id


async def open_monitor(pilot: Pilot[None], sweep_id: str) -> MonitorScreen:
    screen = MonitorScreen(sweep_id)
    await open_over_home(pilot, screen)
    await wait_until(pilot, lambda: screen.status is not None, "the monitor's first read")
    return screen


async def sweep_status(app: PromptLooperApp, sweep_id: str) -> str:
    return (await app.workbench.get_sweep(sweep_id)).status


async def test_pause_resume_and_stop_with_confirmation(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        sweep_id = await start_slow_sweep(app.workbench, latency_ms=150, concurrency=1)
        monitor = await open_monitor(pilot, sweep_id)

        await pilot.press("p")
        await wait_until(pilot, lambda: monitor.status == "paused", "paused on screen")
        assert await sweep_status(app, sweep_id) == "paused"

        await pilot.press("r")
        await wait_until(pilot, lambda: monitor.status == "running", "running again")
        assert await sweep_status(app, sweep_id) == "running"

        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: monitor.status == "stopped", "stopped on screen")
        assert await sweep_status(app, sweep_id) == "stopped"
        assert monitor.counts.finished < 12
        assert "stopped" in screen_text(app)
        # A stopped sweep shows how far it got of its plan, never 100% done.
        progress = monitor.query_one("#progress-text", Static)
        await wait_until(pilot, lambda: "/12 runs · stopped" in str(progress.render()), "bar")
        shown = int(str(progress.render()).split("/12 runs")[0].split()[-1])
        assert shown < 12

        # r continues a stopped sweep here, and the monitor follows it live again.
        await pilot.press("r")
        await wait_until(pilot, lambda: monitor.counts.running is not None, "live counters")
        assert await sweep_status(app, sweep_id) == "running"


async def test_counters_reach_the_totals_and_enter_opens_a_run(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        sweep_id = await start_slow_sweep(app.workbench, latency_ms=20, concurrency=2)
        monitor = await open_monitor(pilot, sweep_id)
        await wait_until(pilot, lambda: monitor.status == "completed", "the sweep's end")
        await wait_until(pilot, lambda: monitor.counts.finished == 12, "the final counts")

        summary = await app.workbench.sweep_summary(sweep_id)
        counts = monitor.counts
        assert (counts.done, counts.failed, counts.expected) == (12, 0, 12)
        assert counts.tokens == summary.tokens.input + summary.tokens.output
        progress = str(monitor.query_one("#progress-text", Static).render())
        assert "12/12 runs · done" in progress
        latest = monitor.query_one(LatestRuns)
        await wait_until(pilot, lambda: latest.row_count == 12, "the latest runs")
        assert len(monitor.query_one(LeaderboardTable).entries) == 4

        latest.focus()
        await pilot.press("enter")
        inspector = await wait_for_screen(pilot, RunInspectorScreen)
        assert inspector.run_id == latest.run_ids[0]


async def test_thousands_of_events_are_coalesced_and_keys_still_work(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        swept = await sweep_experiment(wb)
        monitor = await open_monitor(pilot, swept.sweep_id)
        board = monitor.query_one(LeaderboardTable)
        await wait_until(pilot, lambda: len(board.entries) == 4, "the leaderboard")
        frames_before, events = monitor.frames, 5000

        async def flood() -> None:
            for batch in range(events // 250):
                for n in range(250):
                    wb.bus.publish(
                        "run.completed",
                        swept.experiment_id,
                        sweep_id=swept.sweep_id,
                        run_id=f"run_synthetic_{batch}_{n}",
                        data={"config": {"model": "small-model"}, "score": 0.5, "tokens": 7},
                    )
                await asyncio.sleep(0.002)

        flooding = asyncio.create_task(flood())
        board.focus()
        await pilot.press("down", "space")
        await flooding
        await wait_until(pilot, lambda: monitor.feed.events >= events, "every event folded")

        assert board.marked == [config_key(board.entries[1])]
        assert "●2" in screen_text(app)
        drawn = monitor.frames - frames_before
        assert 1 <= drawn <= events / 100
        assert monitor.query_one(LatestRuns).row_count == monitor_module.LATEST_ROWS


@pytest.fixture
def other_process() -> Iterator[int]:
    """The pid of a live process that is not this one (the "owner" of a sweep)."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_a_sweep_running_in_another_process_is_polled(
    make_test_app: AppMaker, other_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor_module, "POLL_EVERY", 0.2)
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        swept = await sweep_experiment(wb)
        # As another process would leave it mid-sweep: running, owned by a live pid.
        await wb.db.execute(
            "UPDATE sweeps SET status = 'running', finished_at = NULL, owner_pid = ? WHERE id = ?",
            (other_process, swept.sweep_id),
        )
        monitor = await open_monitor(pilot, swept.sweep_id)
        assert monitor.status == "running"
        assert monitor.counts.running is None  # only the other process knows

        await wb.db.execute(
            "UPDATE sweeps SET status = 'completed' WHERE id = ?", (swept.sweep_id,)
        )
        await wait_until(pilot, lambda: monitor.status == "completed", "the polled end")
        assert monitor.counts.finished == 12
