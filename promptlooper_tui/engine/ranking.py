"""The leaderboard: configs ranked by mean run score, from SQL aggregates.

SQLite does the heavy passes: one GROUP BY for every config's mean, n, tokens and cost, and one
for the paired comparison of every config with the leader over their shared items (the mean and
second moment of the per-item differences, all a paired t-test needs). Python then only touches
one row per config, plus per-item scores for the few configs shown (their confidence
intervals). The `runs_for_ranking` index covers every column these passes read.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from ..domain.records import LeaderboardEntry
from ..store.database import Database
from .stats import holm, mean_ci, student_t_two_sided

ALPHA = 0.05

_CONFIG_TOTALS = """
SELECT c.id, c.key, c.params, c.dropped, count(*) AS n, avg(r.score) AS score,
       sum(r.tokens_in + r.tokens_out) AS tokens, sum(r.cost) AS cost
FROM runs r JOIN configs c ON c.id = r.config_id
WHERE r.sweep_id = ? AND r.status = 'completed' AND r.score IS NOT NULL
GROUP BY c.id
ORDER BY score DESC, n DESC, c.key
"""

_PAIRED_WITH_LEADER = """
WITH leader AS MATERIALIZED (
    SELECT item_index, avg(score) AS s FROM runs
    WHERE sweep_id = ?1 AND status = 'completed' AND config_id = ?2 AND score IS NOT NULL
    GROUP BY item_index
)
SELECT m.config_id, count(*) AS n, avg(m.s - l.s) AS mean_diff,
       avg((m.s - l.s) * (m.s - l.s)) AS second_moment
FROM (
    SELECT config_id, item_index, avg(score) AS s FROM runs
    WHERE sweep_id = ?1 AND status = 'completed' AND score IS NOT NULL AND config_id != ?2
    GROUP BY config_id, item_index
) m JOIN leader l ON l.item_index = m.item_index
GROUP BY m.config_id
"""


def paired_p_value(n: int, mean_diff: float, second_moment: float) -> float:
    """Two-sided paired t-test p-value from the moments of the per-item differences."""
    if n < 2:
        return 1.0
    variance = max(0.0, (second_moment - mean_diff * mean_diff) * n / (n - 1))
    if variance <= 1e-18:
        return 1.0 if abs(mean_diff) <= 1e-12 else 0.0
    return student_t_two_sided(mean_diff / math.sqrt(variance / n), n - 1)


async def leaderboard(
    db: Database, sweep_id: str, *, top: int | None = 10, alpha: float = ALPHA
) -> list[LeaderboardEntry]:
    """Configs of a sweep, best first; the first `top` (all when None) are returned."""
    totals = await db.fetchall(_CONFIG_TOTALS, (sweep_id,))
    if not totals:
        return []
    leader_id = totals[0]["id"]
    paired = {
        row["config_id"]: paired_p_value(row["n"], row["mean_diff"], row["second_moment"])
        for row in await db.fetchall(_PAIRED_WITH_LEADER, (sweep_id, leader_id))
    }
    others = [row["id"] for row in totals[1:]]
    adjusted = dict(zip(others, holm([paired.get(cid, 1.0) for cid in others]), strict=True))
    shown = totals if top is None else totals[:top]
    item_scores = await _item_scores(db, sweep_id, [row["id"] for row in shown])
    samples = [(item_scores.get(row["id"], [row["score"]]), row["key"]) for row in shown]
    # Bootstrap intervals cost tens of ms of CPU: off the event loop, which keeps serving
    # the TUI and the daemon's clients meanwhile.
    intervals = await asyncio.to_thread(_intervals, samples)
    entries = []
    for rank, (row, (low, high)) in enumerate(zip(shown, intervals, strict=True), start=1):
        p_value = None if row["id"] == leader_id else adjusted[row["id"]]
        entries.append(
            LeaderboardEntry(
                rank=rank,
                config=json.loads(row["params"]),
                score=round(row["score"], 4),
                ci_low=round(low, 4),
                ci_high=round(high, 4),
                n=row["n"],
                tied_with_leader=p_value is None or p_value >= alpha,
                p_value=None if p_value is None else round(p_value, 4),
                tokens=row["tokens"] or 0,
                cost=round(row["cost"] or 0.0, 6),
                p50_latency_ms=await _median_latency(db, row["id"], row["n"]),
                dropped=bool(row["dropped"]),
            )
        )
    return entries


def _intervals(samples: list[tuple[list[float], str]]) -> list[tuple[float, float]]:
    """The 95% interval of each config's item scores, seeded by its key (reproducible)."""
    return [mean_ci(values, seed=key) for values, key in samples]


async def _item_scores(
    db: Database, sweep_id: str, config_ids: list[int]
) -> dict[int, list[float]]:
    if not config_ids:
        return {}
    marks = ",".join("?" * len(config_ids))
    rows = await db.fetchall(
        "SELECT config_id, avg(score) AS s FROM runs "
        f"WHERE sweep_id = ? AND config_id IN ({marks}) AND status = 'completed' "
        "AND score IS NOT NULL GROUP BY config_id, item_index",
        (sweep_id, *config_ids),
    )
    scores: dict[int, list[float]] = {}
    for row in rows:
        scores.setdefault(row["config_id"], []).append(row["s"])
    return scores


async def _median_latency(db: Database, config_id: int, n: int) -> float | None:
    row: Any = await db.fetchone(
        "SELECT latency_ms FROM runs WHERE config_id = ? AND status = 'completed' "
        "AND score IS NOT NULL ORDER BY latency_ms LIMIT 1 OFFSET ?",
        (config_id, (n - 1) // 2),
    )
    return None if row is None else round(row["latency_ms"], 2)
