"""The leaderboard's reads: per-config aggregates of the completed runs a ranking covers.

A ranking covers a set of sweeps (of one experiment version). Its *observations* are the
completed (config, item, repeat) runs of those sweeps, each once: with one sweep, its runs (a
sweep runs each observation once) and a config is its id; with several, the latest completed
run of each observation, and a config is its key, which names it across sweeps (DESIGN §5b).

The queries over the observations are written once, `{observations}` standing for the
observation query of the sweep set (`_observations` fills it in) and `{configs}` for one `?` per
config asked about (a list SQLite can push into the observations, which a JSON array it cannot:
twice as fast). Every other value is a `?` parameter, a set of sweeps being one JSON array. The
`runs_for_ranking` index covers every column the observation queries read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .database import Database

#: Columns: cfg (the config), item_index, score, tokens, cost, latency_ms, truncated, unpriced.
SWEEP_OBSERVATIONS = (
    "SELECT r.config_id AS cfg, r.item_index, r.score, r.tokens_in + r.tokens_out AS tokens, "
    "r.cost, r.latency_ms, r.truncated, r.unpriced "
    "FROM runs r WHERE r.sweep_id = ? AND r.status = 'completed'"
)
SWEEPS_OBSERVATIONS = (
    "SELECT cfg, item_index, score, tokens, cost, latency_ms, truncated, unpriced FROM ("
    "SELECT c.key AS cfg, r.item_index, r.score, r.tokens_in + r.tokens_out AS tokens, "
    "r.cost, r.latency_ms, r.truncated, r.unpriced, row_number() OVER (PARTITION BY "
    "c.key, r.item_index, r.repeat ORDER BY r.finished_at DESC, r.sweep_id DESC) AS k "
    "FROM runs r JOIN configs c ON c.id = r.config_id "
    "WHERE r.sweep_id IN (SELECT value FROM json_each(?)) AND r.status = 'completed') "
    "AS latest WHERE k = 1"
)
CONFIG_TOTALS = (
    "WITH obs AS ({observations}) "
    "SELECT cfg, count(*) AS observed, count(score) AS n, avg(score) AS score, "
    "sum(CASE WHEN score IS NOT NULL THEN tokens END) AS tokens, "
    "sum(CASE WHEN score IS NOT NULL THEN cost END) AS cost, "
    "sum(CASE WHEN score IS NOT NULL THEN truncated END) AS truncated, "
    "count(CASE WHEN score IS NOT NULL THEN unpriced END) AS unpriced "
    "FROM obs GROUP BY cfg"
)
PAIRED_WITH_LEADER = (
    "WITH leader AS MATERIALIZED (SELECT item_index, avg(score) AS s FROM "
    "({observations}) AS o WHERE cfg = ? AND score IS NOT NULL GROUP BY item_index) "
    "SELECT m.cfg, count(*) AS n, avg(m.s - l.s) AS mean_diff, "
    "avg((m.s - l.s) * (m.s - l.s)) AS second_moment FROM ("
    "SELECT cfg, item_index, avg(score) AS s FROM ({observations}) AS o "
    "WHERE cfg != ? AND score IS NOT NULL GROUP BY cfg, item_index) m "
    "JOIN leader l ON l.item_index = m.item_index GROUP BY m.cfg"
)
ITEM_SCORES = (
    "WITH obs AS ({observations}) SELECT cfg, avg(score) AS s FROM obs "
    "WHERE score IS NOT NULL AND cfg IN ({configs}) GROUP BY cfg, item_index"
)
ITEM_MEANS = (
    "WITH obs AS ({observations}) SELECT cfg, item_index, avg(score) AS s FROM obs "
    "WHERE score IS NOT NULL AND cfg IN ({configs}) GROUP BY cfg, item_index"
)
# The lower median, as `ORDER BY latency_ms LIMIT 1 OFFSET (n - 1) / 2` would pick it.
MEDIAN_LATENCIES = (
    "WITH obs AS ({observations}) SELECT cfg, latency_ms FROM (SELECT cfg, latency_ms, "
    "row_number() OVER (PARTITION BY cfg ORDER BY latency_ms) AS k, "
    "count(*) OVER (PARTITION BY cfg) AS n "
    "FROM obs WHERE score IS NOT NULL AND cfg IN ({configs})) AS ranked WHERE k = (n + 1) / 2"
)
# A race's configs (racing, and guided search, which races what it proposes) carry their
# decisions; `raced` says the sweep was one.
SWEEP_CONFIGS = (
    "SELECT c.id AS cfg, c.key, c.params, c.dropped, c.decision, "
    "CASE WHEN json_extract(s.settings, '$.strategy') IN ('racing', 'guided', 'evolve') "
    "THEN 1 ELSE 0 END AS raced "
    "FROM configs c JOIN sweeps s ON s.id = c.sweep_id WHERE c.sweep_id = ?"
)
# Decisions belong to one race: across sweeps there are none.
SWEEPS_CONFIGS = (
    "SELECT key AS cfg, key, min(params) AS params, min(dropped) AS dropped, "
    "NULL AS decision, 0 AS raced "
    "FROM configs WHERE sweep_id IN (SELECT value FROM json_each(?)) GROUP BY key"
)
SWEEP_SCORER_FAILURES = (
    "SELECT s.scorer, count(*) AS n FROM scores s JOIN runs r ON r.id = s.run_id "
    "WHERE s.error IS NOT NULL AND s.kind = 'auto' "
    "AND r.sweep_id = ? AND r.status = 'completed' GROUP BY s.scorer"
)
# Only the run that stands for its observation: no later completed run of it.
SWEEPS_SCORER_FAILURES = (
    "SELECT s.scorer, count(*) AS n FROM scores s JOIN runs r ON r.id = s.run_id "
    "JOIN configs c ON c.id = r.config_id "
    "WHERE s.error IS NOT NULL AND s.kind = 'auto' "
    "AND r.sweep_id IN (SELECT value FROM json_each(?)) AND r.status = 'completed' "
    "AND NOT EXISTS (SELECT 1 FROM configs c2 JOIN runs r2 ON r2.config_id = c2.id "
    "WHERE c2.sweep_id IN (SELECT value FROM json_each(?)) AND c2.key = c.key "
    "AND r2.item_index = r.item_index AND r2.repeat = r.repeat "
    "AND r2.status = 'completed' "
    "AND (r2.finished_at, r2.sweep_id) > (r.finished_at, r.sweep_id)) "
    "GROUP BY s.scorer"
)
HUMAN_RATERS = (
    "SELECT DISTINCT s.scorer FROM scores s JOIN runs r ON r.id = s.run_id "
    "WHERE s.kind = 'human' AND s.superseded_at IS NULL "
    "AND r.sweep_id IN (SELECT value FROM json_each(?)) ORDER BY s.scorer"
)
UNPRICED_MODELS = (
    "SELECT unpriced FROM sweeps "
    "WHERE id IN (SELECT value FROM json_each(?)) AND unpriced IS NOT NULL"
)
RANKING_DATA_VERSION = (
    "SELECT (SELECT count(*) FROM runs WHERE sweep_id IN (SELECT value FROM json_each(?)) "
    "AND status = 'completed') AS completed, "
    "(SELECT coalesce(max(id), 0) FROM scores) AS last_score"
)


def _observations(
    template: str, sweep_ids: Sequence[str], configs: Sequence[Any] = ()
) -> tuple[str, Any]:
    """`template` with the observation query of `sweep_ids` and the marks of `configs` in
    place, and the observation query's parameter (each `{observations}` takes it once, before
    the template's own)."""
    marks = ",".join("?" * len(configs))
    if len(sweep_ids) == 1:
        return template.format(observations=SWEEP_OBSERVATIONS, configs=marks), sweep_ids[0]
    sql = template.format(observations=SWEEPS_OBSERVATIONS, configs=marks)
    return sql, json.dumps(list(sweep_ids))


async def config_totals(db: Database, sweep_ids: Sequence[str]) -> list[sqlite3.Row]:
    """One row per config with an observation: cfg, observed (observations), n (scored
    ones), score (their mean), and over the scored ones: tokens, cost, truncated (runs with a
    cut answer) and unpriced (runs whose cost leaves a model out)."""
    sql, observations = _observations(CONFIG_TOTALS, sweep_ids)
    return await db.fetchall(sql, [observations])


async def paired_with_leader(
    db: Database, sweep_ids: Sequence[str], leader: Any
) -> list[sqlite3.Row]:
    """One row per other config sharing scored items with `leader`: cfg, n (shared items),
    mean_diff and second_moment of its per-item mean score minus the leader's."""
    sql, observations = _observations(PAIRED_WITH_LEADER, sweep_ids)
    return await db.fetchall(sql, [observations, leader, observations, leader])


async def item_scores(
    db: Database, sweep_ids: Sequence[str], configs: Sequence[Any]
) -> dict[Any, list[float]]:
    """The per-item mean scores of each of `configs` (by cfg)."""
    sql, observations = _observations(ITEM_SCORES, sweep_ids, configs)
    scores: dict[Any, list[float]] = {}
    for row in await db.fetchall(sql, [observations, *configs]):
        scores.setdefault(row["cfg"], []).append(row["s"])
    return scores


async def item_means(
    db: Database, sweep_ids: Sequence[str], configs: Sequence[Any]
) -> dict[Any, dict[int, float]]:
    """The mean score of each of `configs` (by cfg) on each item it ran: {item: mean}."""
    sql, observations = _observations(ITEM_MEANS, sweep_ids, configs)
    means: dict[Any, dict[int, float]] = {}
    for row in await db.fetchall(sql, [observations, *configs]):
        means.setdefault(row["cfg"], {})[row["item_index"]] = row["s"]
    return means


async def median_latencies(
    db: Database, sweep_ids: Sequence[str], configs: Sequence[Any]
) -> dict[Any, float]:
    """The (lower) median latency in ms of the scored runs of each of `configs` (by cfg)."""
    sql, observations = _observations(MEDIAN_LATENCIES, sweep_ids, configs)
    rows = await db.fetchall(sql, [observations, *configs])
    return {row["cfg"]: row["latency_ms"] for row in rows}


async def ranked_configs(db: Database, sweep_ids: Sequence[str]) -> dict[Any, sqlite3.Row]:
    """The configs of `sweep_ids` by cfg: key, params (JSON), dropped (by racing in every
    sweep that ran it), and for one sweep, whether it raced (`raced`) and why racing stopped
    running the config (`decision`, JSON, or NULL)."""
    if len(sweep_ids) == 1:
        rows = await db.fetchall(SWEEP_CONFIGS, [sweep_ids[0]])
    else:
        rows = await db.fetchall(SWEEPS_CONFIGS, [json.dumps(list(sweep_ids))])
    return {row["cfg"]: row for row in rows}


async def scorer_failures(db: Database, sweep_ids: Sequence[str]) -> dict[str, int]:
    """How many observations each automatic scorer failed on, by scorer name."""
    if len(sweep_ids) == 1:
        rows = await db.fetchall(SWEEP_SCORER_FAILURES, [sweep_ids[0]])
    else:
        sweeps = json.dumps(list(sweep_ids))
        rows = await db.fetchall(SWEEPS_SCORER_FAILURES, [sweeps, sweeps])
    return {row["scorer"]: row["n"] for row in rows}


async def human_raters(db: Database, sweep_ids: Sequence[str]) -> list[str]:
    """The people whose current ratings are on runs of `sweep_ids`, by name."""
    rows = await db.fetchall(HUMAN_RATERS, [json.dumps(list(sweep_ids))])
    return [row["scorer"] for row in rows]


async def unpriced_models(db: Database, sweep_ids: Sequence[str]) -> list[str]:
    """The models without a price that runs of `sweep_ids` called, sorted."""
    models: set[str] = set()
    for row in await db.fetchall(UNPRICED_MODELS, [json.dumps(list(sweep_ids))]):
        models.update(json.loads(row["unpriced"]))
    return sorted(models)


async def ranking_data_version(db: Database, sweep_ids: Sequence[str]) -> tuple[int, int]:
    """What changes whenever a ranking of `sweep_ids` may: (completed runs, newest score id)."""
    row = await db.fetchone(RANKING_DATA_VERSION, [json.dumps(list(sweep_ids))])
    assert row is not None
    return int(row["completed"]), int(row["last_score"])
