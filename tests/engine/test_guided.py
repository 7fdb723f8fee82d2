"""Guided search: waves of proposals from the best so far, each raced on the same seeded item
order, so a poor proposal costs the items that show it is poor and the search ends in the
region it found."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import CategoricalParameter, RangeParameter, SweepSettings
from promptlooper_tui.engine.guided import GuidedStrategy
from promptlooper_tui.engine.search_space import Space, config_key, grid_configs
from promptlooper_tui.engine.strategies import make_strategy

from .strategy_fakes import FakeHistory, run

SMOOTH: Space = {
    "x": RangeParameter(min=0.05, max=0.95),
    "y": RangeParameter(min=0.05, max=0.95),
}
CATEGORICAL: Space = {
    "model": CategoricalParameter(values=["small", "large"]),
    "style": CategoricalParameter(values=["terse", "chatty", "formal"]),
}


def smooth(config: Mapping[str, Any], item: int) -> float:
    """A single peak at (0.8, 0.2), items a little harder or easier."""
    return 0.9 - (config["x"] - 0.8) ** 2 - (config["y"] - 0.2) ** 2 - 0.02 * (item % 3)


def guided(space: Space, n_items: int = 60, **kwargs: Any) -> GuidedStrategy:
    strategy = make_strategy(space, SweepSettings(strategy="guided", **kwargs), n_items)
    assert isinstance(strategy, GuidedStrategy)
    return strategy


def proposed(batches: list[Any]) -> list[str]:
    keys: list[str] = []
    for batch in batches:
        keys += [config_key(c) for c in batch.configs if config_key(c) not in keys]
    return keys


def test_guided_is_reproducible_from_the_seed() -> None:
    first, _ = run(guided(SMOOTH, samples=20, seed=3), smooth)
    second, _ = run(guided(SMOOTH, samples=20, seed=3), smooth)
    other, _ = run(guided(SMOOTH, samples=20, seed=4), smooth)
    assert first == second
    assert first != other


def test_waves_of_proposals_catch_up_on_the_raced_items_and_never_repeat() -> None:
    batches, _ = run(guided(SMOOTH, samples=20, seed=0, items_per_round=2), smooth)
    keys = proposed(batches)
    assert len(keys) == 20 == len(set(keys))
    assert len(batches[0].configs) == 8  # 40% of samples, on the first round
    order = [item for batch in batches[:1] for item in batch.items]
    raced: list[int] = []
    known: set[str] = set()
    for batch in batches:
        fresh = [c for c in batch.configs if config_key(c) not in known]
        if fresh and known:
            # A wave (at most 20% of samples) runs the items raced so far, in race order.
            assert len(fresh) == len(batch.configs) <= 4
            assert batch.items == raced
        elif batch.configs:
            raced += batch.items
        known |= {config_key(c) for c in batch.configs}
    assert raced[:2] == order and sorted(raced) == sorted(set(raced))


def test_guided_moves_toward_better_configs() -> None:
    for seed in range(3):
        batches, _ = run(guided(SMOOTH, samples=30, seed=seed), smooth)
        keys = proposed(batches)
        configs = {config_key(c): c for b in batches for c in b.configs}
        first = [smooth(configs[k], 0) for k in keys[:12]]
        later = [smooth(configs[k], 0) for k in keys[12:]]
        assert sum(later) / len(later) > sum(first) / len(first) + 0.05, seed


def test_poor_proposals_stop_early_and_say_why() -> None:
    batches, history = run(guided(SMOOTH, samples=20, seed=1, min_effect=0), smooth)
    decided = {key: d for b in batches for key, d in b.decided.items()}
    assert decided and all(d.state == "eliminated" and d.p <= 0.05 for d in decided.values())
    runs = {key: len(history.item_scores(key)) for key in proposed(batches)}
    best = max(runs.values())
    assert all(runs[key] < best for key in decided)
    total = sum(len(b.configs) * len(b.items) for b in batches)
    assert total < 0.7 * 20 * 60  # well under every proposal on every item


def test_guided_prefers_adjacent_numeric_values() -> None:
    space: Space = {"k": CategoricalParameter(values=[1, 2, 4, 8, 16, 32, 64, 128])}
    strategy = guided(space, n_items=40, samples=4, seed=11, explore=0.0, top_k=1)
    batches, _ = run(strategy, lambda config, item: 1.0 if config["k"] == 8 else 0.2)
    first = {c["k"] for c in batches[0].configs}
    assert 8 in first  # with this seed the first wave holds the peak
    later = [k for k in (c["k"] for b in batches[1:] for c in b.configs) if k not in first]
    assert sorted(later) == [4, 16]  # 8's neighbours, not 1, 2, 32 or 64


def test_guided_stops_when_a_finite_space_is_exhausted() -> None:
    batches, _ = run(guided(CATEGORICAL, samples=50, seed=2), lambda c, i: 0.5)
    assert sorted(proposed(batches)) == sorted(map(config_key, grid_configs(CATEGORICAL)))


def test_guided_resumes_exactly_from_the_history() -> None:
    noisy = random.Random("noise")
    table = {(x, i): noisy.random() * 0.2 for x in range(1000) for i in range(60)}

    def score(config: Mapping[str, Any], item: int) -> float:
        return smooth(config, item) + table[(int(config["x"] * 999), item)]

    batches, _ = run(guided(SMOOTH, samples=16, seed=9), score)
    for cut in range(1, len(batches)):
        history = FakeHistory()
        for batch in batches[:cut]:
            history.record(batch, score)
        assert guided(SMOOTH, samples=16, seed=9).next_batch(cut, history) == batches[cut]


def test_guided_keeps_to_max_runs() -> None:
    batches, _ = run(guided(SMOOTH, samples=20, seed=5, max_runs=300), smooth)
    assert sum(len(b.configs) * len(b.items) for b in batches) <= 300
    with pytest.raises(BadInput, match="max_runs is 5"):
        run(guided(SMOOTH, samples=20, seed=5, max_runs=5), smooth)


def test_the_decisions_of_the_look_that_spends_the_budget_are_kept() -> None:
    kept = 0
    for seed in range(6):
        batches, _ = run(guided(SMOOTH, samples=20, seed=seed, max_runs=240, min_effect=0), smooth)
        assert sum(len(b.configs) * len(b.items) for b in batches) <= 240
        closing = [b for b in batches if not b.configs]
        assert len(closing) <= 1 and (not closing or batches[-1] is closing[0])
        kept += bool(closing and closing[0].decided)
    assert kept >= 3  # seeds 0, 1, 3 and 4 end on a look that decided something
