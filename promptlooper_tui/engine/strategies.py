"""Sweep strategies: which configs to run on which dataset items, batch by batch.

A config assigns every swept parameter a JSON-able value. A strategy hands the runner batches
(configs x items, which the runner multiplies by `repeats`) until it returns None. Batches are
deterministic: the same (space, settings, n_items, batch number, history) always gives the same
batch, because each batch's randomness comes from `random.Random(f"{seed}:{number}")` and all
state is rebuilt from the history. So a resumed sweep, which replays its stored batches and
asks for later numbers only, continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.errors import BadInput
from ..domain.experiment import CategoricalParameter, RangeParameter, SweepSettings
from .stats import holm, mean, paired_t_test

Space = Mapping[str, CategoricalParameter | RangeParameter]
Config = dict[str, Any]

# Guided search: the share of `samples` in the random first batch and in each later batch.
_GUIDED_INITIAL_SHARE = 0.4
_GUIDED_BATCH_SHARE = 0.2
# Attempts at a not-yet-proposed neighbour before falling back to a random config.
_NEIGHBOUR_ATTEMPTS = 20
# A range neighbour moves by a gaussian step of this share of the range's span.
_RANGE_STEP_SHARE = 0.1
# Racing compares two configs only once they share this many scored items.
_RACING_MIN_SHARED = 3
# All-categorical spaces up to this many configs are enumerated, so sampling without
# repetition is exact (and notices exhaustion); bigger ones are sampled by rejection.
_ENUMERATE_LIMIT = 20_000
# Draws allowed when sampling by rejection before concluding the space has no new configs:
# generous, since a fresh config is found in a few draws unless the space is nearly used up.
_REJECTION_DRAWS_PER_CONFIG = 50
_REJECTION_EXTRA_DRAWS = 1000


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def config_key(config: Mapping[str, Any]) -> str:
    """A config's stable id: 16 hex chars of the sha256 of its canonical JSON (order-free)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Batch:
    """Run every config on every item (the runner repeats each run `repeats` times)."""

    configs: list[Config]
    items: list[int]  # dataset item indices
    dropped: list[Config] = field(default_factory=list)  # racing: eliminated before this batch


class History(Protocol):
    """What a strategy may know of the sweep so far."""

    def configs(self) -> Sequence[Mapping[str, Any]]:
        """Every config of every earlier batch (stored batches included), in proposal order."""
        ...

    def item_scores(self, key: str) -> Mapping[int, float]:
        """For config_key `key`: {item index: mean run score over repeats}, completed runs only."""
        ...


def _distinct(values: Sequence[Any]) -> list[Any]:
    """`values` without duplicates (by JSON value), in order: [1, 1] must not be two configs."""
    seen: set[str] = set()
    unique = []
    for value in values:
        canonical = _canonical(value)
        if canonical not in seen:
            seen.add(canonical)
            unique.append(value)
    return unique


def parameter_choices(parameter: CategoricalParameter | RangeParameter) -> list[Any]:
    if isinstance(parameter, RangeParameter):
        return parameter.grid_values()
    return _distinct(parameter.values)


def grid_configs(space: Space) -> list[Config]:
    """The cartesian product, in parameter order (the last varies fastest); ranges by steps."""
    names = list(space)
    product = itertools.product(*(parameter_choices(space[name]) for name in names))
    return [dict(zip(names, values, strict=True)) for values in product]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Sampler:
    """Random configs and neighbours of a space, never repeating a key already seen."""

    def __init__(self, space: Space) -> None:
        self._space = space
        self._values = {
            name: _distinct(p.values)
            for name, p in space.items()
            if isinstance(p, CategoricalParameter)
        }
        self.finite = len(self._values) == len(space)
        self.size = math.prod(len(v) for v in self._values.values()) if self.finite else None
        self._enumerated: list[tuple[str, Config]] | None = None

    def _all(self) -> list[tuple[str, Config]] | None:
        """(key, config) of every config, if the space is small enough to enumerate."""
        if self.size is None or self.size > _ENUMERATE_LIMIT:
            return None
        if self._enumerated is None:
            self._enumerated = [(config_key(c), c) for c in grid_configs(self._space)]
        return self._enumerated

    def sample(self, rng: random.Random, count: int, seen: set[str]) -> list[Config]:
        """Up to `count` distinct configs whose keys are not in `seen` (their keys are added).

        Fewer only when the space has no more: exactly so for enumerable spaces, after many
        failed draws for the others (e.g. a narrow integer range).
        """
        if count <= 0:
            return []
        everything = self._all()
        if everything is not None:
            fresh = [(key, config) for key, config in everything if key not in seen]
            picked = fresh if count >= len(fresh) else rng.sample(fresh, count)
            seen.update(key for key, _ in picked)
            return [dict(config) for _, config in picked]
        configs: list[Config] = []
        for _ in range(_REJECTION_DRAWS_PER_CONFIG * count + _REJECTION_EXTRA_DRAWS):
            config = {name: self._random_value(rng, name) for name in self._space}
            key = config_key(config)
            if key not in seen:
                seen.add(key)
                configs.append(config)
                if len(configs) == count:
                    break
        return configs

    def _random_value(self, rng: random.Random, name: str) -> Any:
        parameter = self._space[name]
        if isinstance(parameter, CategoricalParameter):
            return rng.choice(self._values[name])
        if parameter.integral:
            return rng.randint(int(parameter.min), int(parameter.max))
        # Rounding may step just past a bound that has more than 4 decimals: clip back.
        value = round(rng.uniform(parameter.min, parameter.max), 4)
        return min(parameter.max, max(parameter.min, value))

    def neighbour(self, rng: random.Random, config: Mapping[str, Any]) -> Config | None:
        """`config` with one parameter changed a little, or None if that draw changed nothing."""
        movable = [name for name in self._space if self._movable(name)]
        if not movable:
            return None
        name = rng.choice(movable)
        current = config.get(name)
        parameter = self._space[name]
        if isinstance(parameter, CategoricalParameter):
            value = self._categorical_step(rng, name, current)
        elif _is_number(current):
            value = _range_step(rng, parameter, current)
        else:
            value = self._random_value(rng, name)
        if _canonical(value) == _canonical(current):
            return None
        return {**config, name: value}

    def _movable(self, name: str) -> bool:
        parameter = self._space[name]
        if isinstance(parameter, CategoricalParameter):
            return len(self._values[name]) > 1
        return parameter.max > parameter.min

    def _categorical_step(self, rng: random.Random, name: str, current: Any) -> Any:
        """Numbers move to an adjacent value (they are likely ordered); others to any other."""
        values = self._values[name]
        if all(_is_number(v) for v in values) and _is_number(current) and current in values:
            ordered = sorted(values)
            index = ordered.index(current)
            adjacent = [ordered[i] for i in (index - 1, index + 1) if 0 <= i < len(ordered)]
            return rng.choice(adjacent)
        others = [v for v in values if _canonical(v) != _canonical(current)]
        return rng.choice(others)


def _range_step(rng: random.Random, parameter: RangeParameter, current: float) -> float | int:
    """`current` moved by a gaussian step of 10% of the range's span, clipped to the range."""
    step = rng.gauss(0.0, _RANGE_STEP_SHARE * (parameter.max - parameter.min))
    if parameter.integral:
        # An integer range must move by at least 1, or most small steps would change nothing.
        whole = round(step) or rng.choice((-1, 1))
        return int(min(parameter.max, max(parameter.min, current + whole)))
    return round(min(parameter.max, max(parameter.min, current + step)), 4)


class Strategy(ABC):
    """Chooses the batches of a sweep over `space` on a dataset of `n_items` items."""

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        if n_items < 0:
            raise ValueError(f"n_items must not be negative, got {n_items}")
        self.space = space
        self.settings = settings
        self.n_items = n_items

    @abstractmethod
    def next_batch(self, number: int, history: History) -> Batch | None:
        """Batch `number` (0, 1, 2...) given the history of earlier batches; None when done."""

    @abstractmethod
    def plan_size(self) -> tuple[int, int]:
        """(configs, items): an upper bound of the runs per repeat is their product."""

    def known_runs(self) -> tuple[list[Config], list[int]]:
        """The configs and items whose runs are known before anything runs (a dry run walks
        them through the cache): the first batch's, unless a strategy knows more."""
        first = self.next_batch(0, _NO_HISTORY)
        return ([dict(c) for c in first.configs], list(first.items)) if first else ([], [])

    #: Whether `plan_size` is an upper bound the sweep may stop short of (racing drops
    #: configs; guided proposes configs from the scores so far).
    adaptive = False

    def _rng(self, number: int) -> random.Random:
        return random.Random(f"{self.settings.seed}:{number}")

    def _all_items(self) -> list[int]:
        return list(range(self.n_items))


class _NoHistory:
    def configs(self) -> Sequence[Mapping[str, Any]]:
        return []

    def item_scores(self, key: str) -> Mapping[int, float]:
        return {}


_NO_HISTORY = _NoHistory()


def _sample_budget(settings: SweepSettings, sampler: _Sampler) -> int:
    """`samples`, defaulting to the whole space when it has no ranges."""
    if settings.samples is not None:
        return settings.samples
    if sampler.size is not None:
        return sampler.size
    raise BadInput(f"sweep.samples is required by strategy {settings.strategy!r} with ranges")


def _planned_configs(samples: int, sampler: _Sampler) -> int:
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
        self._sampler = _Sampler(space)
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
        self._sampler = _Sampler(space)
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


class RacingStrategy(Strategy):
    """Race candidates on a few items per round, dropping those significantly worse.

    Candidates: the grid when the space has no ranges or `samples` is unset, else `samples`
    random configs. Items are shuffled once (seeded); round r runs the survivors on the next
    `items_per_round` items. Before each round after the first, every survivor that shares at
    least 3 scored items (of earlier rounds) with the leader (the survivor with the best mean
    score over those items) is compared to it by a paired t-test on their shared items; the
    p-values are Holm-corrected, and those with adjusted p < `alpha` and a lower mean on the
    shared items are dropped (listed in `Batch.dropped`). Survivors race until the items run
    out. Survivors are recomputed from the history each time, so resuming is exact.
    """

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        sampler = _Sampler(space)
        if sampler.finite or settings.samples is None:
            self._candidates = grid_configs(space)
        else:
            rng = random.Random(f"{settings.seed}:candidates")
            self._candidates = sampler.sample(rng, settings.samples, set())
        self._keys = [config_key(config) for config in self._candidates]
        order = self._all_items()
        random.Random(f"{settings.seed}:items").shuffle(order)
        step = settings.items_per_round
        self._rounds = [order[i : i + step] for i in range(0, n_items, step)]

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number >= len(self._rounds):
            return None
        scores = [history.item_scores(key) for key in self._keys]
        survivors = list(range(len(self._candidates)))
        raced: set[int] = set()
        dropped: list[int] = []
        for round_number in range(1, number + 1):
            # Only the items of earlier rounds count: that is what was known back then.
            raced.update(self._rounds[round_number - 1])
            dropped = self._eliminate(survivors, scores, raced)
            survivors = [i for i in survivors if i not in dropped]
        return Batch(
            [dict(self._candidates[i]) for i in survivors],
            list(self._rounds[number]),
            [dict(self._candidates[i]) for i in dropped],
        )

    adaptive = True

    def plan_size(self) -> tuple[int, int]:
        return len(self._candidates), self.n_items

    def known_runs(self) -> tuple[list[Config], list[int]]:
        """Every candidate on every item: a race runs a part of them, all known up front."""
        return [dict(c) for c in self._candidates], self._all_items()

    def _eliminate(
        self, survivors: list[int], scores: list[Mapping[int, float]], raced: set[int]
    ) -> list[int]:
        """The survivors significantly worse than the leader on the raced items."""
        known = {i: {item: s for item, s in scores[i].items() if item in raced} for i in survivors}
        eligible = [i for i in survivors if len(known[i]) >= _RACING_MIN_SHARED]
        if len(eligible) < 2:
            return []
        leader = max(eligible, key=lambda i: (mean(list(known[i].values())), -i))
        challengers: list[tuple[int, bool]] = []
        p_values: list[float] = []
        for i in eligible:
            shared = sorted(known[i].keys() & known[leader].keys())
            if i == leader or len(shared) < _RACING_MIN_SHARED:
                continue
            ours = [known[i][item] for item in shared]
            best = [known[leader][item] for item in shared]
            challengers.append((i, mean(ours) < mean(best)))
            p_values.append(paired_t_test(best, ours))
        adjusted = holm(p_values)
        alpha = self.settings.alpha
        return [
            i for (i, lower), p in zip(challengers, adjusted, strict=True) if lower and p < alpha
        ]


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
