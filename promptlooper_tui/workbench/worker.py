"""`promptlooper worker`: a process that joins the pool working on the store's sweeps.

It claims work units of any running sweep, runs them, and writes their results; it takes over
the coordination of a running sweep whose coordinator is gone (its lease ran out, or its process
on this host died), so a sweep outlives the process that started it. It reports itself in the
`workers` table (`promptlooper workers list`) and leaves cleanly when asked: no new work, the
runs in flight finish, its sweeps are handed over, and its row goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.errors import PromptLooperError
from ..store import work
from ..store import workers as stored_workers
from ..store.timestamps import now_iso
from .services import Services
from .sweep_control import SweepControl

if TYPE_CHECKING:
    from ..engine.sweep import SweepRunner

log = logging.getLogger(__name__)

#: How often a worker reports that it is alive (workers list shows it gone after 30 s).
HEARTBEAT_S = 5.0
#: How often a worker looks for work when nothing wakes it (PostgreSQL wakes it at once).
POLL_S = 0.5
#: How long a leaving worker lets the runs in flight finish before it cancels them.
LEAVE_GRACE_S = 30.0


@dataclass
class WorkerReport:
    runs: int = 0
    sweeps_helped: int = 0
    sweeps_taken_over: int = 0


class TeamWorker:
    def __init__(
        self,
        services: Services,
        control: SweepControl,
        name: str,
        concurrency: int | None,
        on_event: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._services = services
        self._control = control
        self.name = name
        self._concurrency = concurrency
        self._say = on_event
        #: Sweeps coordinated elsewhere that this worker runs units of, with their tasks.
        self._helpers: dict[str, tuple[SweepRunner, asyncio.Task[int]]] = {}
        self._helping: str | None = None
        self.report = WorkerReport()
        self._wake = asyncio.Event()
        self._leaving = False
        #: Set once the worker is in the workers table and listening: coordinators count on it.
        self.ready = asyncio.Event()

    def leave(self) -> None:
        """Ask the worker to leave cleanly (SIGTERM, Ctrl-C)."""
        self._leaving = True
        self._wake.set()

    async def run(self) -> WorkerReport:
        """Work until `leave()`, then leave cleanly."""
        services, me = self._services, self._services.identity
        db = services.db
        now = time.time()
        await db.write(
            [
                stored_workers.register_worker_statement(
                    me.owner, self.name, me.host, me.pid, now_iso(), now
                )
            ]
        )
        # New units wake it (not every event commit: those are many and bring no work).
        stop_listening = await db.listen("promptlooper", self._wake.set, payload="work_units")
        heartbeat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        self.ready.set()
        try:
            while not self._leaving:
                await self._look_for_work()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self._wake.wait()
        finally:
            await self._leave()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if stop_listening is not None:
                await stop_listening()
            await db.write([stored_workers.remove_worker_statement(me.owner)])
        return self.report

    async def _look_for_work(self) -> None:
        services, db = self._services, self._services.db
        now = time.time()
        for sweep_id in await work.orphaned_sweeps(db, now):
            if self._leaving:
                return
            try:
                task = await self._control.take_over(sweep_id)
            except PromptLooperError as exc:
                log.warning("cannot take over sweep %s: %s", sweep_id, exc)
                continue
            if task is not None:
                self.report.sweeps_taken_over += 1
                self._say(f"coordinating sweep {sweep_id} (its coordinator is gone)")
        for sweep_id in await work.claimable_sweeps(db, now):
            if sweep_id in self._helpers or sweep_id in services.live.runners:
                continue
            try:
                runner = await self._control.helper(sweep_id, self._concurrency)
            except PromptLooperError as exc:
                log.warning("cannot help with sweep %s: %s", sweep_id, exc)
                continue
            self.report.sweeps_helped += 1
            self._say(f"working on sweep {sweep_id} of {runner.job.experiment_name!r}")
            task = asyncio.create_task(runner.help_out(), name=f"help-{sweep_id}")
            self._helpers[sweep_id] = (runner, task)
            self._helping = sweep_id
            task.add_done_callback(lambda done, sid=sweep_id: self._helped(sid, done))

    def _helped(self, sweep_id: str, task: asyncio.Task[int]) -> None:
        self._helpers.pop(sweep_id, None)
        if self._helping == sweep_id:
            self._helping = next(iter(self._helpers), None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("helping with sweep %s failed: %s", sweep_id, error)
            return
        self.report.runs += task.result()
        # Its units are done, or taken: there may be more now.
        self._wake.set()

    async def _heartbeat(self) -> None:
        services, me = self._services, self._services.identity
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            runners = services.live.runners.values()
            runs = self.report.runs + sum(r.counters.runs_done for r in runners)
            sweep = self._helping or next(iter(services.live.runners), None)
            try:
                await services.db.write(
                    [stored_workers.heartbeat_statement(me.owner, time.time(), sweep, runs)]
                )
            except PromptLooperError as exc:
                log.warning("worker heartbeat not written: %s", exc)

    async def _leave(self) -> None:
        """No new work; the runs in flight finish (within a grace); sweeps coordinated here
        are handed over, still running, to whoever comes next."""
        live = self._services.live
        coordinated = list(live.runners.values())
        helpers = [runner for runner, _ in self._helpers.values()]
        for runner in (*coordinated, *helpers):
            runner.hold()
        await asyncio.gather(*(r.wait_inflight(LEAVE_GRACE_S) for r in (*coordinated, *helpers)))
        for runner in coordinated:
            runner.hand_over()
        for runner in helpers:
            runner.stop()
        tasks = [task for _, task in self._helpers.values()]
        await asyncio.gather(*tasks, *live.tasks.values(), return_exceptions=True)
