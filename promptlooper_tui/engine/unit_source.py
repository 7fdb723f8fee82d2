"""Where the workers of a sweep in this process take their next run: work units claimed from
the store a few at a time, so that other processes working on the same sweep take others
(`UnitSource`); or, when no other process could help, the batch's plan itself (`PlanSource`),
which costs the store nothing per run.

A claim takes as many units as this process has workers, no more: a process holds only what
it is about to run, and a faster process simply comes back sooner. A unit claimed but not yet
started when the sweep stops or pauses here is given back at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from ..store import work
from ..store.database import Database, Statement
from .run_execution import PlannedRun
from .work_leases import LEASE_S, WorkLeases


class UnitSource:
    def __init__(
        self,
        db: Database,
        sweep_id: str,
        leases: WorkLeases,
        configs: dict[int, tuple[str, dict[str, Any]]],
        chunk: int,
    ) -> None:
        """`configs`: each config id's key and parameters, as far as known; read again from
        the store when a claimed unit names another (the coordinator stores a batch's
        configs before its units)."""
        self._db = db
        self._sweep_id = sweep_id
        self._leases = leases
        self._configs = configs
        self._chunk = chunk
        self._claimed: deque[tuple[str, PlannedRun]] = deque()
        self._claiming: asyncio.Future[None] | None = None
        #: Units claimed and not yet finished or given back.
        self.held = 0

    async def next(self) -> tuple[str, PlannedRun] | None:
        """The next run to do here (its id and plan), or None when no unit is free (others
        may hold some)."""
        while not self._claimed:
            if self._claiming is not None:
                # Another worker is claiming already: wait for its claim, then look again.
                await asyncio.shield(self._claiming)
                if not self._claimed:
                    return None
                break
            self._claiming = asyncio.get_running_loop().create_future()
            try:
                got = await self._claim()
            finally:
                self._claiming.set_result(None)
                self._claiming = None
            if not got:
                return None
        return self._claimed.popleft()

    def finished_statement(self, run_id: str) -> Statement | None:
        """The write, in the run's own unit, that takes its work unit off the store."""
        self.held -= 1
        self._leases.drop_units(1)
        return work.finish_unit_statement(run_id)

    def give_back(self, run_id: str) -> Statement | None:
        """The write that frees a claimed unit this process will not run."""
        self.held -= 1
        self._leases.drop_units(1)
        return work.release_unit_statement(run_id, self._leases.owner)

    def give_back_unstarted(self) -> list[Statement]:
        """The writes that free every unit claimed here and not started."""
        runs, self._claimed = list(self._claimed), deque()
        self.held -= len(runs)
        self._leases.drop_units(len(runs))
        return [work.release_unit_statement(run_id, self._leases.owner) for run_id, _ in runs]

    async def _claim(self) -> int:
        rows = await work.claim_units(
            self._db,
            self._sweep_id,
            self._leases.owner,
            now=time.time(),
            lease_s=LEASE_S,
            limit=self._chunk,
        )
        self._leases.hold_units(len(rows))
        self.held += len(rows)
        if any(row["config_id"] not in self._configs for row in rows):
            self._configs.update(await work.sweep_configs(self._db, self._sweep_id))
        for row in sorted(rows, key=lambda r: (r["batch"], r["item_index"], r["run_id"])):
            key, config = self._configs[row["config_id"]]
            planned = PlannedRun(
                config,
                key,
                row["config_id"],
                row["item_index"],
                row["repeat"],
                # Always replace what a run left: a unit whose lease ran out while its process
                # still ran it may be recorded twice, and the second must not collide.
                retry=True,
            )
            self._claimed.append((row["run_id"], planned))
        return len(rows)


class PlanSource:
    """A batch's runs straight from its plan: nothing to claim, finish or give back."""

    def __init__(self, pending: Iterator[tuple[str, PlannedRun]]) -> None:
        self._pending = pending

    async def next(self) -> tuple[str, PlannedRun] | None:
        return next(self._pending, None)

    def finished_statement(self, run_id: str) -> Statement | None:
        return None

    def give_back(self, run_id: str) -> Statement | None:
        return None

    def give_back_unstarted(self) -> list[Statement]:
        return []


RunSource = UnitSource | PlanSource
