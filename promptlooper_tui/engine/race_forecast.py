"""How many runs a race (racing, or guided search, which races what it proposes) can be
expected to make, before it runs: the strategy itself driven over made-up scores of a stated
shape.

A race's cost depends on how far apart its configs are, which nobody knows before it runs: the
worst case, every candidate on every item, is what near-equal configs cost. The forecast
assumes the shape a typical tuning space has: the configs' true means spread evenly over
`SPREAD` (from `TOP` down; where the configs are not known up front, as guided search's over
ranges, each config's place in that spread is drawn from its key), each per-item score the
config's mean plus noise of standard deviation `NOISE` (clipped to [0, 1]), with items sharing
a difficulty (`ITEM_NOISE`), so the paired comparison has less noise than each score. Seeded:
the same settings always forecast the same count. Races too large to simulate quickly get no
forecast.
"""

from __future__ import annotations

import random

from ..domain.experiment import SweepSettings
from .search_space import Space, config_key
from .strategies import make_strategy
from .sweep_history import SweepHistory

TOP = 0.85
SPREAD = 0.4
NOISE = 0.15
ITEM_NOISE = 0.1
#: Races of more candidates x items than this are not simulated (the forecast is None): at
#: this size the three trials take about half a second.
MOST_CELLS = 20_000
#: Simulated races averaged.
TRIALS = 3


def expected_race_runs(space: Space, settings: SweepSettings, n_items: int) -> int | None:
    """The mean run count (repeats included) of `TRIALS` simulated sweeps, or None when the
    sweep is too large to simulate."""
    configs, _ = make_strategy(space, settings, n_items).plan_size()
    if not configs or configs * n_items > MOST_CELLS:
        return None
    total = sum(_simulated_runs(space, settings, n_items, trial) for trial in range(TRIALS))
    return round(total / TRIALS) * settings.repeats


def _simulated_runs(space: Space, settings: SweepSettings, n_items: int, trial: int) -> int:
    strategy = make_strategy(space, settings, n_items)
    rng = random.Random(f"race-forecast:{settings.seed}:{trial}")
    candidates, _ = strategy.known_runs()
    ranks = list(range(len(candidates)))
    rng.shuffle(ranks)
    place = {
        config_key(c): rank / max(1, len(ranks) - 1)
        for c, rank in zip(candidates, ranks, strict=True)
    }
    difficulty = [rng.gauss(0.0, ITEM_NOISE) for _ in range(n_items)]
    history = SweepHistory()
    runs = number = 0
    while (batch := strategy.next_batch(number, history)) is not None:
        for config in batch.configs:
            key = config_key(config)
            if key not in place:
                place[key] = random.Random(f"{trial}:{key}").random()
            mean = TOP - SPREAD * place[key]
            history.add_config(config)
            for item in batch.items:
                score = mean + difficulty[item] + rng.gauss(0.0, NOISE)
                history.add(key, item, min(1.0, max(0.0, score)))
        runs += len(batch.configs) * len(batch.items)
        number += 1
    return runs
