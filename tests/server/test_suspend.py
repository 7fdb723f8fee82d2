"""`Workbench.suspend_sweeps`, what the daemon and `promptlooper mcp` run when they stop: running
sweeps end paused (read as `interrupted`), losing no finished run, and resume later."""

from __future__ import annotations

import asyncio

from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml


async def test_suspend_waits_only_for_runs_in_flight_and_the_sweep_resumes(
    workbench: Workbench,
) -> None:
    async with simulated_endpoint(SimulatorOptions(latency_ms=20)) as slow:
        text = experiment_yaml(endpoint={"base_url": slow.base_url}, sweep={"max_concurrency": 2})
        await workbench.import_text(text)
        sweep_id = await workbench.create_sweep("support", SweepOverrides(repeats=4))
        with workbench.bus.subscribe() as events:
            await workbench.start_sweep(sweep_id)
            async with asyncio.timeout(20):
                while (await events.get()).type != "run.completed":
                    pass
                # A grace far longer than the test's bound: suspending must not wait for the
                # workers of a paused sweep, only for the runs they have in flight.
                suspended = await workbench.suspend_sweeps(grace=3600)
            published = [event.type for event in events.drain()]
        assert suspended == [sweep_id]
        assert "sweep.paused" in published
        assert not {"sweep.stopped", "sweep.completed"} & set(published)
        sweep = await workbench.get_sweep(sweep_id)
        assert sweep.status == "interrupted" and sweep.resumable
        assert 1 <= sweep.runs_completed < 48 and sweep.runs_failed == 0

        with workbench.bus.subscribe() as events:
            assert (await workbench.resume_sweep(sweep_id)).status == "running"
            async with asyncio.timeout(20):
                while (await events.get()).type != "sweep.completed":
                    pass
        summary = await workbench.sweep_summary(sweep_id)
        assert summary.runs.completed == summary.runs.total == 48


async def test_a_sweep_someone_paused_stays_paused_not_interrupted(workbench: Workbench) -> None:
    async with simulated_endpoint(SimulatorOptions(latency_ms=20)) as slow:
        text = experiment_yaml(endpoint={"base_url": slow.base_url}, sweep={"max_concurrency": 2})
        await workbench.import_text(text)
        chosen = await workbench.create_sweep("support", SweepOverrides(repeats=4))
        left_running = await workbench.create_sweep("support", SweepOverrides(repeats=4))
        await workbench.start_sweep(chosen)
        await workbench.start_sweep(left_running)
        await workbench.pause_sweep(chosen)
        assert sorted(await workbench.suspend_sweeps(grace=5)) == sorted([chosen, left_running])
        paused = await workbench.get_sweep(chosen)
        assert paused.status == "paused" and paused.resumable
        assert (await workbench.get_sweep(left_running)).status == "interrupted"
        # Paused and owned by nobody: this process may take it up again.
        summary = await workbench.run_sweep(chosen)
    assert summary.status == "completed" and summary.runs.completed == 48
