"""Runs and scores: pages of runs, one run in full, and a person's rating of a run."""

from __future__ import annotations

import json
from typing import Any

from ..domain.errors import BadInput, NotFound
from ..domain.experiment import HumanScorerSpec
from ..domain.records import RunDetail, RunPage, RunRecord, ScoreRecord, StageRecord
from ..store import runs as stored_runs
from ..store import scores as stored_scores
from ..store import sweeps as stored_sweeps
from ..store.runs import RunFilter
from ..store.timestamps import now_iso
from .lookups import automatic_scorers, load_spec, resolve_experiment, resolve_sweep
from .run_cursor import decode_cursor, encode_cursor
from .services import Services

#: The store compares 64-bit integers: a larger offset would overflow, not page.
_MAX_OFFSET = 2**63 - 1


class Runs:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def list_runs(
        self,
        *,
        experiment: str | None = None,
        sweep: str | None = None,
        status: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
    ) -> RunPage:
        """See `Workbench.list_runs`."""
        if not 1 <= limit <= 10_000 or not 0 <= offset <= _MAX_OFFSET:
            raise BadInput(f"limit must be 1..10000 and offset 0..{_MAX_OFFSET}")
        if status is not None and status not in ("completed", "failed"):
            raise BadInput(f"unknown run status {status!r}; use completed or failed")
        db = self._services.db
        wanted = RunFilter(
            experiment_id=None if experiment is None else await resolve_experiment(db, experiment),
            sweep_id=None if sweep is None else await resolve_sweep(db, sweep),
            status=status,
            min_score=min_score,
            max_score=max_score,
        )
        position = None if after is None else decode_cursor(after, wanted)
        total = await stored_runs.count_runs(db, wanted)
        # One run more than asked says whether a next page exists, so `next` is None on the last.
        rows = await stored_runs.page_of_runs(
            db, wanted, limit=limit + 1, offset=offset, after=position, total=total
        )
        more, rows = len(rows) > limit, rows[:limit]
        last = rows[-1] if more else None
        return RunPage(
            items=[_run_record(row) for row in rows],
            total=total,
            next=None if last is None else encode_cursor((last["finished_at"], last["id"]), wanted),
        )

    async def get_run(self, run_id: str) -> RunDetail:
        db = self._services.db
        row = await stored_runs.run_row(db, run_id)
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        record = _run_record(row)
        version = await stored_sweeps.sweep_version(db, record.sweep_id)
        assert version is not None
        spec = await load_spec(db, *version)
        scores = [_score_record(s) for s in await stored_scores.scores_of_run(db, run_id)]
        return RunDetail(
            **record.model_dump(),
            item=spec.items[record.item_index],
            stages=[_stage_record(s) for s in await stored_runs.stage_rows(db, run_id)],
            scores=[s for s in scores if s.superseded_at is None],
            superseded_scores=[s for s in scores if s.superseded_at is not None],
        )

    async def add_score(
        self, run_id: str, value: float, *, scorer: str = "human", note: str | None = None
    ) -> RunDetail:
        """See `Workbench.add_score`."""
        if not 0.0 <= value <= 1.0:
            raise BadInput(f"a score must be between 0 and 1, got {value}")
        services = self._services
        run = await self.get_run(run_id)
        version = await stored_sweeps.sweep_version(services.db, run.sweep_id)
        assert version is not None
        spec = await load_spec(services.db, *version)
        automatic = automatic_scorers(spec)
        if scorer in automatic:
            raise BadInput(
                f"{scorer!r} is an automatic scorer of this experiment; rate under your own "
                f"name (the default is 'human'), not one of: {', '.join(automatic)}"
            )
        weight = next((s.weight for s in spec.scorers if isinstance(s, HumanScorerSpec)), 1.0)
        await services.db.write(
            stored_scores.human_score_statements(run_id, scorer, value, weight, note, now_iso())
        )
        detail = await self.get_run(run_id)
        services.bus.publish(
            "score.added",
            run.experiment_id,
            sweep_id=run.sweep_id,
            run_id=run_id,
            data={"scorer": scorer, "value": value, "note": note, "run_score": detail.score},
        )
        return detail


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        sweep_id=row["sweep_id"],
        experiment_id=row["experiment_id"],
        config=json.loads(row["params"]),
        item_index=row["item_index"],
        repeat=row["repeat"],
        status=row["status"],
        score=row["score"],
        error=row["error"],
        tokens_in=row["tokens_in"],
        tokens_out=row["tokens_out"],
        cost=row["cost"],
        latency_ms=row["latency_ms"],
        calls=row["calls"],
        cached_calls=row["cached_calls"],
        finished_at=row["finished_at"],
        truncated=bool(row["truncated"]),
    )


def _score_record(row: Any) -> ScoreRecord:
    return ScoreRecord(
        scorer=row["scorer"],
        kind=row["kind"],
        value=row["value"],
        weight=row["weight"],
        error=row["error"],
        note=row["note"],
        created_at=row["created_at"],
        superseded_at=row["superseded_at"],
    )


def _stage_record(row: Any) -> StageRecord:
    return StageRecord(
        index=row["stage_index"],
        name=row["name"],
        messages=json.loads(row["messages"]),
        output=row["output"],
        tokens_in=row["tokens_in"],
        tokens_out=row["tokens_out"],
        latency_ms=row["latency_ms"],
        cached=bool(row["cached"]),
        error=row["error"],
        finish_reason=row["finish_reason"],
        warnings=json.loads(row["warnings"]) if row["warnings"] else [],
    )
