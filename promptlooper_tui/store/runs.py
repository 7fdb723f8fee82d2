"""Runs: pages of them newest first, one with its stage results, and the aggregates that
summaries, reports and exports read.

Pages are keyset pages: the runs after a (finished_at, id) position, read from an index in that
order, so a page costs the same at any depth. An offset without a position is read from the
nearer end of the order (see `page_of_runs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database, Row

RUN_SELECT = "SELECT r.*, c.params FROM runs r JOIN configs c ON c.id = r.config_id"
RUN_BY_ID = RUN_SELECT + " WHERE r.id = ?"
STAGES_OF_RUN = "SELECT * FROM stage_results WHERE run_id = ? ORDER BY stage_index"
COUNT = "SELECT count(*) AS n FROM runs r {where}"
#: The ids of one page; the outer query reads their rows (a deferred join: what is skipped is
#: skipped in the index, never read from the table).
PAGE_IDS_NEWEST_FIRST = (
    "SELECT r.id FROM runs r {where} ORDER BY r.finished_at DESC, r.id DESC LIMIT ? OFFSET ?"
)
PAGE_IDS_OLDEST_FIRST = (
    "SELECT r.id FROM runs r {where} ORDER BY r.finished_at, r.id LIMIT ? OFFSET ?"
)
PAGE = RUN_SELECT + " WHERE r.id IN ({ids}) ORDER BY r.finished_at DESC, r.id DESC"
BY_EXPERIMENT = "r.experiment_id = ?"
BY_SWEEP = "r.sweep_id = ?"
BY_STATUS = "r.status = ?"
MIN_SCORE = "r.score >= ?"
MAX_SCORE = "r.score <= ?"
OLDER_THAN = "(r.finished_at, r.id) < (?, ?)"
FAILED_COUNT = "SELECT count(*) AS n FROM runs WHERE sweep_id = ? AND status = 'failed'"
STATUS_COUNTS = (
    "SELECT count(*) FILTER (WHERE status = 'completed') AS completed, "
    "count(*) FILTER (WHERE status = 'failed') AS failed, "
    "count(*) FILTER (WHERE status = 'completed' AND calls > 0 AND calls = cached_calls) AS cached "
    "FROM runs WHERE sweep_id = ?"
)
MOST_COMMON_ERROR = (
    "SELECT coalesce(error, '(no message)') AS error, count(*) AS n FROM runs "
    "WHERE sweep_id = ? AND status = 'failed' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1"
)
REPORT_TOTALS = """
SELECT count(*) AS runs,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       coalesce(sum(tokens_in), 0) AS tokens_in, coalesce(sum(tokens_out), 0) AS tokens_out,
       coalesce(sum(cost), 0) AS cost, coalesce(sum(calls), 0) AS calls,
       coalesce(sum(cached_calls), 0) AS cached_calls,
       min(finished_at) AS first_finished, max(finished_at) AS last_finished
FROM runs WHERE sweep_id = ?
"""
FAILURE_GROUPS = (
    "SELECT coalesce(error, '') AS error, count(*) AS n FROM runs "
    "WHERE sweep_id = ? AND status = 'failed' GROUP BY 1 ORDER BY n DESC, error LIMIT ?"
)
FAILURE_EXAMPLES = (
    "SELECT error, id FROM (SELECT coalesce(error, '') AS error, id, row_number() OVER "
    "(PARTITION BY coalesce(error, '') ORDER BY id) AS k FROM runs "
    "WHERE sweep_id = ? AND status = 'failed' AND coalesce(error, '') IN ({marks})) "
    "AS failures WHERE k <= ?"
)
EXPORT_ROWS = """
SELECT r.id, r.status, c.params, r.item_index, r.repeat, r.score, r.tokens_in, r.tokens_out,
       r.cost, r.latency_ms, r.cached_calls, r.calls, r.error, r.truncated
FROM runs r JOIN configs c ON c.id = r.config_id
WHERE r.sweep_id = ?
ORDER BY r.config_id, r.item_index, r.repeat
"""
STAGE_OUTPUTS = (
    "SELECT run_id, output FROM stage_results WHERE run_id IN ({marks}) AND stage_index = ?"
)

#: A position in the newest-first order: (finished_at, run id).
Position = tuple[str, str]


@dataclass(frozen=True)
class RunFilter:
    """Which runs a page lists; None means any."""

    experiment_id: str | None = None
    sweep_id: str | None = None
    status: str | None = None
    min_score: float | None = None
    max_score: float | None = None

    def where(self, after: Position | None = None) -> tuple[str, list[Any]]:
        """The WHERE clause (empty when nothing is filtered) and its parameters."""
        wanted = [
            (BY_EXPERIMENT, self.experiment_id),
            (BY_SWEEP, self.sweep_id),
            (BY_STATUS, self.status),
            (MIN_SCORE, self.min_score),
            (MAX_SCORE, self.max_score),
        ]
        clauses = [clause for clause, value in wanted if value is not None]
        params: list[Any] = [value for _, value in wanted if value is not None]
        if after is not None:
            clauses.append(OLDER_THAN)
            params.extend(after)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


async def count_runs(db: Database, runs: RunFilter) -> int:
    where, params = runs.where()
    row = await db.fetchone(COUNT.format(where=where), params)
    return int(row["n"]) if row else 0


async def page_of_runs(
    db: Database,
    runs: RunFilter,
    *,
    limit: int,
    offset: int = 0,
    after: Position | None = None,
    total: int,
) -> list[Row]:
    """Up to `limit` run rows (with their config's `params`), newest first, skipping `offset`
    after position `after` (or from the newest). `total` is `count_runs(db, runs)`: without a
    position, an offset past the middle is read from the oldest end, so the last page costs
    what the first does."""
    if after is None and offset > total // 2:
        end = min(offset + limit, total)
        if end <= offset:
            return []
        where, params = runs.where()
        ids = PAGE_IDS_OLDEST_FIRST.format(where=where)
        params += [end - offset, total - end]
    else:
        where, params = runs.where(after)
        ids = PAGE_IDS_NEWEST_FIRST.format(where=where)
        params += [limit, offset]
    return await db.fetchall(PAGE.format(ids=ids), params)


async def run_row(db: Database, run_id: str) -> Row | None:
    """A run's row with its config's `params`."""
    return await db.fetchone(RUN_BY_ID, (run_id,))


async def stage_rows(db: Database, run_id: str) -> list[Row]:
    return await db.fetchall(STAGES_OF_RUN, (run_id,))


async def failed_count(db: Database, sweep_id: str) -> int:
    row = await db.fetchone(FAILED_COUNT, (sweep_id,))
    return int(row["n"]) if row else 0


async def status_counts(db: Database, sweep_id: str) -> Row | None:
    """A sweep's runs `completed`, `failed`, and `cached` (completed from the cache alone)."""
    return await db.fetchone(STATUS_COUNTS, (sweep_id,))


async def most_common_error(db: Database, sweep_id: str) -> str | None:
    row = await db.fetchone(MOST_COMMON_ERROR, (sweep_id,))
    return None if row is None else str(row["error"])


async def report_totals(db: Database, sweep_id: str) -> Row | None:
    """A sweep's run counts, list-price tokens and cost, calls, and first/last finish times."""
    return await db.fetchone(REPORT_TOTALS, (sweep_id,))


async def failure_groups(db: Database, sweep_id: str, limit: int) -> list[Row]:
    """The most frequent error messages of failed runs (`error`, `n`), most frequent first."""
    return await db.fetchall(FAILURE_GROUPS, (sweep_id, limit))


async def failure_examples(
    db: Database, sweep_id: str, errors: Sequence[str], per_error: int
) -> list[Row]:
    """The first `per_error` failed run ids (`id`) of each message in `errors` (`error`)."""
    sql = FAILURE_EXAMPLES.format(marks=_marks(errors))
    return await db.fetchall(sql, (sweep_id, *errors, per_error))


def export_batches(db: Database, sweep_id: str, size: int) -> AsyncIterator[list[Row]]:
    """A sweep's runs for an export, by config, item and repeat, `size` rows at a time."""
    batches: AsyncIterator[list[Row]] = db.fetch_batches(EXPORT_ROWS, (sweep_id,), size)
    return batches


async def stage_outputs(
    db: Database, run_ids: Sequence[str], stage_index: int
) -> dict[str, str | None]:
    """Run id -> the output of its stage `stage_index`, for those that ran it."""
    sql = STAGE_OUTPUTS.format(marks=_marks(run_ids))
    rows = await db.fetchall(sql, (*run_ids, stage_index))
    return {row["run_id"]: row["output"] for row in rows}


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
