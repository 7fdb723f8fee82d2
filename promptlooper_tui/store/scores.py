"""Scores: a run's scores, a person's rating (which replaces their earlier one), and the
per-scorer aggregates that exports and reports read."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .database import Database, Statement

#: Name under which a completed run's own score (its scorers' weighted mean) is aggregated.
RUN_SCORE = "(run score)"

SCORES_OF_RUN = "SELECT * FROM scores WHERE run_id = ? ORDER BY id"
SUPERSEDE_HUMAN = (
    "UPDATE scores SET superseded_at = ? WHERE run_id = ? AND scorer = ? "
    "AND kind = 'human' AND superseded_at IS NULL"
)
INSERT_HUMAN = (
    "INSERT INTO scores (run_id, scorer, kind, value, weight, note, created_at) "
    "VALUES (?, ?, 'human', ?, ?, ?, ?)"
)
#: (PostgreSQL rounds only exact numbers: hence the CAST, which SQLite takes as well.)
RESCORE_RUN = (
    "UPDATE runs SET score = (SELECT round(CAST(sum(value * weight) / sum(weight) AS NUMERIC), 6) "
    "FROM scores WHERE run_id = ? AND value IS NOT NULL AND weight > 0 "
    "AND superseded_at IS NULL) WHERE id = ?"
)
SCORERS_OF_SWEEP = (
    "SELECT DISTINCT s.scorer FROM scores s JOIN runs r ON r.id = s.run_id WHERE r.sweep_id = ?"
)
MEANS_OF_RUNS = (
    "SELECT run_id, scorer, avg(value) AS value FROM scores WHERE run_id IN ({marks}) "
    "GROUP BY run_id, scorer"
)
#: Scorer values of a sweep's runs, plus each completed run's own score under RUN_SCORE.
_SWEEP_VALUES = f"""
WITH v AS (
    SELECT s.scorer AS name, s.value AS value, s.error AS error
    FROM scores s JOIN runs r ON r.id = s.run_id WHERE r.sweep_id = ?
    UNION ALL
    SELECT '{RUN_SCORE}', score, NULL FROM runs WHERE sweep_id = ? AND status = 'completed'
)
"""
DISTRIBUTIONS = (
    _SWEEP_VALUES
    + """
SELECT name, count(value) AS n, min(value) AS lo, avg(value) AS mean, max(value) AS hi,
       count(error) AS errors
FROM v GROUP BY name
"""
)
# The epsilon keeps 0.3 (stored as 0.29999...) in the 0.3-0.4 bin. Scores are never negative,
# so truncating is flooring: CAST truncates on SQLite, PostgreSQL's rounds (trunc() first).
_HISTOGRAMS = """
SELECT name, min({bin}, ? - 1) AS bin, count(*) AS n
FROM v WHERE value IS NOT NULL GROUP BY name, bin
"""
HISTOGRAMS = {
    "sqlite": _SWEEP_VALUES + _HISTOGRAMS.format(bin="CAST(value * ? + 1e-9 AS INTEGER)"),
    "postgresql": _SWEEP_VALUES
    + _HISTOGRAMS.replace("min(", "least(").format(bin="CAST(trunc(value * ? + 1e-9) AS BIGINT)"),
}


def human_score_statements(
    run_id: str, scorer: str, value: float, weight: float, note: str | None, created_at: str
) -> list[Statement]:
    """A person's rating of a run under `scorer`: it supersedes their earlier one, and the
    run's score is computed again from the scores that count."""
    return [
        (SUPERSEDE_HUMAN, (created_at, run_id, scorer)),
        (INSERT_HUMAN, (run_id, scorer, value, weight, note, created_at)),
        (RESCORE_RUN, (run_id, run_id)),
    ]


async def scores_of_run(db: Database, run_id: str) -> list[sqlite3.Row]:
    """Every score of a run, superseded ones included, oldest first."""
    return await db.fetchall(SCORES_OF_RUN, (run_id,))


async def scorer_names_of_sweep(db: Database, sweep_id: str) -> set[str]:
    """Every scorer name that scored a run of the sweep."""
    return {row["scorer"] for row in await db.fetchall(SCORERS_OF_SWEEP, (sweep_id,))}


async def scorer_means(db: Database, run_ids: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Run id -> scorer -> the mean of its values on that run (a person's ratings averaged)."""
    marks = ",".join("?" * len(run_ids))
    rows = await db.fetchall(MEANS_OF_RUNS.format(marks=marks), run_ids)
    means: dict[str, dict[str, float | None]] = {}
    for row in rows:
        means.setdefault(row["run_id"], {})[row["scorer"]] = row["value"]
    return means


async def score_distributions(db: Database, sweep_id: str) -> list[sqlite3.Row]:
    """Per scorer `name` (and RUN_SCORE) of a sweep: n, lo, mean, hi and errors."""
    return await db.fetchall(DISTRIBUTIONS, (sweep_id, sweep_id))


async def score_histograms(db: Database, sweep_id: str, bins: int) -> list[sqlite3.Row]:
    """Per scorer `name` (and RUN_SCORE) of a sweep: `n` values in each `bin` of `bins` equal
    bins over [0, 1] (a value of exactly 1 goes in the last)."""
    return await db.fetchall(HISTOGRAMS[db.dialect], (sweep_id, sweep_id, bins, bins))
