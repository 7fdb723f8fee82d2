"""The leaderboard: configs ranked by mean run score, with intervals and ties with the leader.

What is ranked is a `Scope`: the sweeps of one experiment version (all of them, or the one a
user asked for). Each (config, item, repeat) observation counts once: when several sweeps ran
it, its latest completed run stands (DESIGN §5b). Configs are told apart across sweeps by
their key.

The store does the heavy passes (`store.ranking`): every config's mean, n, tokens and cost,
and the paired comparison of every config with the leader over their shared items (the mean
and second moment of the per-item differences, all a paired t-test needs). Python then only
touches one row per config, plus per-item scores for the few configs shown (their confidence
intervals).
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from ..domain.records import (
    Leaderboard,
    LeaderboardEntry,
    RaceDecision,
    RankedScope,
    ScorerFailures,
)
from ..store import evolve as evolve_store
from ..store import ranking
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
    sweeps = scope.sweep_ids
    if not sweeps:
        return Leaderboard(entries=[], ranked=scope.ranked(0), scorers=list(scope.scorers))
    totals = await ranking.config_totals(db, sweeps)
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
    info = await ranking.ranked_configs(db, sweeps)
    split = await _split(db, scope, [row["cfg"] for row in scored])
    # An evolve sweep's winner is the finalist best on the held-out items. A race's winner is
    # among the configs it kept running: those it dropped (on fewer items, where a mean can
    # be luckier) rank after every one it kept.
    scored.sort(
        key=lambda row: (
            row["cfg"] not in split or split[row["cfg"]].held_n == 0,
            -split[row["cfg"]].held if row["cfg"] in split else 0.0,
            bool(info[row["cfg"]]["dropped"]),
            -row["score"],
            -row["n"],
            info[row["cfg"]]["key"],
        )
    )
    decisions = _decisions(info)
    leader = scored[0]["cfg"]
    paired = {
        row["cfg"]: paired_p_value(row["n"], row["mean_diff"], row["second_moment"])
        for row in await ranking.paired_with_leader(db, sweeps, leader)
    }
    others = [row["cfg"] for row in scored[1:]]
    adjusted = dict(zip(others, holm([paired.get(cfg, 1.0) for cfg in others]), strict=True))
    shown = scored if top is None else scored[:top]
    shown_ids = [row["cfg"] for row in shown]
    item_scores = await ranking.item_scores(db, sweeps, shown_ids)
    medians = await ranking.median_latencies(db, sweeps, shown_ids)
    samples = [item_scores.get(row["cfg"], [row["score"]]) for row in shown]
    # Bootstrap intervals cost tens of ms of CPU: off the event loop, which keeps serving
    # the TUI and the daemon's clients meanwhile.
    intervals = await asyncio.to_thread(_intervals, samples)
    entries = []
    for rank, (row, (low, high)) in enumerate(zip(shown, intervals, strict=True), start=1):
        config = info[row["cfg"]]
        p_value = None if row["cfg"] == leader else adjusted[row["cfg"]]
        median = medians.get(row["cfg"])
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
                p50_latency_ms=None if median is None else round(median, 2),
                dropped=bool(config["dropped"]),
                decision=decisions.get(row["cfg"]),
                truncated=row["truncated"] or 0,
                **(split[row["cfg"]].fields() if row["cfg"] in split else {}),
            )
        )
    return Leaderboard(entries=entries, **board)


@dataclass(frozen=True)
class _Split:
    """A config's mean over the training items and over the held-out ones."""

    train: float
    train_n: int
    held: float
    held_n: int

    def fields(self) -> dict[str, Any]:
        return {
            "train_score": round(self.train, 4) if self.train_n else None,
            "train_n": self.train_n,
            "holdout_score": round(self.held, 4) if self.held_n else None,
            "holdout_n": self.held_n,
        }


async def _split(db: Database, scope: Scope, configs: list[Any]) -> dict[Any, _Split]:
    """For one evolve sweep ranked alone: each config's training and held-out means."""
    if scope.asked_sweep is None or len(scope.sweep_ids) != 1:
        return {}
    held_out = await evolve_store.holdout(db, scope.sweep_ids[0])
    if held_out is None:
        return {}
    held = set(held_out)
    split = {}
    for cfg, means in (await ranking.item_means(db, scope.sweep_ids, configs)).items():
        train = [score for item, score in means.items() if item not in held]
        tested = [score for item, score in means.items() if item in held]
        split[cfg] = _Split(
            sum(train) / len(train) if train else 0.0,
            len(train),
            sum(tested) / len(tested) if tested else 0.0,
            len(tested),
        )
    return split


def _decisions(info: dict[Any, Any]) -> dict[Any, RaceDecision]:
    """Where each config of a race stands (by cfg); none outside a race."""
    raced = [row for row in info.values() if row["raced"]]
    if not raced:
        return {}
    params = {row["key"]: row["params"] for row in raced}
    decisions = {}
    for row in raced:
        if row["decision"] is None:
            decisions[row["cfg"]] = RaceDecision(state="alive")
            continue
        decided = json.loads(row["decision"])
        against = params.get(decided["against"])
        decisions[row["cfg"]] = RaceDecision(
            state=decided["state"],
            at_n=decided["at_n"],
            p=decided["p"],
            against=None if against is None else json.loads(against),
        )
    return decisions


def _intervals(samples: list[list[float]]) -> list[tuple[float, float]]:
    """The 95% interval of each config's item scores, seeded by the scores themselves: the
    same scores always give the same interval, whatever the config."""
    return [mean_ci(values, seed=",".join(f"{v:.9g}" for v in values)) for values in samples]


async def _what_it_stands_on(
    db: Database, scope: Scope, observed: int
) -> tuple[dict[str, ScorerFailures], list[str], list[str]]:
    """The automatic scorers' failures on the `observed` completed observations, the scorers
    whose values the scores include (the version's automatic scorers that scored at least one
    run, then the people who rated one), and the models without a price."""
    failures = {
        scorer: ScorerFailures(failed=failed, runs=observed)
        for scorer, failed in (await ranking.scorer_failures(db, scope.sweep_ids)).items()
    }
    raters = await ranking.human_raters(db, scope.sweep_ids)
    automatic = [
        name
        for name in scope.scorers
        if not observed or name not in failures or failures[name].failed < observed
    ]
    scorers = automatic + [name for name in raters if name not in automatic]
    return failures, scorers, await ranking.unpriced_models(db, scope.sweep_ids)
