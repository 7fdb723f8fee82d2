"""Guided search: propose configs from what the best so far suggest, and race what is proposed.

A guided sweep proposes at most `samples` configs: ~40% (at least 2) at random to start, then
waves of ~20% (at least 1), each config of a wave drawn at random with probability `explore`,
else a neighbour of one of the `top_k` survivors with the best means (one parameter changed:
numeric categoricals to an adjacent value, other categoricals to any other, ranges by a gaussian
step of 10% of the span). It never proposes a config twice.

What it proposes races as in `racing`: every config visits the items in one seeded order,
`items_per_round` a round, and after each round a survivor the leader confidently beats is
eliminated and one confidently within `min_effect` of it is declared equivalent (each comparison
at alpha / (samples - 1)). A wave comes once the race has gone `WAVE_ITEMS` items further than
the last (fewer on a small dataset, so that every wave comes before the items run out; once
they have, at once), so its parents are judged on enough items; its configs first catch up on
the items already raced (one batch), then race with the rest. A poor proposal so costs the few
items that show it is poor, not the whole dataset, and the budget goes to the region the search
found.

The sweep ends when every config was proposed and one survivor is left, the items run out, or
`max_runs` would be passed. Every step is rebuilt from the history as racing's are, so a resumed
sweep proposes and decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.errors import BadInput
from ..domain.experiment import SweepSettings
from .racing import Judge
from .search_space import Config, Sampler, Space, config_key, sample_budget
from .strategy import Batch, Decision, History, Strategy

#: The share of `samples` proposed at random to start, and in each later wave.
INITIAL_SHARE = 0.4
WAVE_SHARE = 0.2
#: Items the race goes on between two waves.
WAVE_ITEMS = 8
#: Attempts at a not-yet-proposed neighbour before falling back to a random config.
NEIGHBOUR_ATTEMPTS = 20


@dataclass
class _Search:
    """Where the guided race stands after the batches planned so far."""

    proposed: list[Config] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)
    #: Items every survivor has run (a prefix of the race's order).
    depth: int = 0
    #: The depth the last wave was proposed at (None: none yet).
    wave_depth: int | None = None
    #: Runs (repeats included) of the batches planned so far.
    spent: int = 0
    ended: bool = False


class GuidedStrategy(Strategy):
    adaptive = True

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._sampler = Sampler(space)
        self._samples = sample_budget(settings, self._sampler)
        self._initial = min(self._samples, max(2, round(INITIAL_SHARE * self._samples)))
        self._per_wave = max(1, round(WAVE_SHARE * self._samples))
        # Waves come every WAVE_ITEMS items, closer on a small dataset, so that all of them
        # can come before the items run out.
        waves = math.ceil(max(0, self.planned_configs() - self._initial) / self._per_wave)
        self._wave_items = max(1, min(WAVE_ITEMS, n_items // (waves + 1)))
        self._order = self._all_items()
        random.Random(f"{settings.seed}:items").shuffle(self._order)
        self._search = _Search()
        # The judge reads the search's keys as proposals join them.
        self._judge = Judge(self._search.keys, self.planned_configs() - 1, settings)
        self._plan: list[Batch] = []

    def next_batch(self, number: int, history: History) -> Batch | None:
        while len(self._plan) <= number and not self._search.ended:
            batch = self._step(len(self._plan), history)
            if batch is None:
                self._search.ended = True
            else:
                self._plan.append(batch)
        return self._plan[number] if number < len(self._plan) else None

    def plan_size(self) -> tuple[int, int]:
        return self.planned_configs(), self.n_items

    def planned_configs(self) -> int:
        """At most `samples` configs, and never more than a space without ranges has."""
        size = self._sampler.size
        return self._samples if size is None else min(self._samples, size)

    def _step(self, number: int, history: History) -> Batch | None:
        """Batch `number`: new configs catching up on the raced items, or the survivors'
        next round; None when the search is over."""
        search = self._search
        decided = self._look(history)
        rng = self._rng(number)
        if self._wave_due():
            fresh = self._propose(rng, history)
            if fresh and search.depth > 0:
                catch_up = Batch(fresh, self._order[: search.depth], decided)
                self._join(fresh)
                return self._afford(catch_up)
            self._join(fresh)
        won = len(search.survivors) <= 1 and len(search.proposed) >= self.planned_configs()
        if search.depth >= self.n_items or won:
            # The look that ended the search still has decisions to record, once.
            return Batch([], [], decided) if decided else None
        step = self.settings.items_per_round
        batch = Batch(
            [dict(search.proposed[i]) for i in search.survivors],
            self._order[search.depth : search.depth + step],
            decided,
        )
        search.depth = min(self.n_items, search.depth + step)
        return self._afford(batch)

    def _afford(self, batch: Batch) -> Batch | None:
        """`batch`, counted, if it keeps the runs within `max_runs`; else the end: only the
        batch's decisions, if any, are recorded."""
        runs = len(batch.configs) * len(batch.items) * self.settings.repeats
        budget = self.settings.max_runs
        if budget is not None and self._search.spent + runs > budget:
            if self._search.spent == 0:
                raise BadInput(
                    f"sweep.max_runs is {budget}, but guided search's first batch alone takes "
                    f"{runs} runs"
                )
            self._search.ended = True
            return Batch([], [], batch.decided) if batch.decided else None
        self._search.spent += runs
        return batch

    def _look(self, history: History) -> dict[str, Decision]:
        search = self._search
        if search.depth == 0 or len(search.survivors) < 2:
            return {}
        decided = self._judge.look(search.survivors, self._order[: search.depth], history)
        search.survivors = [i for i in search.survivors if i not in decided]
        return {search.keys[i]: decision for i, decision in decided.items()}

    def _wave_due(self) -> bool:
        search = self._search
        if len(search.proposed) >= self.planned_configs():
            return False
        if search.wave_depth is None or search.depth >= self.n_items:
            return True
        spacing = search.depth - search.wave_depth
        return spacing >= self._wave_items or len(search.survivors) <= 1

    def _join(self, fresh: list[Config]) -> None:
        search = self._search
        search.wave_depth = search.depth
        for config in fresh:
            search.survivors.append(len(search.proposed))
            search.proposed.append(config)
            search.keys.append(config_key(config))

    def _propose(self, rng: random.Random, history: History) -> list[Config]:
        search = self._search
        seen = set(search.keys)
        left = self.planned_configs() - len(search.proposed)
        if not search.proposed:
            return self._sampler.sample(rng, min(self._initial, left), seen)
        parents = self._best(history)
        fresh: list[Config] = []
        while len(fresh) < min(self._per_wave, left):
            config = None
            if parents and rng.random() >= self.settings.explore:
                config = self._neighbour(rng, parents, seen)
            if config is None:
                drawn = self._sampler.sample(rng, 1, seen)
                if not drawn:
                    break
                config = drawn[0]
            fresh.append(config)
        return fresh

    def _best(self, history: History) -> list[Mapping[str, Any]]:
        """The `top_k` survivors by mean on the raced items."""
        search = self._search
        raced = self._order[: search.depth]
        ranked = sorted(search.survivors, key=lambda i: (-self._judge.mean(i, raced, history), i))
        return [search.proposed[i] for i in ranked[: self.settings.top_k]]

    def _neighbour(
        self, rng: random.Random, parents: list[Mapping[str, Any]], seen: set[str]
    ) -> Config | None:
        for _ in range(NEIGHBOUR_ATTEMPTS):
            candidate = self._sampler.neighbour(rng, rng.choice(parents))
            if candidate is not None:
                key = config_key(candidate)
                if key not in seen:
                    seen.add(key)
                    return candidate
        return None
