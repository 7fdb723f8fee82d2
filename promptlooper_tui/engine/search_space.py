"""The space a sweep searches: configs, their stable keys, the grid, and random draws and
neighbours that never repeat a config already seen."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.errors import BadInput
from ..domain.experiment import CategoricalParameter, RangeParameter, SweepSettings

Space = Mapping[str, CategoricalParameter | RangeParameter]
Config = dict[str, Any]

# A range neighbour moves by a gaussian step of this share of the range's span.
_RANGE_STEP_SHARE = 0.1
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


class Sampler:
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


def sample_budget(settings: SweepSettings, sampler: Sampler) -> int:
    """`samples`, defaulting to the whole space when it has no ranges."""
    if settings.samples is not None:
        return settings.samples
    if sampler.size is not None:
        return sampler.size
    raise BadInput(f"sweep.samples is required by strategy {settings.strategy!r} with ranges")
