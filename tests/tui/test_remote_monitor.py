"""The monitor of a sweep that `promptlooper run` runs in another process: its runs land on the
screen live (relayed through the store), and p and s pause and stop it there."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml

from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.tui.screens.confirm import ConfirmScreen

from ..conftest import make_experiment
from .conftest import SIZE, AppMaker, wait_for_screen, wait_until
from .test_monitor import open_monitor


async def test_a_sweep_of_another_process_is_live_and_controlled_from_the_monitor(
    make_test_app: AppMaker, settings: Settings, tmp_path: Path
) -> None:
    experiment = tmp_path / "elsewhere.yaml"
    async with simulated_endpoint(SimulatorOptions(latency_ms=40)) as sim:
        spec = make_experiment(
            name="elsewhere",
            endpoint={"base_url": sim.base_url},
            sweep={"repeats": 20, "max_concurrency": 2},
        )
        experiment.write_text(yaml.safe_dump(spec))
        app = make_test_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
            wb = app.workbench
            with wb.bus.subscribe(accept=lambda e: e.type == "run.completed") as landed:
                other = await asyncio.create_subprocess_exec(
                    *[sys.executable, "-m", "promptlooper_tui", "--home", str(settings.home)],
                    *["run", str(experiment), "--json"],
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
                try:
                    async with asyncio.timeout(20):
                        sweep_id = (await landed.get()).sweep_id
                    assert sweep_id is not None
                    monitor = await open_monitor(pilot, sweep_id)
                    assert monitor.status == "running" and wb.runner(sweep_id) is None
                    shown = len(monitor.feed.latest)
                    await wait_until(
                        pilot, lambda: len(monitor.feed.latest) > shown, "relayed runs"
                    )
                    counted = monitor.counts.finished
                    await wait_until(
                        pilot, lambda: monitor.counts.finished > counted, "totals moving"
                    )

                    await pilot.press("p")
                    await wait_until(pilot, lambda: monitor.status == "paused", "paused")
                    assert (await wb.get_sweep(sweep_id)).status == "paused"

                    await pilot.press("s")
                    await wait_for_screen(pilot, ConfirmScreen)
                    await pilot.press("y")
                    await wait_until(pilot, lambda: monitor.status == "stopped", "stopped")
                    await asyncio.wait_for(other.wait(), 20)
                finally:
                    if other.returncode is None:
                        other.kill()
                        await other.wait()
            assert (await wb.get_sweep(sweep_id)).status == "stopped"
