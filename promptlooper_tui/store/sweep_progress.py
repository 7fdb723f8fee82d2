"""A running sweep's progress in the store: its batches and configs, each finished run with its
stage results and scores, the sweep's counters and its status.

Reads take the `Database`; writes return `Statement`s so that a finished run, its stage results,
its scores and the counters it adds to are committed as one unit (`db.submit`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database, Row, Statement

#: Most keys in one `IN (...)` lookup (SQLite's default variable limit is far above this).
_KEYS_PER_QUERY = 500

FINISHED_RUNS = (
    "SELECT c.key, r.item_index, r.repeat, r.status, r.score FROM runs r "
    "JOIN configs c ON c.id = r.config_id WHERE r.sweep_id = ? "
    # One order whoever ran them: adaptive strategies then learn the same, to the last bit.
    "ORDER BY c.key, r.item_index, r.repeat"
)
SWEEP_USAGE = (
    "SELECT tokens_in + tokens_out AS used, responses_429, unpriced FROM sweeps WHERE id = ?"
)
STORED_BATCHES = "SELECT number, plan FROM sweep_batches WHERE sweep_id = ? ORDER BY number"
ADD_CONFIG = "INSERT INTO configs (sweep_id, key, params) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
DROP_CONFIG = "UPDATE configs SET dropped = 1, decision = ? WHERE sweep_id = ? AND key = ?"
ADD_BATCH = "INSERT INTO sweep_batches (sweep_id, number, plan) VALUES (?, ?, ?)"
ADD_PLANNED_RUNS = "UPDATE sweeps SET planned_runs = planned_runs + ?, updated_at = ? WHERE id = ?"
CONFIG_IDS = "SELECT key, id FROM configs WHERE sweep_id = ? AND key IN ({marks})"
SET_EXPECTED_RUNS = "UPDATE sweeps SET expected_runs = ? WHERE id = ?"
SET_STATUS = (
    "UPDATE sweeps SET status = ?, error = ?, updated_at = ?, finished_at = ?, "
    "owner_pid = CASE WHEN ? THEN ? ELSE owner_pid END WHERE id = ?"
)
ADD_429S = "UPDATE sweeps SET responses_429 = responses_429 + ? WHERE id = ?"
CLEAR_STAGE_RESULTS = "DELETE FROM stage_results WHERE run_id = ?"
CLEAR_AUTO_SCORES = "DELETE FROM scores WHERE run_id = ? AND kind = 'auto'"
SAVE_RUN = (
    "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
    "status, score, error, tokens_in, tokens_out, cost, latency_ms, calls, "
    "cached_calls, finished_at, truncated, unpriced) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET status = excluded.status, score = excluded.score, "
    "error = excluded.error, tokens_in = excluded.tokens_in, "
    "tokens_out = excluded.tokens_out, cost = excluded.cost, "
    "latency_ms = excluded.latency_ms, calls = excluded.calls, "
    "cached_calls = excluded.cached_calls, finished_at = excluded.finished_at, "
    "truncated = excluded.truncated, unpriced = excluded.unpriced"
)
ADD_STAGE_RESULT = (
    "INSERT INTO stage_results (run_id, stage_index, name, messages, output, "
    "tokens_in, tokens_out, latency_ms, cached, error, finish_reason, warnings) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
ADD_AUTO_SCORE = (
    "INSERT INTO scores (run_id, scorer, kind, value, weight, error, created_at) "
    "VALUES (?, ?, 'auto', ?, ?, ?, ?)"
)
ADD_RUN_USAGE = (
    "UPDATE sweeps SET tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, "
    "cost = cost + ?, responses_429 = responses_429 + ?, calls = calls + ?, "
    "cache_hits = cache_hits + ?, updated_at = ? WHERE id = ?"
)
SET_UNPRICED = "UPDATE sweeps SET unpriced = ? WHERE id = ?"
ADD_CACHE_USE = "UPDATE cache_counters SET hits = hits + ?, misses = misses + ? WHERE id = 1"

#: One stage's row: (stage_index, name, messages JSON, output, tokens_in, tokens_out,
#: latency_ms, cached, error, finish_reason, warnings JSON).
StageRow = tuple[
    int, str, str, str | None, int, int, float, int, str | None, str | None, str | None
]
#: One automatic score: (scorer, value or None, weight, error or None).
ScoreRow = tuple[str, float | None, float, str | None]


@dataclass(frozen=True, slots=True)
class SweepUsage:
    """What a sweep used before this invocation: tokens, 429 answers and unpriced models."""

    tokens: int
    responses_429: int
    unpriced: frozenset[str]


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """One run as its row records it, with what it adds to its sweep's counters."""

    run_id: str
    sweep_id: str
    config_id: int
    experiment_id: str
    item_index: int
    repeat: int
    status: str
    score: float | None
    error: str | None
    tokens_in: int
    tokens_out: int
    cost: float
    latency_ms: float
    calls: int
    cached_calls: int
    truncated: bool
    unpriced: frozenset[str]
    paid_in: int
    paid_out: int
    paid_cost: float
    stages: Sequence[StageRow]
    scores: Sequence[ScoreRow]
    #: A failed run being retried: its old stage results and scores are replaced.
    retry: bool = False


async def finished_runs(db: Database, sweep_id: str) -> list[Row]:
    """Every stored run of the sweep: config key, item_index, repeat, status, score."""
    return await db.fetchall(FINISHED_RUNS, (sweep_id,))


async def sweep_usage(db: Database, sweep_id: str) -> SweepUsage:
    row = await db.fetchone(SWEEP_USAGE, (sweep_id,))
    if row is None:
        return SweepUsage(0, 0, frozenset())
    unpriced = frozenset(json.loads(row["unpriced"])) if row["unpriced"] else frozenset()
    return SweepUsage(int(row["used"]), int(row["responses_429"]), unpriced)


async def stored_batches(db: Database, sweep_id: str) -> dict[int, dict[str, Any]]:
    """The plans of the batches stored so far, by number: {"configs": [...], "items": [...]}."""
    rows = await db.fetchall(STORED_BATCHES, (sweep_id,))
    return {row["number"]: json.loads(row["plan"]) for row in rows}


def batch_statements(
    sweep_id: str,
    number: int,
    plan: str,
    configs: Iterable[tuple[str, str]],
    dropped: Iterable[tuple[str, str]],
    planned_runs: int,
    now: str,
) -> list[Statement]:
    """A batch's plan (canonical JSON), its new configs as (key, params JSON), the configs it
    drops as (key, decision JSON) and the runs it adds to the sweep's plan."""
    statements: list[Statement] = [(ADD_CONFIG, (sweep_id, key, params)) for key, params in configs]
    statements += [(DROP_CONFIG, (decision, sweep_id, key)) for key, decision in dropped]
    statements.append((ADD_BATCH, (sweep_id, number, plan)))
    statements.append((ADD_PLANNED_RUNS, (planned_runs, now, sweep_id)))
    return statements


async def config_ids(db: Database, sweep_id: str, keys: Sequence[str]) -> dict[str, int]:
    """The stored ids of the sweep's configs with these keys."""
    ids: dict[str, int] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        sql = CONFIG_IDS.format(marks=",".join("?" * len(chunk)))
        rows = await db.fetchall(sql, (sweep_id, *chunk))
        ids.update({row["key"]: row["id"] for row in rows})
    return ids


async def set_expected_runs(db: Database, sweep_id: str, expected: int) -> None:
    await db.execute(SET_EXPECTED_RUNS, (expected, sweep_id))


async def set_status(
    db: Database,
    sweep_id: str,
    status: str,
    *,
    now: str,
    finished_at: str | None,
    error: str | None,
    owner_pid: int | None,
) -> None:
    """The sweep's status; with `owner_pid`, that process now owns the sweep."""
    await db.execute(
        SET_STATUS,
        (status, error, now, finished_at, owner_pid is not None, owner_pid, sweep_id),
    )


async def add_429s(db: Database, sweep_id: str, count: int) -> None:
    await db.execute(ADD_429S, (count, sweep_id))


def finished_run_statements(
    run: FinishedRun, *, now: str, new_429s: int, sweep_unpriced: frozenset[str] | None
) -> list[Statement]:
    """The run's row, stage results and scores, and what it adds to the sweep's and the
    cache's counters; `sweep_unpriced` is the sweep's new set of unpriced models, if it grew."""
    statements: list[Statement] = []
    if run.retry:
        statements += [(CLEAR_STAGE_RESULTS, (run.run_id,)), (CLEAR_AUTO_SCORES, (run.run_id,))]
    unpriced = json.dumps(sorted(run.unpriced)) if run.unpriced else None
    statements.append(
        (
            SAVE_RUN,
            (
                run.run_id,
                run.sweep_id,
                run.config_id,
                run.experiment_id,
                run.item_index,
                run.repeat,
                run.status,
                run.score,
                run.error,
                run.tokens_in,
                run.tokens_out,
                run.cost,
                run.latency_ms,
                run.calls,
                run.cached_calls,
                now,
                int(run.truncated),
                unpriced,
            ),
        )
    )
    statements += [(ADD_STAGE_RESULT, (run.run_id, *stage)) for stage in run.stages]
    statements += [(ADD_AUTO_SCORE, (run.run_id, *score, now)) for score in run.scores]
    statements.append(
        (
            ADD_RUN_USAGE,
            (
                run.paid_in,
                run.paid_out,
                run.paid_cost,
                new_429s,
                run.calls,
                run.cached_calls,
                now,
                run.sweep_id,
            ),
        )
    )
    if sweep_unpriced is not None:
        statements.append((SET_UNPRICED, (json.dumps(sorted(sweep_unpriced)), run.sweep_id)))
    statements.append((ADD_CACHE_USE, (run.cached_calls, run.calls - run.cached_calls)))
    return statements
