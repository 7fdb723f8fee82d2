"""How many runs a race can be expected to make, before it runs: the race itself (the real
`RacingStrategy`) driven over made-up scores of a stated shape.

A race's cost depends on how far apart its configs are, which nobody knows before it runs: the
worst case, every candidate on every item, is what near-equal configs cost. The forecast
assumes the shape a typical tuning space has: the candidates' true means spread evenly over
`SPREAD` (from `TOP` down), each per-item score the config's mean plus noise of standard
deviation `NOISE` (clipped to [0, 1]), with items sharing a difficulty (`ITEM_NOISE`), so the
paired comparison has less noise than each score. Seeded: the same settings always forecast the
same count. Races too large to simulate quickly get no forecast.
"""

from __future__ import annotations

import random

from ..domain.experiment import SweepSettings
from .racing import RacingStrategy
from .search_space import Space, config_key
from .sweep_history import SweepHistory

TOP = 0.85
SPREAD = 0.4
NOISE = 0.15
ITEM_NOISE = 0.1
#: Races of more candidates x items than this are not simulated (the forecast is None).
MOST_CELLS = 200_000
#: Simulated races averaged.
TRIALS = 3


def expected_race_runs(space: Space, settings: SweepSettings, n_items: int) -> int | None:
    """The mean run count (repeats included) of `TRIALS` simulated races, or None when the
    race is too large to simulate."""
    candidates, _ = RacingStrategy(space, settings, n_items).known_runs()
    if not candidates or len(candidates) * n_items > MOST_CELLS:
        return None
    total = sum(_simulated_runs(space, settings, n_items, trial) for trial in range(TRIALS))
    return round(total / TRIALS) * settings.repeats


def _simulated_runs(space: Space, settings: SweepSettings, n_items: int, trial: int) -> int:
    strategy = RacingStrategy(space, settings, n_items)
    candidates, _ = strategy.known_runs()
    rng = random.Random(f"race-forecast:{settings.seed}:{trial}")
    count = len(candidates)
    means = [TOP - SPREAD * rank / max(1, count - 1) for rank in range(count)]
    rng.shuffle(means)
    mean_of = {config_key(config): mean for config, mean in zip(candidates, means, strict=True)}
    difficulty = [rng.gauss(0.0, ITEM_NOISE) for _ in range(n_items)]
    history = SweepHistory()
    runs = 0
    number = 0
    while (batch := strategy.next_batch(number, history)) is not None:
        for config in batch.configs:
            key = config_key(config)
            history.add_config(config)
            for item in batch.items:
                score = mean_of[key] + difficulty[item] + rng.gauss(0.0, NOISE)
                history.add(key, item, min(1.0, max(0.0, score)))
        runs += len(batch.configs) * len(batch.items)
        number += 1
    return runs
