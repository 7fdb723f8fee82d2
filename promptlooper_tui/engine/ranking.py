"""The leaderboard: configs ranked by mean run score, from SQL aggregates.

What is ranked is a `Scope`: the sweeps of one experiment version (all of them, or the one a
user asked for). Each (config, item, repeat) observation counts once: when several sweeps ran
it, its latest completed run stands (DESIGN §5b). Configs are told apart across sweeps by
their key.

SQLite does the heavy passes: one GROUP BY for every config's mean, n, tokens and cost, and one
for the paired comparison of every config with the leader over their shared items (the mean and
second moment of the per-item differences, all a paired t-test needs). Python then only touches
one row per config, plus per-item scores for the few configs shown (their confidence
intervals). The `runs_for_ranking` index covers every column these passes read; a scope of one
sweep skips the deduplication (a sweep runs each observation once).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.records import Leaderboard, LeaderboardEntry, RankedScope, ScorerFailures
from ..store.database import Database
from .stats import holm, mean_ci, student_t_two_sided

ALPHA = 0.05


@dataclass(frozen=True)
class Scope:
    """The runs a leaderboard ranks: those of `sweep_ids`, all of `version` of one experiment.
    `asked_sweep`: the one sweep a user named (`--sweep`), else None (every sweep of the
    version). `scorers`: the version's automatic scorers, in the experiment's order."""

    version: int
    sweep_ids: tuple[str, ...]
    asked_sweep: str | None = None
    scorers: tuple[str, ...] = ()

    def sweep_marks(self) -> str:
        """One `?` per sweep, for `IN (...)`."""
        return ",".join("?" * len(self.sweep_ids))

    def observations(self) -> tuple[str, list[Any]]:
        """SQL (with its parameters) of the completed observations: columns cfg (a config's
        identity), item_index, score, tokens, cost, latency_ms, truncated, unpriced."""
        if len(self.sweep_ids) == 1:
            return (
                "SELECT r.config_id AS cfg, r.item_index, r.score, "
                "r.tokens_in + r.tokens_out AS tokens, r.cost, r.latency_ms, r.truncated, "
                "r.unpriced FROM runs r WHERE r.sweep_id = ? AND r.status = 'completed'",
                [self.sweep_ids[0]],
            )
        return (
            "SELECT cfg, item_index, score, tokens, cost, latency_ms, truncated, unpriced FROM ("
            "SELECT c.key AS cfg, r.item_index, r.score, r.tokens_in + r.tokens_out AS tokens, "
            "r.cost, r.latency_ms, r.truncated, r.unpriced, row_number() OVER (PARTITION BY "
            "c.key, r.item_index, r.repeat ORDER BY r.finished_at DESC, r.sweep_id DESC) AS k "
            "FROM runs r JOIN configs c ON c.id = r.config_id "
            f"WHERE r.sweep_id IN ({self.sweep_marks()}) AND r.status = 'completed') WHERE k = 1",
            list(self.sweep_ids),
        )

    def configs(self) -> tuple[str, list[Any]]:
        """SQL of the configs: cfg (as `observations` names it), key, params, dropped (by
        racing in every sweep that ran it)."""
        if len(self.sweep_ids) == 1:
            return (
                "SELECT id AS cfg, key, params, dropped FROM configs WHERE sweep_id = ?",
                [self.sweep_ids[0]],
            )
        return (
            "SELECT key AS cfg, key, min(params) AS params, min(dropped) AS dropped "
            f"FROM configs WHERE sweep_id IN ({self.sweep_marks()}) GROUP BY key",
            list(self.sweep_ids),
        )

    def failed_scores(self) -> tuple[str, list[Any]]:
        """SQL of the automatic scorers' failures on the observations: scorer, n."""
        sql = (
            "SELECT s.scorer, count(*) AS n FROM scores s JOIN runs r ON r.id = s.run_id "
            "JOIN configs c ON c.id = r.config_id "
            "WHERE s.error IS NOT NULL AND s.kind = 'auto' "
            f"AND r.sweep_id IN ({self.sweep_marks()}) AND r.status = 'completed'"
        )
        params = list(self.sweep_ids)
        if len(self.sweep_ids) > 1:
            # Only the run that stands for its observation: no later completed run of it.
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM configs c2 JOIN runs r2 ON r2.config_id = c2.id "
                f"WHERE c2.sweep_id IN ({self.sweep_marks()}) AND c2.key = c.key "
                "AND r2.item_index = r.item_index AND r2.repeat = r.repeat "
                "AND r2.status = 'completed' "
                "AND (r2.finished_at, r2.sweep_id) > (r.finished_at, r.sweep_id))"
            )
            params += list(self.sweep_ids)
        return sql + " GROUP BY s.scorer", params

    def data_version(self) -> tuple[str, list[Any]]:
        """SQL of what changes whenever the ranking may: completed runs, the newest score."""
        return (
            "SELECT (SELECT count(*) FROM runs WHERE sweep_id IN "
            f"({self.sweep_marks()}) AND status = 'completed') AS completed, "
            "(SELECT coalesce(max(id), 0) FROM scores) AS last_score",
            list(self.sweep_ids),
        )

    def ranked(self, runs: int) -> RankedScope:
        return RankedScope(
            version=self.version, sweeps=len(self.sweep_ids), runs=runs, sweep=self.asked_sweep
        )


def paired_p_value(n: int, mean_diff: float, second_moment: float) -> float:
    """Two-sided paired t-test p-value from the moments of the per-item differences."""
    if n < 2:
        return 1.0
    variance = max(0.0, (second_moment - mean_diff * mean_diff) * n / (n - 1))
    if variance <= 1e-18:
        return 1.0 if abs(mean_diff) <= 1e-12 else 0.0
    return student_t_two_sided(mean_diff / math.sqrt(variance / n), n - 1)


async def leaderboard(
    db: Database, scope: Scope, *, top: int | None = 10, alpha: float = ALPHA
) -> Leaderboard:
    """The configs of `scope`, best first; `entries` holds the first `top` (all when None)."""
    if not scope.sweep_ids:
        return Leaderboard(entries=[], ranked=scope.ranked(0), scorers=list(scope.scorers))
    observations, params = scope.observations()
    totals = await db.fetchall(
        f"WITH obs AS ({observations}) "
        "SELECT cfg, count(*) AS observed, count(score) AS n, avg(score) AS score, "
        "sum(CASE WHEN score IS NOT NULL THEN tokens END) AS tokens, "
        "sum(CASE WHEN score IS NOT NULL THEN cost END) AS cost, "
        "sum(CASE WHEN score IS NOT NULL THEN truncated END) AS truncated, "
        "count(CASE WHEN score IS NOT NULL THEN unpriced END) AS unpriced "
        "FROM obs GROUP BY cfg",
        params,
    )
    observed = sum(row["observed"] for row in totals)
    scored = [row for row in totals if row["n"]]
    failures, scorers, unpriced = await _what_it_stands_on(db, scope, observed)
    board = {
        "ranked": scope.ranked(sum(row["n"] for row in scored)),
        "configs": len(scored),
        "scorers": scorers,
        "scorer_failures": failures,
        "unpriced_models": unpriced,
    }
    if not scored:
        return Leaderboard(entries=[], **board)
    info = await _config_info(db, scope)
    scored.sort(key=lambda row: (-row["score"], -row["n"], info[row["cfg"]]["key"]))
    leader = scored[0]["cfg"]
    paired = {
        row["cfg"]: paired_p_value(row["n"], row["mean_diff"], row["second_moment"])
        for row in await db.fetchall(
            f"WITH leader AS MATERIALIZED (SELECT item_index, avg(score) AS s FROM "
            f"({observations}) WHERE cfg = ? AND score IS NOT NULL GROUP BY item_index) "
            "SELECT m.cfg, count(*) AS n, avg(m.s - l.s) AS mean_diff, "
            "avg((m.s - l.s) * (m.s - l.s)) AS second_moment FROM ("
            f"SELECT cfg, item_index, avg(score) AS s FROM ({observations}) "
            "WHERE cfg != ? AND score IS NOT NULL GROUP BY cfg, item_index) m "
            "JOIN leader l ON l.item_index = m.item_index GROUP BY m.cfg",
            [*params, leader, *params, leader],
        )
    }
    others = [row["cfg"] for row in scored[1:]]
    adjusted = dict(zip(others, holm([paired.get(cfg, 1.0) for cfg in others]), strict=True))
    shown = scored if top is None else scored[:top]
    shown_ids = [row["cfg"] for row in shown]
    item_scores, medians = await _shown_details(db, observations, params, shown_ids)
    samples = [item_scores.get(row["cfg"], [row["score"]]) for row in shown]
    # Bootstrap intervals cost tens of ms of CPU: off the event loop, which keeps serving
    # the TUI and the daemon's clients meanwhile.
    intervals = await asyncio.to_thread(_intervals, samples)
    entries = []
    for rank, (row, (low, high)) in enumerate(zip(shown, intervals, strict=True), start=1):
        config = info[row["cfg"]]
        p_value = None if row["cfg"] == leader else adjusted[row["cfg"]]
        entries.append(
            LeaderboardEntry(
                rank=rank,
                config=json.loads(config["params"]),
                score=round(row["score"], 4),
                ci_low=round(low, 4),
                ci_high=round(high, 4),
                n=row["n"],
                tied_with_leader=p_value is None or p_value >= alpha,
                leader=p_value is None,
                p_value=None if p_value is None else round(p_value, 4),
                tokens=row["tokens"] or 0,
                cost=None if row["unpriced"] else round(row["cost"] or 0.0, 6),
                p50_latency_ms=medians.get(row["cfg"]),
                dropped=bool(config["dropped"]),
                truncated=row["truncated"] or 0,
            )
        )
    return Leaderboard(entries=entries, **board)


def _intervals(samples: list[list[float]]) -> list[tuple[float, float]]:
    """The 95% interval of each config's item scores, seeded by the scores themselves: the
    same scores always give the same interval, whatever the config."""
    return [mean_ci(values, seed=",".join(f"{v:.9g}" for v in values)) for values in samples]


async def _config_info(db: Database, scope: Scope) -> dict[Any, Any]:
    sql, params = scope.configs()
    return {row["cfg"]: row for row in await db.fetchall(sql, params)}


async def _shown_details(
    db: Database, observations: str, params: list[Any], shown: Sequence[Any]
) -> tuple[dict[Any, list[float]], dict[Any, float]]:
    """Per-item mean scores and the median run latency of the shown configs."""
    marks = ",".join("?" * len(shown))
    rows = await db.fetchall(
        f"WITH obs AS ({observations}) SELECT cfg, avg(score) AS s FROM obs "
        f"WHERE score IS NOT NULL AND cfg IN ({marks}) GROUP BY cfg, item_index",
        [*params, *shown],
    )
    scores: dict[Any, list[float]] = {}
    for row in rows:
        scores.setdefault(row["cfg"], []).append(row["s"])
    # The lower median, as `ORDER BY latency_ms LIMIT 1 OFFSET (n - 1) / 2` would pick it.
    rows = await db.fetchall(
        f"WITH obs AS ({observations}) SELECT cfg, latency_ms FROM (SELECT cfg, latency_ms, "
        "row_number() OVER (PARTITION BY cfg ORDER BY latency_ms) AS k, "
        "count(*) OVER (PARTITION BY cfg) AS n "
        f"FROM obs WHERE score IS NOT NULL AND cfg IN ({marks})) WHERE k = (n + 1) / 2",
        [*params, *shown],
    )
    medians = {row["cfg"]: round(row["latency_ms"], 2) for row in rows}
    return scores, medians


async def _what_it_stands_on(
    db: Database, scope: Scope, observed: int
) -> tuple[dict[str, ScorerFailures], list[str], list[str]]:
    """The automatic scorers' failures on the `observed` completed observations, the scorers
    whose values the scores include (the version's automatic scorers that scored at least one
    run, then the people who rated one), and the models without a price."""
    sql, params = scope.failed_scores()
    failures = {
        row["scorer"]: ScorerFailures(failed=row["n"], runs=observed)
        for row in await db.fetchall(sql, params)
    }
    marks = scope.sweep_marks()
    raters = await db.fetchall(
        "SELECT DISTINCT s.scorer FROM scores s JOIN runs r ON r.id = s.run_id "
        f"WHERE s.kind = 'human' AND s.superseded_at IS NULL AND r.sweep_id IN ({marks}) "
        "ORDER BY s.scorer",
        list(scope.sweep_ids),
    )
    automatic = [
        name
        for name in scope.scorers
        if not observed or name not in failures or failures[name].failed < observed
    ]
    scorers = automatic + [row["scorer"] for row in raters if row["scorer"] not in automatic]
    unpriced: set[str] = set()
    for row in await db.fetchall(
        f"SELECT unpriced FROM sweeps WHERE id IN ({marks}) AND unpriced IS NOT NULL",
        list(scope.sweep_ids),
    ):
        unpriced.update(json.loads(row["unpriced"]))
    return failures, scorers, sorted(unpriced)
