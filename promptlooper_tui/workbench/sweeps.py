"""Sweeps as they stand: listing them, one's status, and the `run --json` summary."""

from __future__ import annotations

import json
from typing import Any

from ..domain.records import (
    RESUMABLE,
    CallCounts,
    RateLimitCounts,
    RunCounts,
    SweepRecord,
    SweepSummary,
    TokenCounts,
)
from ..engine.strategies import ADAPTIVE_STRATEGIES
from ..store import runs as stored_runs
from ..store import sweeps as stored_sweeps
from .lookups import effective_status, live_status, resolve_experiment, resolve_sweep
from .rankings import Rankings
from .services import Services


class Sweeps:
    def __init__(self, services: Services, rankings: Rankings) -> None:
        self._services = services
        self._rankings = rankings

    async def list_sweeps(self, experiment: str | None = None) -> list[SweepRecord]:
        db = self._services.db
        experiment_id = None if experiment is None else await resolve_experiment(db, experiment)
        return [self._record(row) for row in await stored_sweeps.list_summaries(db, experiment_id)]

    async def get_sweep(self, sweep_ref: str) -> SweepRecord:
        db = self._services.db
        row = await stored_sweeps.summary(db, await resolve_sweep(db, sweep_ref))
        assert row is not None
        return self._record(row)

    async def sweep_summary(self, sweep_ref: str, *, top: int = 10) -> SweepSummary:
        """See `Workbench.sweep_summary`."""
        db = self._services.db
        sweep = await self.get_sweep(sweep_ref)
        counts = await stored_runs.status_counts(db, sweep.id)
        totals = await stored_sweeps.sweep_totals(db, sweep.id)
        assert counts is not None and totals is not None
        live = self._services.live.runners.get(sweep.id)
        counters = live.counters if live else self._services.live.counters.get(sweep.id)
        board = await self._rankings.ranking(sweep.id, top=top, sweep=sweep.id)
        most_common_error = None
        if counts["failed"] and (not counts["completed"] or sweep.status == "failed"):
            most_common_error = await stored_runs.most_common_error(db, sweep.id)
        return SweepSummary(
            sweep_id=sweep.id,
            experiment=sweep.experiment,
            experiment_version=sweep.experiment_version,
            status=sweep.status,
            runs=RunCounts(
                total=sweep.runs_total,
                completed=counts["completed"],
                failed=counts["failed"],
                cached=counts["cached"],
                total_is_estimate=sweep.total_is_estimate,
            ),
            calls=CallCounts(requested=totals["calls"], cache_hits=totals["cache_hits"]),
            calls_this_run=CallCounts(requested=counters.calls, cache_hits=counters.cache_hits)
            if counters
            else None,
            tokens=TokenCounts(input=totals["tokens_in"], output=totals["tokens_out"]),
            cost=None if board.unpriced_models else round(totals["cost"], 6),
            unpriced_models=board.unpriced_models,
            scorer_failures=board.scorer_failures,
            most_common_error=most_common_error,
            leaderboard=board.entries,
            leaderboard_configs=board.configs,
            rate_limits=live.rate_limit_counts()
            if live
            else RateLimitCounts(responses_429=totals["responses_429"]),
        )

    def _record(self, row: Any) -> SweepRecord:
        live_here = live_status(self._services.live.runners, row["id"])
        status = effective_status(row["status"], row["owner_pid"], live_here, row)
        strategy = json.loads(row["settings"])["strategy"]
        total, estimate = _planned_total(row, status, strategy)
        return SweepRecord(
            id=row["id"],
            experiment_id=row["experiment_id"],
            experiment=row["name"],
            experiment_version=row["experiment_version"],
            strategy=strategy,
            status=status,
            resumable=status in RESUMABLE,
            error=row["error"],
            runs_completed=row["completed"],
            runs_failed=row["failed"],
            planned_runs=row["planned_runs"],
            runs_total=total,
            total_is_estimate=estimate,
            tokens=row["tokens_in"] + row["tokens_out"],
            cost=None if row["unpriced"] else round(row["cost"], 6),
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )


def _planned_total(row: Any, status: str, strategy: str) -> tuple[int, bool]:
    """A sweep's planned total of runs and whether it is an estimate. A completed sweep ran
    its plan: the runs its batches held. Otherwise the strategy's plan (stored as the sweep
    starts; racing and guided narrow it as they go), never less than what is already
    planned or finished, so a stopped or failed sweep shows how much is left."""
    finished = row["completed"] + row["failed"]
    if status == "completed":
        return max(row["planned_runs"], finished), False
    total = max(row["expected_runs"] or 0, row["planned_runs"], finished)
    return total, strategy in ADAPTIVE_STRATEGIES
