"""Persisting a sweep's finished runs: each run, its stage results and scores and what it adds
to the sweep's counters go to the store as one unit; its event goes out once that unit is
committed, so nothing is ever announced that a crash could still lose."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..store import sweep_progress as progress
from ..store.database import Database, Statement
from ..store.timestamps import now_iso
from .run_execution import ExecutedRun, PlannedRun
from .sweep_rate_limits import SweepRateLimits

#: Most recorded runs that may wait for their commit (two of the writer's groups): beyond
#: this, workers wait for the writer instead of piling up runs in memory.
_MAX_UNCOMMITTED = 1024


@dataclass
class SweepCounters:
    """Live counts for this invocation (the store holds the sweep's totals)."""

    runs_done: int = 0
    runs_failed: int = 0
    runs_cached: int = 0
    runs_running: int = 0
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    started: float = field(default_factory=time.monotonic)


class RunRecorder:
    """Stores and announces one sweep's finished runs and keeps its live counters.

    `publish(type, run_id=..., **data)` sends an event; `on_lost(reason)` is called when a
    run could not be stored (the sweep should stop: what it does next would be lost too).
    """

    def __init__(
        self,
        db: Database,
        sweep_id: str,
        experiment_id: str,
        rate_limits: SweepRateLimits,
        publish: Callable[..., Any],
        on_lost: Callable[[str], None],
    ) -> None:
        self._db = db
        self._sweep_id = sweep_id
        self._experiment_id = experiment_id
        self._rate_limits = rate_limits
        self._publish = publish
        self._on_lost = on_lost
        self.counters = SweepCounters()
        #: Models of this sweep without a price, as stored with the sweep.
        self.unpriced: frozenset[str] = frozenset()
        #: Each recorded run's commit, announced by a callback once done, in the order of the
        #: commits (the writer keeps it), so the ones that are done are at the left.
        self._announcing: deque[asyncio.Future[None]] = deque()

    def record(
        self, run_id: str, planned: PlannedRun, run: ExecutedRun, also: Statement | None = None
    ) -> None:
        """Queue the run's commit, `also` in the same unit (its work unit is done), and count
        it; its event follows the commit."""
        statements = self._statements(run_id, planned, run)
        if also is not None:
            statements.append(also)
        saved = self._db.submit(statements)
        self._count(run)
        meter = run.meter
        event = {
            "config": planned.config,
            "item_index": planned.item_index,
            "repeat": planned.repeat,
            "score": run.score,
            "error": run.error,
            "tokens": meter.tokens_in + meter.tokens_out,
            "paid_tokens": meter.paid,
            "cost": meter.cost,
            "cached": 0 < meter.calls == meter.cached_calls,
            "latency_ms": run.latency_ms,
            "scores": {name: value for name, value, _, _ in run.scores},
            "scorer_errors": {name: err for name, _, _, err in run.scores if err is not None},
            "truncated": run.truncated,
        }
        # A callback on the commit, not a task per run: the same order, for less of the loop.
        saved.add_done_callback(partial(self._announce, f"run.{run.status}", run_id, event))
        self._announcing.append(saved)

    async def keep_up(self) -> None:
        """Return once at most _MAX_UNCOMMITTED recorded runs wait for their commit: when the
        writer falls behind (it slows as the database grows), the workers wait for it instead
        of filling memory with finished runs. The writer needs nothing of theirs to go on."""
        self._forget_announced()
        while len(self._announcing) > _MAX_UNCOMMITTED:
            await asyncio.wait((self._announcing[0],))
            self._forget_announced()

    async def settle(self) -> None:
        """Wait until every run recorded so far is committed (and announced)."""
        if self._announcing:
            await asyncio.gather(*self._announcing, return_exceptions=True)
            self._forget_announced()

    def _forget_announced(self) -> None:
        announcing = self._announcing
        while announcing and announcing[0].done():
            announcing.popleft()

    def _announce(
        self, type: str, run_id: str, data: dict[str, Any], saved: asyncio.Future[None]
    ) -> None:
        if saved.cancelled():
            return
        error = saved.exception()
        if error is not None:
            self._on_lost(f"cannot save results: {error}")
            return
        self._publish(type, run_id=run_id, **data)

    def _statements(self, run_id: str, planned: PlannedRun, run: ExecutedRun) -> list[Statement]:
        meter = run.meter
        grown: frozenset[str] | None = None
        if not meter.unpriced <= self.unpriced:
            grown = self.unpriced = self.unpriced | meter.unpriced
        finished = progress.FinishedRun(
            run_id=run_id,
            sweep_id=self._sweep_id,
            config_id=planned.config_id,
            experiment_id=self._experiment_id,
            item_index=planned.item_index,
            repeat=planned.repeat,
            status=run.status,
            score=run.score,
            error=run.error,
            tokens_in=meter.tokens_in,
            tokens_out=meter.tokens_out,
            cost=meter.cost,
            latency_ms=run.latency_ms,
            calls=meter.calls,
            cached_calls=meter.cached_calls,
            truncated=run.truncated,
            unpriced=frozenset(meter.unpriced),
            paid_in=meter.paid_in,
            paid_out=meter.paid_out,
            paid_cost=meter.paid_cost,
            stages=run.stages,
            scores=run.scores,
            retry=planned.retry,
        )
        return progress.finished_run_statements(
            finished, now=now_iso(), new_429s=self._rate_limits.unsaved(), sweep_unpriced=grown
        )

    def _count(self, run: ExecutedRun) -> None:
        counters, meter = self.counters, run.meter
        counters.calls += meter.calls
        counters.cache_hits += meter.cached_calls
        counters.tokens_in += meter.paid_in
        counters.tokens_out += meter.paid_out
        counters.cost += meter.paid_cost
        if run.status == "completed":
            counters.runs_done += 1
            if meter.calls and meter.calls == meter.cached_calls:
                counters.runs_cached += 1
        else:
            counters.runs_failed += 1
