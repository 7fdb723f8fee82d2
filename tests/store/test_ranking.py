"""The leaderboard on constructed data in a real SQLite file: rows with known scores go in
through the database writer, `leaderboard` must give back the statistics a user would check by
hand (ranks, n, means, intervals, ties with the leader, tokens, cost, median latency)."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from promptlooper_tui.domain.records import LeaderboardEntry
from promptlooper_tui.engine.ranking import Scope
from promptlooper_tui.engine.ranking import leaderboard as rank
from promptlooper_tui.store.database import Database, Statement
from promptlooper_tui.store.sqlite import SqliteDatabase

NOW = "2024-05-01T12:00:00+00:00"


async def leaderboard(db: Database, sweep_id: str, top: int | None = 10) -> list[LeaderboardEntry]:
    """The entries of one sweep's leaderboard."""
    return (await rank(db, Scope(version=1, sweep_ids=(sweep_id,)), top=top)).entries


@dataclass(frozen=True)
class Run:
    item: int
    score: float | None
    repeat: int = 0
    status: str = "completed"
    tokens_in: int = 10
    tokens_out: int = 5
    cost: float = 0.001
    latency_ms: float = 100.0


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await SqliteDatabase.open(tmp_path / "ranking.db")
    await database.write(
        [
            (
                "INSERT INTO experiments (id, name, created_at) VALUES (?, ?, ?)",
                ("exp_1", "ranked", NOW),
            )
        ]
    )
    yield database
    await database.close()


async def add_sweep(db: Database, sweep_id: str, configs: dict[str, Sequence[Run]]) -> None:
    """One sweep whose config `name` ({"prompt": name}) has exactly the given runs."""
    statements: list[Statement] = [
        (
            "INSERT INTO sweeps (id, experiment_id, experiment_version, settings, status, "
            "created_at, updated_at) VALUES (?, 'exp_1', 1, '{}', 'completed', ?, ?)",
            (sweep_id, NOW, NOW),
        )
    ]
    config_ids = {name: _config_id(sweep_id, position) for position, name in enumerate(configs)}
    statements += [
        (
            "INSERT INTO configs (id, sweep_id, key, params) VALUES (?, ?, ?, ?)",
            (config_ids[name], sweep_id, name, json.dumps({"prompt": name})),
        )
        for name in configs
    ]
    statements += [
        (
            "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
            "status, score, tokens_in, tokens_out, cost, latency_ms, finished_at) "
            "VALUES (?, ?, ?, 'exp_1', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"{sweep_id}:{name}:{number}",
                sweep_id,
                config_ids[name],
                run.item,
                run.repeat,
                run.status,
                run.score,
                run.tokens_in,
                run.tokens_out,
                run.cost,
                run.latency_ms,
                NOW,
            ),
        )
        for name, runs in configs.items()
        for number, run in enumerate(runs)
    ]
    await db.write(statements)


def _config_id(sweep_id: str, position: int) -> int:
    return int(sweep_id.removeprefix("sw_")) * 1000 + position


def scored(scores: Sequence[float], **fields: float) -> list[Run]:
    """One completed run per item, item i scoring scores[i]."""
    return [Run(item, score, **fields) for item, score in enumerate(scores)]  # type: ignore[arg-type]


def by_prompt(entries: list[LeaderboardEntry]) -> dict[str, LeaderboardEntry]:
    return {entry.config["prompt"]: entry for entry in entries}


async def test_clearly_better_and_identical_configs(db: Database) -> None:
    noise = random.Random(3)
    strong = [round(0.85 + noise.uniform(-0.08, 0.08), 3) for _ in range(12)]
    weak = [round(s - 0.4 + noise.uniform(-0.05, 0.05), 3) for s in strong]
    await add_sweep(
        db, "sw_1", {"weak": scored(weak), "strong": scored(strong), "twin": scored(strong)}
    )

    entries = await leaderboard(db, "sw_1", top=None)

    assert [e.rank for e in entries] == [1, 2, 3]
    assert [e.config["prompt"] for e in entries][2] == "weak"
    ranked = by_prompt(entries)
    leader, twin, worse = entries[0], entries[1], ranked["weak"]
    assert {leader.config["prompt"], twin.config["prompt"]} == {"strong", "twin"}
    assert leader.tied_with_leader and leader.p_value is None
    assert twin.tied_with_leader and twin.p_value == 1.0
    assert twin.score == leader.score == round(statistics.mean(strong), 4)
    assert twin.ci_low < leader.score < twin.ci_high
    assert not worse.tied_with_leader
    assert worse.p_value is not None and worse.p_value < 0.001
    assert worse.score == round(statistics.mean(weak), 4)
    assert worse.ci_high < leader.ci_low, "intervals of clearly different configs overlap"
    for entry in entries:
        assert entry.ci_low < entry.score < entry.ci_high
        assert entry.n == 12


async def test_a_small_lead_within_the_noise_is_a_tie(db: Database) -> None:
    noise = random.Random(5)
    first = [noise.uniform(0.2, 0.9) for _ in range(8)]
    second = [s + noise.uniform(-0.3, 0.28) for s in first]
    second = [min(1.0, max(0.0, s)) for s in second]
    await add_sweep(db, "sw_1", {"a": scored(first), "b": scored(second)})

    runner_up = (await leaderboard(db, "sw_1"))[1]

    assert runner_up.tied_with_leader
    assert runner_up.p_value is not None and runner_up.p_value >= 0.05


async def test_ranks_follow_the_mean_score(db: Database) -> None:
    means = {"c": 0.5, "a": 0.9, "e": 0.1, "b": 0.7, "d": 0.3}
    await add_sweep(
        db, "sw_1", {name: scored([m - 0.05, m, m + 0.05]) for name, m in means.items()}
    )

    entries = await leaderboard(db, "sw_1", top=None)

    assert [e.config["prompt"] for e in entries] == ["a", "b", "c", "d", "e"]
    assert [e.score for e in entries] == [0.9, 0.7, 0.5, 0.3, 0.1]
    assert [e.rank for e in entries] == [1, 2, 3, 4, 5]
    assert [e.config["prompt"] for e in await leaderboard(db, "sw_1", top=2)] == ["a", "b"]
    for better, worse in itertools.pairwise(entries):
        assert better.ci_low > worse.ci_low and better.ci_high > worse.ci_high


async def test_n_tokens_cost_and_latency_count_only_scored_completed_runs(
    db: Database,
) -> None:
    runs = [
        Run(0, 0.6, repeat=0, tokens_in=100, tokens_out=20, cost=0.01, latency_ms=300.0),
        Run(0, 0.8, repeat=1, tokens_in=110, tokens_out=30, cost=0.02, latency_ms=100.0),
        Run(1, 0.4, repeat=0, tokens_in=90, tokens_out=10, cost=0.03, latency_ms=900.0),
        Run(1, 0.2, repeat=1, tokens_in=120, tokens_out=40, cost=0.04, latency_ms=200.0),
        Run(2, 1.0, repeat=0, tokens_in=80, tokens_out=50, cost=0.05, latency_ms=250.0),
        # Not part of the config's score: a failed run and a run no scorer could score.
        Run(2, None, repeat=1, status="failed", tokens_in=999, cost=9.0, latency_ms=5.0),
        Run(3, None, repeat=0, tokens_in=999, cost=9.0, latency_ms=5.0),
    ]
    await add_sweep(db, "sw_1", {"only": runs})
    # Another sweep's runs never leak into this one's leaderboard.
    await add_sweep(db, "sw_2", {"only": scored([0.0, 0.0, 0.0])})

    [entry] = await leaderboard(db, "sw_1")

    assert entry.n == 5
    assert entry.score == round((0.6 + 0.8 + 0.4 + 0.2 + 1.0) / 5, 4)
    assert entry.tokens == 120 + 140 + 100 + 160 + 130
    assert entry.cost == pytest.approx(0.15)
    assert entry.p50_latency_ms == 250.0
    assert entry.ci_low <= entry.score <= entry.ci_high
    assert [e.score for e in await leaderboard(db, "sw_2")] == [0.0]


async def test_a_sweep_without_scored_runs_has_an_empty_leaderboard(db: Database) -> None:
    await add_sweep(db, "sw_1", {"failing": [Run(0, None, status="failed")]})
    assert await leaderboard(db, "sw_1") == []


async def test_a_hundred_thousand_runs_rank_correctly(db: Database) -> None:
    configs, items, repeats = 20, 500, 10
    # Config c scores (c + item % 7 / 10) / 30 on every repeat: means are known in closed form
    # and config 19 leads, clearly ahead of everything but its neighbour.
    expected = {
        f"cfg{c:02d}": statistics.mean((c + (i % 7) / 10) / 30 for i in range(items))
        for c in range(configs)
    }
    await add_sweep(
        db,
        "sw_1",
        {
            f"cfg{c:02d}": [
                Run(i, (c + (i % 7) / 10) / 30, repeat=r, tokens_in=i % 13, latency_ms=float(r))
                for i in range(items)
                for r in range(repeats)
            ]
            for c in range(configs)
        },
    )
    row = await db.fetchone("SELECT count(*) AS n FROM runs")
    assert row is not None and row["n"] == 100_000

    entries = await leaderboard(db, "sw_1", top=5)

    assert [e.config["prompt"] for e in entries] == [f"cfg{c:02d}" for c in (19, 18, 17, 16, 15)]
    for entry in entries:
        assert entry.n == items * repeats
        assert entry.score == round(expected[entry.config["prompt"]], 4)
        assert entry.ci_low <= entry.score <= entry.ci_high
        assert entry.tokens == repeats * sum(i % 13 + 5 for i in range(items))
        assert entry.p50_latency_ms == 4.0
    assert [e.tied_with_leader for e in entries] == [True, False, False, False, False]
