"""`promptlooper sweeps pause|resume|stop` as a user runs them, on a sweep that another process
runs (a `promptlooper run`), or that no process runs: real processes on a real store, SQLite and
PostgreSQL. Every wait is on what the store or the relayed events show, never on the clock."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from promptlooper_tui.domain.events import Event
from promptlooper_tui.engine.events import Subscription
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import RunningSimulator, simulated_endpoint
from promptlooper_tui.store import sweeps as stored_sweeps
from promptlooper_tui.workbench import Workbench

from ..conftest import make_experiment
from ..helpers import cli

BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

#: Bounds every wait, so that a bug fails the test instead of hanging it.
WITHIN = 30
#: Runs of the other process's sweep: more than it can finish while the test acts on it.
RUNS = 2 * 2 * 3 * 20
#: Its calls at once: its workers, each running one run at a time.
CONCURRENCY = 2


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunningSimulator]:
    async with simulated_endpoint(SimulatorOptions(latency_ms=40)) as running:
        yield running


async def sweeps(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`promptlooper sweeps ARGS...` in a process of its own, on the test's store ($PROMPTLOOPER_DB
    is set for PostgreSQL); this test's loop keeps relaying events meanwhile."""
    return await asyncio.to_thread(cli, settings.home, "sweeps", *args)


async def next_event(subscription: Subscription, *types: str) -> Event:
    async with asyncio.timeout(WITHIN):
        while True:
            event = await subscription.get()
            if event.type in types:
                return event


def write_experiment(path: Path, name: str, sim: RunningSimulator, repeats: int) -> Path:
    spec = make_experiment(
        name=name,
        endpoint={"base_url": sim.base_url},
        sweep={"repeats": repeats, "max_concurrency": CONCURRENCY},
    )
    path.write_text(yaml.safe_dump(spec))
    return path


@BOTH_BACKENDS
async def test_pause_resume_and_stop_reach_the_process_running_the_sweep(
    workbench: Workbench, settings: Settings, slow_sim: RunningSimulator, tmp_path: Path
) -> None:
    wb = workbench
    experiment = write_experiment(tmp_path / "elsewhere.yaml", "elsewhere", slow_sim, 20)
    others = wb.bus.subscribe(accept=lambda e: e.origin is not None)
    runs = wb.bus.subscribe(
        accept=lambda e: e.type in ("run.completed", "run.failed") and e.origin is not None
    )
    other = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "promptlooper_tui", "--home", str(settings.home)],
        *["run", str(experiment), "--json"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        sweep_id = (await next_event(runs, "run.completed")).sweep_id
        assert sweep_id is not None

        # Pause: the process running the sweep pauses it and says so; it still owns it.
        paused = await sweeps(settings, "pause", sweep_id)
        assert paused.returncode == 0, paused.stderr
        [line] = paused.stdout.splitlines()
        assert line.startswith(f"Sweep {sweep_id} (elsewhere) paused (runs in flight finish)")
        assert f"sweeps resume {sweep_id}" in line
        said = await next_event(others, "sweep.paused")
        assert said.sweep_id == sweep_id
        # Once paused, each of its workers makes at most the one call of the run it has taken
        # (each run is one call); and the pause came before its event reached this process.
        most_calls = slow_sim.state.requests + CONCURRENCY
        row = await stored_sweeps.sweep_with_experiment_name(wb.db, sweep_id)
        assert row is not None and row["status"] == "paused" and row["owner_pid"] == other.pid
        again = await sweeps(settings, "pause", sweep_id)
        assert again.returncode == 0, again.stderr
        assert again.stdout == f"Sweep {sweep_id} (elsewhere) is already paused\n"
        # The runs in flight finish; no other starts, however long it stays paused.
        landed = 1
        while landed < slow_sim.state.requests:
            await next_event(runs, "run.completed", "run.failed")
            landed += 1
        assert slow_sim.state.requests <= most_calls < RUNS
        assert (await wb.get_sweep(sweep_id)).status == "paused"

        # Resume: the same process carries on, and runs land again.
        resumed = await sweeps(settings, "resume", sweep_id)
        assert resumed.returncode == 0 and resumed.stderr == ""  # no progress of its own
        assert resumed.stdout == (
            f"Sweep {sweep_id} (elsewhere) resumed in the process that runs it\n"
        )
        assert (await next_event(others, "sweep.resumed")).sweep_id == sweep_id
        await next_event(runs, "run.completed")
        running = await sweeps(settings, "resume", sweep_id)
        assert running.returncode == 0, running.stderr
        assert running.stdout == f"Sweep {sweep_id} (elsewhere) is already running\n"

        # Stop: the process stops its sweep and ends, saying so.
        stopped = await sweeps(settings, "stop", sweep_id, "--json")
        assert stopped.returncode == 0, stopped.stderr
        summary = json.loads(stopped.stdout)
        assert summary["sweep_id"] == sweep_id and summary["status"] == "stopped"
        out, err = await asyncio.wait_for(other.communicate(), WITHIN)
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
    assert other.returncode == 1, err
    ended = json.loads(out)
    assert ended["status"] == "stopped" and 0 < ended["runs"]["completed"] < RUNS
    assert (await wb.get_sweep(sweep_id)).status == "stopped"

    # A stopped sweep has nothing to pause or stop: refused as bad input, not a traceback.
    for action in ("stop", "pause"):
        refused = await sweeps(settings, action, sweep_id)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == (
            f"error: sweep {sweep_id} (elsewhere) is stopped, not running: nothing to {action}\n"
        )
    others.close()
    runs.close()


@BOTH_BACKENDS
async def test_resume_runs_a_paused_sweep_that_no_process_runs_here_in_the_foreground(
    workbench: Workbench, settings: Settings, sim: RunningSimulator, tmp_path: Path
) -> None:
    wb = workbench
    experiment = write_experiment(tmp_path / "left.yaml", "left", sim, 1)
    imported = await wb.import_file(experiment)
    sweep_id = await wb.create_sweep(imported.id)
    await wb.start_sweep(sweep_id)
    runner = wb.runner(sweep_id)
    assert runner is not None
    await runner.pause()  # before its task has run a step: it has runs left, whatever the pace
    # Paused by a person, then its process left (a daemon shutting down): paused, run by none.
    # Its runs in flight finish first (the grace is only a bound: it returns once they have).
    assert await wb.suspend_sweeps(grace=WITHIN) == [sweep_id]
    row = await stored_sweeps.sweep_with_experiment_name(wb.db, sweep_id)
    assert row is not None and row["status"] == "paused" and row["owner_pid"] is None

    resumed = await sweeps(settings, "resume", sweep_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"Sweep {sweep_id} (left): no process is running it; running it here (Ctrl-C stops it)"
        in resumed.stderr
    )
    assert "12/12 runs" in resumed.stderr  # the progress `run` and `resume` draw
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "completed" and summary["runs"]["completed"] == 12
    assert sim.state.requests == 12  # each run called once, here or in the test's process
    assert (await wb.get_sweep(sweep_id)).status == "completed"

    # A completed sweep: nothing to pause, resume or stop.
    for action, reason in (
        ("pause", "is completed, not running: nothing to pause"),
        ("stop", "is completed, not running: nothing to stop"),
        ("resume", "is completed: nothing to resume"),
    ):
        refused = await sweeps(settings, action, sweep_id)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == f"error: sweep {sweep_id} (left) {reason}\n"


async def test_an_unknown_sweep_is_refused_with_exit_2(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    for action in ("pause", "resume", "stop"):
        refused = await sweeps(settings, action, "sw_nothing")
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == "error: no sweep (or experiment) with id or name 'sw_nothing'\n"
