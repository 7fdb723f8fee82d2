"""Racing: paired rounds, losers eliminated and ties declared equivalent as soon as the data
allow, decisions that say why, and a race that never drops the best config more often than
its alpha."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import CategoricalParameter, RangeParameter, SweepSettings
from promptlooper_tui.engine.racing import RacingStrategy
from promptlooper_tui.engine.search_space import Space, config_key
from promptlooper_tui.engine.strategies import make_strategy

from .strategy_fakes import FakeHistory, run

RACE: Space = {"prompt": CategoricalParameter(values=["good", "also_good", "bad"])}
QUALITY = {"good": 0.8, "also_good": 0.8, "bad": 0.3}


def race_score(config: Mapping[str, Any], item: int) -> float:
    """Items differ in difficulty; each prompt adds its own small deterministic noise."""
    difficulty = 0.1 * math.sin(item)
    noise = 0.03 * math.sin(item * 7.3 + len(config["prompt"]))
    return QUALITY[config["prompt"]] + difficulty + noise


def racing(space: Space = RACE, n_items: int = 40, **settings: Any) -> RacingStrategy:
    strategy = make_strategy(space, SweepSettings(strategy="racing", **settings), n_items)
    assert isinstance(strategy, RacingStrategy)
    return strategy


def test_a_clear_loser_is_eliminated_early_and_the_decision_says_why() -> None:
    batches, _ = run(racing(items_per_round=2, min_effect=0), race_score)
    decided_at = next(i for i, b in enumerate(batches) if b.decided)
    decision = batches[decided_at].decided[config_key({"prompt": "bad"})]
    assert decision.state == "eliminated"
    assert decision.against in {config_key({"prompt": p}) for p in ("good", "also_good")}
    assert decision.at_n == 2 * decided_at and decision.at_n <= 10
    assert 0 < decision.p <= 0.05
    for batch in batches[decided_at:]:
        assert {"prompt": "bad"} not in batch.configs
    # Without an indifference zone the two good prompts race to the last item.
    good = [item for b in batches if {"prompt": "good"} in b.configs for item in b.items]
    assert sorted(good) == list(range(40))


def test_configs_within_min_effect_of_the_leader_stop_and_the_race_ends() -> None:
    batches, _ = run(racing(items_per_round=2, min_effect=0.05), race_score)
    decisions = {key: d for batch in batches for key, d in batch.decided.items()}
    assert {d.state for d in decisions.values()} == {"eliminated", "equivalent"}
    equivalent = next(d for d in decisions.values() if d.state == "equivalent")
    assert equivalent.p <= 0.05
    # The last batch only records the decision that ended the race; it runs nothing.
    assert batches[-1].configs == [] and batches[-1].decided
    raced = sum(len(batch.items) for batch in batches)
    assert raced < 40, "the race should end before the items run out"


def test_a_single_candidate_runs_every_item() -> None:
    space: Space = {
        "prompt": CategoricalParameter(values=["good"]),
        "x": RangeParameter(min=1, max=1),
    }
    batches, _ = run(racing(space, n_items=6, items_per_round=3), race_score)
    assert [len(b.items) for b in batches] == [3, 3]


def test_every_config_visits_the_items_in_the_same_seeded_order() -> None:
    batches, _ = run(racing(items_per_round=3, min_effect=0, seed=7), race_score)
    order = [item for batch in batches for item in batch.items]
    assert order != sorted(order)
    other = [
        item for b in run(racing(items_per_round=3, seed=8), race_score)[0] for item in b.items
    ]
    assert other[:6] != order[:6]
    for batch in batches:
        assert all(set(batch.items) <= set(range(40)) for _ in batch.configs)


def test_a_resumed_race_decides_as_an_uninterrupted_one() -> None:
    settings = {"items_per_round": 2, "seed": 4, "min_effect": 0.05}
    batches, _ = run(racing(**settings), race_score)
    for cut in range(1, len(batches)):
        history = FakeHistory()
        for batch in batches[:cut]:
            history.record(batch, race_score)
        assert racing(**settings).next_batch(cut, history) == batches[cut]
    history = FakeHistory()
    for batch in batches:
        history.record(batch, race_score)
    assert racing(**settings).next_batch(len(batches), history) is None


def test_candidates_and_plan_size() -> None:
    smooth: Space = {
        "x": RangeParameter(min=0.05, max=0.95),
        "y": RangeParameter(min=0.05, max=0.95),
    }
    sampled = racing(smooth, n_items=10, samples=7)
    assert sampled.plan_size() == (7, 10)
    batch = sampled.next_batch(0, FakeHistory())
    assert batch is not None and len(batch.configs) == 7
    categorical: Space = {
        "model": CategoricalParameter(values=["small", "large"]),
        "style": CategoricalParameter(values=["terse", "chatty", "formal"]),
    }
    assert racing(categorical, n_items=10, samples=2).plan_size() == (6, 10)


def test_the_best_config_is_dropped_no_more_often_than_alpha() -> None:
    """Six configs, pass/fail scores: the best at 0.6, the others at 0.6 (tied) or 0.3, over
    many seeded races; the race's one error is dropping the best (as eliminated, or as
    equivalent to a leader worse than it by more than min_effect)."""
    space: Space = {"c": CategoricalParameter(values=list(range(6)))}
    rates = [0.6, 0.6, 0.6, 0.3, 0.3, 0.3]
    races, dropped_best, losers_out = 300, 0, 0
    best, losers = config_key({"c": 0}), {config_key({"c": c}) for c in (3, 4, 5)}
    for race in range(races):
        outcomes = random.Random(f"race:{race}")
        table = {(c, i): float(outcomes.random() < rates[c]) for c in range(6) for i in range(200)}
        batches, _ = run(
            racing(space, n_items=200, items_per_round=4, min_effect=0.02, seed=race),
            functools.partial(lambda t, config, item: t[(config["c"], item)], table),
        )
        decided = {key: d for batch in batches for key, d in batch.decided.items()}
        dropped_best += best in decided and decided[best].state == "eliminated"
        losers_out += losers <= decided.keys()
    assert dropped_best / races <= 0.05, dropped_best
    # Not by dropping nothing: the clearly worse half is out before the items run out.
    assert losers_out / races >= 0.9, losers_out


def test_a_race_with_max_runs_ends_before_a_round_would_pass_it() -> None:
    equal: Space = {"c": CategoricalParameter(values=list(range(4)))}
    batches, _ = run(
        racing(equal, n_items=40, items_per_round=2, max_runs=30, min_effect=0),
        lambda config, item: 0.5 + 0.3 * math.sin(item * (config["c"] + 1)),
    )
    runs = [len(b.configs) * len(b.items) for b in batches]
    assert sum(runs) <= 30 and sum(runs) + 2 * len(batches[-2].configs) > 30
    assert batches[-1].configs == []  # the look that ended it, recorded


def test_max_runs_below_the_first_round_is_refused_with_the_numbers() -> None:
    with pytest.raises(BadInput, match=r"max_runs is 5.*first round alone takes 6 runs"):
        racing(n_items=10, items_per_round=2, max_runs=5)
