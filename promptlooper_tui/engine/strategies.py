"""The sweep strategies by name: grid, random and guided here, racing in `racing`."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from ..domain.errors import BadInput
from ..domain.experiment import SweepSettings
from .racing import RacingStrategy
from .search_space import Config, Sampler, Space, config_key, grid_configs
from .stats import mean
from .strategy import Batch, History, Strategy

# Guided search: the share of `samples` in the random first batch and in each later batch.
_GUIDED_INITIAL_SHARE = 0.4
_GUIDED_BATCH_SHARE = 0.2
# Attempts at a not-yet-proposed neighbour before falling back to a random config.
_NEIGHBOUR_ATTEMPTS = 20


def _sample_budget(settings: SweepSettings, sampler: Sampler) -> int:
    """`samples`, defaulting to the whole space when it has no ranges."""
    if settings.samples is not None:
        return settings.samples
    if sampler.size is not None:
        return sampler.size
    raise BadInput(f"sweep.samples is required by strategy {settings.strategy!r} with ranges")


def _planned_configs(samples: int, sampler: Sampler) -> int:
    """At most `samples` configs, and never more than a space without ranges has."""
    return samples if sampler.size is None else min(samples, sampler.size)


class GridStrategy(Strategy):
    """Every config of the grid (ranges at their `steps` points) on every item, in one batch."""

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._configs = grid_configs(space)

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number > 0:
            return None
        return Batch([dict(c) for c in self._configs], self._all_items())

    def plan_size(self) -> tuple[int, int]:
        return len(self._configs), self.n_items


class RandomStrategy(Strategy):
    """`samples` distinct uniformly random configs on every item, in one batch.

    Categorical values are chosen uniformly; ranges sample uniformly in [min, max] (integers
    for integral ranges, floats rounded to 4 decimals). A space without ranges that has at
    most `samples` configs runs all of them. BadInput without `samples` when there are ranges.
    """

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._sampler = Sampler(space)
        self._samples = _sample_budget(settings, self._sampler)

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number > 0:
            return None
        return Batch(self._sampler.sample(self._rng(0), self._samples, set()), self._all_items())

    def plan_size(self) -> tuple[int, int]:
        return _planned_configs(self._samples, self._sampler), self.n_items


class GuidedStrategy(Strategy):
    """A local search: random configs first, then mostly neighbours of the best so far.

    Batch 0 runs ~40% of `samples` (at least 2) random configs; each later batch ~20% (at
    least 1) new ones: with probability `explore` a random config, otherwise a neighbour of
    one of the `top_k` configs with the best mean item score (one parameter changed: numeric
    categoricals to an adjacent value, other categoricals to any other, ranges by a gaussian
    step of 10% of the span). Never proposes a config twice (it reads what was proposed from
    `history.configs()`). Done once `samples` configs were proposed or the space is exhausted;
    `samples` defaults to the size of a space without ranges.
    """

    adaptive = True

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._sampler = Sampler(space)
        self._samples = _sample_budget(settings, self._sampler)
        initial = max(2, round(_GUIDED_INITIAL_SHARE * self._samples))
        self._initial = min(self._samples, initial)
        self._per_batch = max(1, round(_GUIDED_BATCH_SHARE * self._samples))

    def next_batch(self, number: int, history: History) -> Batch | None:
        proposed = list(history.configs())
        seen = {config_key(config) for config in proposed}
        remaining = self._samples - len(seen)
        if remaining <= 0:
            return None
        rng = self._rng(number)
        if not proposed:
            configs = self._sampler.sample(rng, min(self._initial, remaining), seen)
        else:
            parents = self._best(proposed, history)
            configs = self._propose(rng, min(self._per_batch, remaining), parents, seen)
        return Batch(configs, self._all_items()) if configs else None

    def plan_size(self) -> tuple[int, int]:
        return _planned_configs(self._samples, self._sampler), self.n_items

    def _best(self, proposed: list[Mapping[str, Any]], history: History) -> list[Config]:
        """The `top_k` configs by mean item score; configs without scores rank last."""
        ranked = []
        for index, config in enumerate(proposed):
            scores = history.item_scores(config_key(config))
            rank = -mean(list(scores.values())) if scores else math.inf
            # Earlier proposal wins a tie, so the ranking never depends on mapping order.
            ranked.append((rank, index, config))
        ranked.sort(key=lambda entry: (entry[0], entry[1]))
        return [dict(config) for _, _, config in ranked[: self.settings.top_k]]

    def _propose(
        self, rng: random.Random, count: int, parents: list[Config], seen: set[str]
    ) -> list[Config]:
        configs: list[Config] = []
        while len(configs) < count:
            config = None
            if rng.random() >= self.settings.explore:
                config = self._fresh_neighbour(rng, parents, seen)
            if config is None:
                drawn = self._sampler.sample(rng, 1, seen)
                if not drawn:
                    break
                config = drawn[0]
            configs.append(config)
        return configs

    def _fresh_neighbour(
        self, rng: random.Random, parents: list[Config], seen: set[str]
    ) -> Config | None:
        for _ in range(_NEIGHBOUR_ATTEMPTS):
            candidate = self._sampler.neighbour(rng, rng.choice(parents))
            if candidate is not None:
                key = config_key(candidate)
                if key not in seen:
                    seen.add(key)
                    return candidate
        return None


_STRATEGIES: dict[str, type[Strategy]] = {
    "grid": GridStrategy,
    "random": RandomStrategy,
    "guided": GuidedStrategy,
    "racing": RacingStrategy,
}

#: Strategies that plan as they go: until such a sweep completes, its total is an estimate.
ADAPTIVE_STRATEGIES = frozenset(name for name, kind in _STRATEGIES.items() if kind.adaptive)


def make_strategy(space: Space, settings: SweepSettings, n_items: int) -> Strategy:
    """The strategy `settings.strategy` names; BadInput when random/guided lack `samples`."""
    return _STRATEGIES[settings.strategy](space, settings, n_items)
