"""Sweep strategies: what they propose, that they are reproducible, and that they search well."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import CategoricalParameter, RangeParameter, SweepSettings
from promptlooper_tui.engine.search_space import Space, config_key, grid_configs
from promptlooper_tui.engine.strategies import (
    GridStrategy,
    RandomStrategy,
    make_strategy,
)

from .strategy_fakes import run


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
