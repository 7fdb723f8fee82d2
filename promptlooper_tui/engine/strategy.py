"""What every sweep strategy is: batches of configs x items, chosen from what the sweep has
learned so far (its history), deterministically for a seed.

A config assigns every swept parameter a JSON-able value. A strategy hands the runner batches
(configs x items, which the runner multiplies by `repeats`) until it returns None. Batches are
deterministic: the same (space, settings, n_items, batch number, history) always gives the same
batch, because each batch's randomness comes from `random.Random(f"{seed}:{number}")` and all
state is rebuilt from the history. So a resumed sweep, which replays its stored batches and
asks for later numbers only, continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..domain.experiment import SweepSettings
from .search_space import Config, Space


@dataclass(frozen=True)
class Decision:
    """Why racing stopped running a config: `eliminated` (confidently worse than `against`,
    the leader then) or `equivalent` (confidently within `min_effect` of it), decided after
    `at_n` shared items, with the test's p-value (corrected for the race's comparisons); in
    evolve also `behind` (a proposal below the leader's mean on the same items once probed,
    stopped with no claim of significance; p uncorrected)."""

    state: Literal["eliminated", "equivalent", "behind"]
    at_n: int
    against: str
    p: float

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "at_n": self.at_n, "against": self.against, "p": self.p}


@dataclass(frozen=True)
class Batch:
    """Run every config on every item (the runner repeats each run `repeats` times)."""

    configs: list[Config]
    items: list[int]  # dataset item indices
    #: racing: configs decided before this batch (by config key), which it no longer runs.
    decided: dict[str, Decision] = field(default_factory=dict)


class History(Protocol):
    """What a strategy may know of the sweep so far."""

    def configs(self) -> Sequence[Mapping[str, Any]]:
        """Every config of every earlier batch (stored batches included), in proposal order."""
        ...

    def item_scores(self, key: str) -> Mapping[int, float]:
        """For config_key `key`: {item index: mean run score over repeats}, completed runs only."""
        ...


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

    async def prepare(self, number: int, history: History) -> None:
        """Do the I/O batch `number` needs before `next_batch` can plan it (evolve asks its
        proposer for the next prompts); most strategies need none."""
        return None

    @abstractmethod
    def plan_size(self) -> tuple[int, int]:
        """(configs, items): an upper bound of the runs per repeat is their product."""

    def known_runs(self) -> tuple[list[Config], list[int]]:
        """The configs and items whose runs are known before anything runs (a dry run walks
        them through the cache): the first batch's, unless a strategy knows more."""
        first = self.next_batch(0, NO_HISTORY)
        return ([dict(c) for c in first.configs], list(first.items)) if first else ([], [])

    #: Whether `plan_size` is an upper bound the sweep may stop short of (racing drops
    #: configs; guided proposes configs from the scores so far).
    adaptive = False

    def _rng(self, number: int) -> random.Random:
        return random.Random(f"{self.settings.seed}:{number}")

    def _all_items(self) -> list[int]:
        return list(range(self.n_items))


class NoHistory:
    def configs(self) -> Sequence[Mapping[str, Any]]:
        return []

    def item_scores(self, key: str) -> Mapping[int, float]:
        return {}


NO_HISTORY = NoHistory()
