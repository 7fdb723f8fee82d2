"""Sweep strategies: what they propose, that they are reproducible, and that they search well."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import CategoricalParameter, RangeParameter, SweepSettings
from promptlooper_tui.engine.stats import mean
from promptlooper_tui.engine.strategies import (
    Batch,
    GridStrategy,
    GuidedStrategy,
    RacingStrategy,
    RandomStrategy,
    Space,
    Strategy,
    config_key,
    grid_configs,
    make_strategy,
)

ScoreFn = Callable[[Mapping[str, Any], int], float]


class FakeHistory:
    """A runner's history in memory: every run of a batch completes with `score(config, item)`."""

    def __init__(self) -> None:
        self._configs: list[dict[str, Any]] = []
        self._scores: dict[str, dict[int, float]] = {}

    def record(self, batch: Batch, score: ScoreFn) -> None:
        for config in batch.configs:
            key = config_key(config)
            if key not in self._scores:
                self._configs.append(config)
                self._scores[key] = {}
            for item in batch.items:
                self._scores[key][item] = score(config, item)

    def configs(self) -> Sequence[Mapping[str, Any]]:
        return list(self._configs)

    def item_scores(self, key: str) -> Mapping[int, float]:
        return self._scores.get(key, {})


def run(strategy: Strategy, score: ScoreFn, limit: int = 100) -> tuple[list[Batch], FakeHistory]:
    """Every batch of a sweep, as the runner would drive it."""
    history = FakeHistory()
    batches = []
    for number in range(limit):
        batch = strategy.next_batch(number, history)
        if batch is None:
            return batches, history
        batches.append(batch)
        history.record(batch, score)
    raise AssertionError(f"the sweep did not end within {limit} batches")


def settings(**kwargs: Any) -> SweepSettings:
    return SweepSettings(**kwargs)


def constant(config: Mapping[str, Any], item: int) -> float:
    return 0.5


MIXED: Space = {
    "model": CategoricalParameter(values=["small", "medium", "large"]),
    # Not 0..1: a range with whole-number bounds is integral (see RangeParameter.integral).
    "temperature": RangeParameter(min=0.1, max=1.3, steps=5),
    "max_tokens": RangeParameter(min=100, max=300, steps=3),
}
CATEGORICAL: Space = {
    "model": CategoricalParameter(values=["small", "large"]),
    "style": CategoricalParameter(values=["terse", "chatty", "formal"]),
}
SMOOTH: Space = {
    "x": RangeParameter(min=0.05, max=0.95),
    "y": RangeParameter(min=0.05, max=0.95),
}


def smooth(config: Mapping[str, Any], item: int) -> float:
    """A single peak at (0.8, 0.2), with a little per-item variation."""
    return 1.0 - (config["x"] - 0.8) ** 2 - (config["y"] - 0.2) ** 2 - 0.01 * (item % 3)


# --- config keys and grid -------------------------------------------------------------------


def test_config_key_ignores_dict_order() -> None:
    a = {"model": "small", "temperature": 0.7, "extra": {"b": 1, "a": [1, 2]}}
    b = {"extra": {"a": [1, 2], "b": 1}, "temperature": 0.7, "model": "small"}
    assert config_key(a) == config_key(b)
    assert len(config_key(a)) == 16 and int(config_key(a), 16) >= 0
    assert config_key(a) != config_key({**a, "temperature": 0.8})


def test_grid_count_is_the_product_of_choices_including_range_steps() -> None:
    configs = grid_configs(MIXED)
    assert len(configs) == 3 * 5 * 3
    assert len({config_key(c) for c in configs}) == len(configs)
    assert {c["temperature"] for c in configs} == {0.1, 0.4, 0.7, 1.0, 1.3}
    assert {c["max_tokens"] for c in configs} == {100, 200, 300}


def test_grid_is_in_parameter_order_without_duplicate_values() -> None:
    space: Space = {
        "a": CategoricalParameter(values=[1, 2]),
        "b": CategoricalParameter(values=["x", "y", "x"]),
    }
    assert grid_configs(space) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert grid_configs({}) == [{}]


def test_grid_strategy_runs_everything_in_one_batch() -> None:
    strategy = make_strategy(MIXED, settings(strategy="grid", samples=3), n_items=4)
    assert isinstance(strategy, GridStrategy)
    batches, _ = run(strategy, constant)
    assert len(batches) == 1
    assert len(batches[0].configs) == 45 and batches[0].items == [0, 1, 2, 3]
    assert strategy.plan_size() == (45, 4)


# --- random ---------------------------------------------------------------------------------


def random_configs(space: Space, **kwargs: Any) -> list[dict[str, Any]]:
    strategy = make_strategy(space, settings(strategy="random", **kwargs), n_items=3)
    assert isinstance(strategy, RandomStrategy)
    batches, _ = run(strategy, constant)
    assert len(batches) == 1 and batches[0].items == [0, 1, 2]
    return batches[0].configs


def test_random_respects_ranges_integrality_and_distinctness() -> None:
    configs = random_configs(MIXED, samples=40, seed=1)
    assert len(configs) == 40
    assert len({config_key(c) for c in configs}) == 40
    for config in configs:
        assert config["model"] in {"small", "medium", "large"}
        assert 0.1 <= config["temperature"] <= 1.3
        assert config["temperature"] == round(config["temperature"], 4)
        assert isinstance(config["max_tokens"], int) and 100 <= config["max_tokens"] <= 300
    # Uniform sampling explores the whole range, not just the grid points.
    assert len({c["temperature"] for c in configs}) > 30


def test_random_is_reproducible_by_seed() -> None:
    assert random_configs(MIXED, samples=10, seed=5) == random_configs(MIXED, samples=10, seed=5)
    assert random_configs(MIXED, samples=10, seed=5) != random_configs(MIXED, samples=10, seed=6)


def test_random_on_a_small_finite_space_runs_all_of_it() -> None:
    configs = random_configs(CATEGORICAL, samples=50)
    assert sorted(map(config_key, configs)) == sorted(map(config_key, grid_configs(CATEGORICAL)))


def test_random_stops_at_a_narrow_integer_range() -> None:
    space: Space = {"n": RangeParameter(min=1, max=3)}
    assert sorted(c["n"] for c in random_configs(space, samples=10)) == [1, 2, 3]


def test_random_needs_samples_when_there_are_ranges() -> None:
    with pytest.raises(BadInput, match="samples"):
        make_strategy(MIXED, settings(strategy="random"), n_items=3)
    assert len(random_configs(CATEGORICAL)) == 6


def test_random_plan_size() -> None:
    assert make_strategy(MIXED, settings(strategy="random", samples=8), 5).plan_size() == (8, 5)
    assert make_strategy(CATEGORICAL, settings(strategy="random", samples=8), 5).plan_size() == (
        6,
        5,
    )


# --- guided ---------------------------------------------------------------------------------


def guided(space: Space, n_items: int = 3, **kwargs: Any) -> GuidedStrategy:
    strategy = make_strategy(space, settings(strategy="guided", **kwargs), n_items)
    assert isinstance(strategy, GuidedStrategy)
    return strategy


def test_guided_is_reproducible_from_the_seed() -> None:
    first, _ = run(guided(SMOOTH, samples=20, seed=3), smooth)
    second, _ = run(guided(SMOOTH, samples=20, seed=3), smooth)
    other, _ = run(guided(SMOOTH, samples=20, seed=4), smooth)
    assert first == second
    assert first != other


def test_guided_proposes_samples_configs_never_repeating_one() -> None:
    batches, history = run(guided(MIXED, samples=25, seed=0), smooth_mixed)
    proposed = [config_key(c) for batch in batches for c in batch.configs]
    assert len(proposed) == 25 == len(set(proposed))
    assert len(batches[0].configs) == 10  # 40% of samples
    assert all(len(b.configs) <= 5 for b in batches[1:])  # 20% of samples
    assert all(b.items == [0, 1, 2] for b in batches)
    assert len(history.configs()) == 25


def smooth_mixed(config: Mapping[str, Any], item: int) -> float:
    bonus = {"small": 0.0, "medium": 0.1, "large": 0.2}[config["model"]]
    return bonus - (config["temperature"] - 0.3) ** 2 - abs(config["max_tokens"] - 250) / 1000


def test_guided_moves_toward_better_configs() -> None:
    for seed in range(3):
        batches, _ = run(guided(SMOOTH, samples=40, seed=seed), smooth)
        start = mean([smooth(c, 0) for c in batches[0].configs])
        late = mean([smooth(c, 0) for batch in batches[-3:] for c in batch.configs])
        assert late > start + 0.1, (seed, start, late)


def test_guided_prefers_adjacent_numeric_values() -> None:
    space: Space = {"k": CategoricalParameter(values=[1, 2, 4, 8, 16, 32, 64, 128])}
    strategy = guided(space, samples=8, seed=0, explore=0.0, top_k=1)
    history = FakeHistory()
    history.record(Batch([{"k": 8}, {"k": 128}], [0]), lambda c, i: 1.0 if c["k"] == 8 else 0.0)
    batch = strategy.next_batch(1, history)
    assert batch is not None
    assert sorted(c["k"] for c in batch.configs) == [4, 16]  # 8's neighbours, not 1 or 128


def test_guided_stops_when_a_finite_space_is_exhausted() -> None:
    batches, _ = run(guided(CATEGORICAL, samples=50, seed=2), constant)
    proposed = [config_key(c) for batch in batches for c in batch.configs]
    assert sorted(proposed) == sorted(map(config_key, grid_configs(CATEGORICAL)))


def test_guided_resumes_exactly_from_the_history() -> None:
    batches, _ = run(guided(SMOOTH, samples=30, seed=9), smooth)
    # A fresh strategy (a resumed sweep) asked for batch 3 with the history of batches 0-2.
    history = FakeHistory()
    for batch in batches[:3]:
        history.record(batch, smooth)
    assert guided(SMOOTH, samples=30, seed=9).next_batch(3, history) == batches[3]


# --- racing ---------------------------------------------------------------------------------

RACE: Space = {"prompt": CategoricalParameter(values=["good", "also_good", "bad"])}
QUALITY = {"good": 0.8, "also_good": 0.8, "bad": 0.3}


def race_score(config: Mapping[str, Any], item: int) -> float:
    """Items differ in difficulty; each prompt adds its own small deterministic noise."""
    difficulty = 0.1 * math.sin(item)
    noise = 0.03 * math.sin(item * 7.3 + len(config["prompt"]))
    return QUALITY[config["prompt"]] + difficulty + noise


def test_racing_drops_a_clearly_worse_config_early_and_keeps_tied_ones() -> None:
    strategy = make_strategy(RACE, settings(strategy="racing", items_per_round=2), n_items=20)
    assert isinstance(strategy, RacingStrategy)
    batches, _ = run(strategy, race_score)
    assert len(batches) == 10
    dropped_at = next(i for i, b in enumerate(batches) if b.dropped)
    assert batches[dropped_at].dropped == [{"prompt": "bad"}]
    assert dropped_at <= 3  # after 3 rounds (6 items) at most, not all 20
    for batch in batches[dropped_at:]:
        assert batch.configs == [{"prompt": "good"}, {"prompt": "also_good"}]
    items = [item for batch in batches for item in batch.items]
    assert sorted(items) == list(range(20))
    assert items != list(range(20))  # shuffled by the seed


def test_racing_lone_survivor_runs_the_remaining_items() -> None:
    space: Space = {"prompt": CategoricalParameter(values=["good", "bad"])}
    strategy = make_strategy(space, settings(strategy="racing", items_per_round=3), n_items=12)
    batches, _ = run(strategy, race_score)
    assert [len(b.items) for b in batches] == [3, 3, 3, 3]
    assert batches[-1].configs == [{"prompt": "good"}]


def test_racing_resumes_exactly_from_the_history() -> None:
    racing_settings = settings(strategy="racing", items_per_round=2, seed=4)
    batches, _ = run(RacingStrategy(RACE, racing_settings, 20), race_score)
    history = FakeHistory()
    for batch in batches[:5]:
        history.record(batch, race_score)
    assert RacingStrategy(RACE, racing_settings, 20).next_batch(5, history) == batches[5]


def test_racing_candidates_and_plan_size() -> None:
    sampled = make_strategy(SMOOTH, settings(strategy="racing", samples=7), n_items=10)
    assert sampled.plan_size() == (7, 10)
    batch = sampled.next_batch(0, FakeHistory())
    assert batch is not None and len(batch.configs) == 7
    gridded = make_strategy(MIXED, settings(strategy="racing"), n_items=10)
    assert gridded.plan_size() == (45, 10)
    finite = make_strategy(CATEGORICAL, settings(strategy="racing", samples=2), n_items=10)
    assert finite.plan_size() == (6, 10)
