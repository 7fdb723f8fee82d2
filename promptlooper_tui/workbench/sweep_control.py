"""Sweeps in motion: planning, creating, starting, pausing, resuming, stopping and suspending
them. The runners live in `Services.live`; everything here goes through them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import uuid
from typing import TYPE_CHECKING

from ..domain.errors import Busy, Conflict
from ..domain.experiment import ExperimentSpec, SweepSettings
from ..domain.records import SweepPlan, SweepRecord, SweepSummary
from ..engine.limits import TooExpensive, check_sweep_size
from ..engine.strategies import strategy_for, sweep_settings
from ..engine.sweep_job import SweepJob
from ..store import runs as stored_runs
from ..store import sweeps as stored_sweeps
from ..store.database import Row
from ..store.timestamps import now_iso
from .experiments import Experiments
from .lookups import ACTIVE_STATES, effective_status, live_status, load_spec, resolve_sweep
from .overrides import SweepOverrides
from .remote_control import Action, RemoteControl
from .services import Services
from .sweeps import Sweeps

if TYPE_CHECKING:
    from ..engine.sweep import SweepRunner

log = logging.getLogger(__name__)
#: The variable that sets `Limits.running_sweeps`.
_LIMIT_VARIABLE = "PROMPTLOOPER_LIMIT_RUNNING_SWEEPS"


class SweepControl:
    def __init__(self, services: Services, experiments: Experiments, sweeps: Sweeps) -> None:
        self._services = services
        self._experiments = experiments
        self._sweeps = sweeps
        self._remote = RemoteControl(services)

    async def plan(self, ref: str, overrides: SweepOverrides | None = None) -> SweepPlan:
        experiment = await self._experiments.get_experiment(ref)
        spec = await load_spec(self._services.db, experiment.id, experiment.version)
        return await self.plan_spec(spec, overrides)

    async def plan_spec(
        self, spec: ExperimentSpec, overrides: SweepOverrides | None = None
    ) -> SweepPlan:
        from ..engine.planning import plan_sweep  # here: reads skip the templates

        services = self._services
        overrides = overrides or SweepOverrides()
        settings = sweep_settings(spec, overrides.apply(spec.sweep))
        check_sweep_size(spec, settings, services.limits)
        endpoint = await services.endpoints.resolve(spec.endpoint)
        read_cache = not overrides.no_cache
        planning = plan_sweep(spec, settings, endpoint, services.cache, read_cache=read_cache)
        if not services.policy.remote:
            return await planning
        seconds = services.limits.check_seconds
        try:
            async with asyncio.timeout(seconds):
                return await planning
        except TimeoutError:
            raise TooExpensive(
                f"planning took longer than {seconds:g} s (PROMPTLOOPER_LIMIT_CHECK_SECONDS)"
            ) from None

    async def create_sweep(self, ref: str, overrides: SweepOverrides | None = None) -> str:
        services = self._services
        self._check_room()
        overrides = overrides or SweepOverrides()
        experiment = await self._experiments.get_experiment(ref)
        spec = await load_spec(services.db, experiment.id, experiment.version)
        settings = sweep_settings(spec, overrides.apply(spec.sweep))
        check_sweep_size(spec, settings, services.limits)
        if settings.max_runs is not None or settings.strategy == "evolve":
            # A race whose first round passes its max_runs, or an experiment evolve cannot
            # rewrite (no prompt parameter, too few items), is refused before anything is
            # stored (building the strategy is what finds it out).
            strategy_for(spec, settings)
        sweep_id = "sw_" + uuid.uuid4().hex[:10]
        stored = settings.model_dump() | {"no_cache": overrides.no_cache}
        insert = stored_sweeps.insert_statement(
            sweep_id,
            experiment.id,
            experiment.version,
            json.dumps(stored),
            os.getpid(),
            now_iso(),
        )
        await services.db.write([insert])
        # Coordinated by this process from the start: a worker must not take it over before
        # this process starts it.
        await services.leases.coordinate(sweep_id)
        return sweep_id

    async def start_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> asyncio.Task[str]:

        services, live = self._services, self._services.live
        sweep_id = await resolve_sweep(services.db, sweep_ref)
        if sweep_id in live.runners:
            raise Conflict(f"sweep {sweep_id} is already running")
        self._check_room()
        job = await self._job(sweep_id, retry_failed=retry_failed, max_tokens=max_tokens)
        if not await services.leases.coordinate(sweep_id):
            raise Conflict(f"sweep {sweep_id} is being run by another process")
        return self._launch(job)

    def _check_room(self) -> None:
        """Busy when a remote caller (the daemon's, MCP's) would start one sweep more than
        `Limits.running_sweeps`; a local user's process runs what it is asked to."""
        services = self._services
        if not services.policy.remote:
            return
        most = services.limits.running_sweeps
        if len(services.live.runners) >= most:
            raise Busy(
                f"this process already runs {most} sweeps, the most it runs at once "
                f"({_LIMIT_VARIABLE}); retry when one ends"
            )

    async def take_over(self, sweep_id: str) -> asyncio.Task[str] | None:
        """Coordinate a sweep stored as running whose coordinator is gone (its lease ran out),
        as a worker does; None when another process took it first."""
        services = self._services
        if sweep_id in services.live.runners or not await services.leases.coordinate(sweep_id):
            return None
        job = await self._job(sweep_id, retry_failed=False, max_tokens=None, checked=False)
        log.info("taking over sweep %s of %r", sweep_id, job.experiment_name)
        return self._launch(job)

    async def helper(self, sweep_id: str, concurrency: int | None) -> SweepRunner:
        """A runner that runs units of a sweep another process coordinates (`help_out`), with
        at most `concurrency` calls in flight."""
        job = await self._job(sweep_id, retry_failed=False, max_tokens=None, checked=False)
        if concurrency is not None and concurrency < job.settings.max_concurrency:
            settings = job.settings.model_copy(update={"max_concurrency": concurrency})
            job = dataclasses.replace(job, settings=settings)
        return self._runner(job)

    def _runner(self, job: SweepJob) -> SweepRunner:
        from ..engine.sweep import SweepRunner  # here: reads skip the runner

        services = self._services
        return SweepRunner(
            job,
            db=services.db,
            cache=services.cache,
            pool=services.endpoints,
            bus=services.bus,
            leases=services.leases,
        )

    def _launch(self, job: SweepJob) -> asyncio.Task[str]:
        live = self._services.live
        sweep_id = job.sweep_id
        runner = self._runner(job)
        live.runners[sweep_id] = runner
        task = asyncio.create_task(runner.run(), name=f"sweep-{sweep_id}")
        live.tasks[sweep_id] = task

        def forget(_: asyncio.Task[str]) -> None:
            live.counters[sweep_id] = runner.counters
            live.runners.pop(sweep_id, None)
            live.tasks.pop(sweep_id, None)

        task.add_done_callback(forget)
        return task

    async def run_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepSummary:
        task = await self.start_sweep(sweep_ref, retry_failed=retry_failed, max_tokens=max_tokens)
        await asyncio.shield(task)
        return await self._sweeps.sweep_summary(sweep_ref)

    async def pause_sweep(self, sweep_ref: str) -> SweepRecord:
        sweep_id = await resolve_sweep(self._services.db, sweep_ref)
        runner = self._services.live.runners.get(sweep_id)
        if runner is None:
            await self._ask_elsewhere(sweep_id, "pause")
        else:
            await runner.pause()
        return await self._sweeps.get_sweep(sweep_id)

    async def resume_paused_sweep(self, sweep_ref: str) -> SweepRecord:
        sweep_id = await resolve_sweep(self._services.db, sweep_ref)
        runner = self._services.live.runners.get(sweep_id)
        if runner is None:
            await self._ask_elsewhere(sweep_id, "resume")
        else:
            await runner.resume()
        return await self._sweeps.get_sweep(sweep_id)

    async def stop_sweep(self, sweep_ref: str) -> SweepRecord:
        sweep_id = await resolve_sweep(self._services.db, sweep_ref)
        runner = self._services.live.runners.get(sweep_id)
        if runner is None:
            await self._ask_elsewhere(sweep_id, "stop")
        else:
            runner.stop()
            task = self._services.live.tasks.get(sweep_id)
            if task is not None:
                await asyncio.shield(task)
        return await self._sweeps.get_sweep(sweep_id)

    async def resume_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepRecord:
        """See `Workbench.resume_sweep`."""
        db = self._services.db
        sweep_id = await resolve_sweep(db, sweep_ref)
        runner = self._services.live.runners.get(sweep_id)
        if runner is None and await self._runs_elsewhere(sweep_id):
            if retry_failed or max_tokens is not None:
                raise Conflict(
                    f"sweep {sweep_id} is live in another process; stop it before resuming it "
                    "with retry_failed or a new max_tokens"
                )
            await self._ask_elsewhere(sweep_id, "resume")
        elif runner is None:
            await self.start_sweep(sweep_id, retry_failed=retry_failed, max_tokens=max_tokens)
            # The runner records `running` only after resolving its endpoint; until then the
            # stored status would still say how the sweep last ended. Queued before any write
            # of the runner (its task has not started yet), so it cannot overwrite one.
            await db.write([stored_sweeps.resumed_statement(sweep_id, os.getpid())])
        elif retry_failed or max_tokens is not None:
            raise Conflict(
                f"sweep {sweep_id} is live in this process; stop it before resuming it with "
                "retry_failed or a new max_tokens"
            )
        else:
            await runner.resume()
        return await self._sweeps.get_sweep(sweep_id)

    async def suspend_sweeps(self, grace: float = 10.0) -> list[str]:
        """See `Workbench.suspend_sweeps`."""
        live = self._services.live
        runners = list(live.runners.values())
        paused_by_user = [r.job.sweep_id for r in runners if r.status == "paused"]
        for runner in runners:
            await runner.pause()
        await asyncio.gather(*(runner.wait_inflight(grace) for runner in runners))
        tasks = [live.tasks[r.job.sweep_id] for r in runners if r.job.sweep_id in live.tasks]
        # Each ends `paused` with this (ending) process as owner, which reads as `interrupted`:
        # a restart knows that nobody chose to stop it.
        for runner in runners:
            runner.suspend()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A sweep someone had paused stays `paused` (owned by nobody): a restart does not
        # take it for interrupted and resume it behind their back.
        await self._services.db.write(
            [stored_sweeps.release_paused_statement(sweep_id) for sweep_id in paused_by_user]
        )
        return [runner.job.sweep_id for runner in runners]

    async def stop_all(self) -> None:
        """Stop every sweep running here and wait for them; each is noted in
        `stopped_on_close` so that the app can say how to resume it."""
        live = self._services.live
        for runner in live.runners.values():
            self._services.stopped_on_close[runner.job.sweep_id] = runner.job.experiment_name
            runner.stop()
        if live.tasks:
            await asyncio.gather(*live.tasks.values(), return_exceptions=True)

    async def _runs_elsewhere(self, sweep_id: str) -> bool:
        """Whether another live process runs `sweep_id` (running or paused there)."""
        row = await stored_sweeps.sweep_with_experiment_name(self._services.db, sweep_id)
        assert row is not None
        state = effective_status(row["status"], row["owner_pid"], None, row)
        # Paused and owned by nobody: a person paused it and its process has left since.
        return state in ACTIVE_STATES and row["owner_pid"] is not None

    async def _ask_elsewhere(self, sweep_id: str, action: Action) -> None:
        """Have the process running `sweep_id` pause, resume or stop it (nothing to do when it
        is so already); Conflict when no process runs it."""
        sweep = await self._sweeps.get_sweep(sweep_id)
        if not await self._runs_elsewhere(sweep_id):
            if sweep.resumable:
                state = f"is {sweep.status}; resume it first (promptlooper resume {sweep_id})"
            else:
                state = f"has ended ({sweep.status})"
            raise Conflict(f"sweep {sweep_id} of {sweep.experiment!r} {state}")
        already = {"pause": "paused", "resume": "running"}.get(action)
        if sweep.status != already:
            await self._remote.ask(sweep_id, sweep.experiment_id, action)

    async def _check_startable(self, sweep_id: str, row: Row, retry_failed: bool) -> None:
        db = self._services.db
        live_here = live_status(self._services.live.runners, sweep_id)
        state = effective_status(row["status"], row["owner_pid"], live_here, row)
        if state == "completed" and (
            not retry_failed or not await stored_runs.failed_count(db, sweep_id)
        ):
            what = "failed runs to retry" if retry_failed else "runs left to do"
            raise Conflict(f"sweep {sweep_id} is completed; it has no {what}")
        if state in ACTIVE_STATES and row["owner_pid"] not in (None, os.getpid()):
            raise Conflict(
                f"sweep {sweep_id} is {state} in another process (pid {row['owner_pid']})"
            )

    async def _job(
        self, sweep_id: str, *, retry_failed: bool, max_tokens: int | None, checked: bool = True
    ) -> SweepJob:
        """What a runner needs to run the sweep. `checked`: refuse one that has ended or that
        a live process of this host runs (a worker holding its lease has checked already)."""
        db = self._services.db
        row = await stored_sweeps.sweep_with_experiment_name(db, sweep_id)
        assert row is not None
        if checked:
            await self._check_startable(sweep_id, row, retry_failed)
        stored = json.loads(row["settings"])
        no_cache = bool(stored.pop("no_cache", False))
        if max_tokens is not None:
            stored["max_tokens"] = max_tokens
        return SweepJob(
            sweep_id=sweep_id,
            experiment_id=row["experiment_id"],
            experiment_name=row["name"],
            experiment_version=row["experiment_version"],
            spec=await load_spec(db, row["experiment_id"], row["experiment_version"]),
            settings=SweepSettings.model_validate(stored),
            read_cache=True,
            fresh_since=row["created_at"] if no_cache else "",
            retry_failed=retry_failed,
        )
