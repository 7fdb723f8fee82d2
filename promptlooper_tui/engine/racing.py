"""Racing: run the candidates a few items at a time, and stop spending on those that cannot win.

Candidates are the grid when the space has no ranges or `samples` is unset, else `samples`
random configs. The items are shuffled once (seeded) and every candidate visits them in that
same order, so any two are compared on the same items (paired). Round r runs the survivors on
the next `items_per_round` items. After each round, the leader is the survivor with the best
mean on the items raced so far, and every other survivor is compared to it on their shared
items by a confidence sequence for the mean paired difference (`sequential`), which stays
valid however often it is looked at:

- eliminated: the leader is confidently better;
- equivalent: the difference is confidently inside (-min_effect, +min_effect), a difference
  the user said does not matter. The leader carries on for both (`min_effect` 0: never).

Each comparison runs at level alpha / (candidates - 1). A config is wrongly dropped only when
the sequence of a pair it belongs to misses the truth, so the chance that the best config is
ever eliminated, or declared equivalent to one more than min_effect worse, is at most alpha
over the whole race, whoever leads when. The race ends when one survivor is left (all others
decided), the items run out, or the budget would be passed (`max_runs`, below). Decisions are
rebuilt from the history (and kept between calls as the sweep goes on), so a resumed race
decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..domain.errors import BadInput
from ..domain.experiment import SweepSettings
from .search_space import Config, Sampler, Space, config_key, grid_configs
from .sequential import PairedSums
from .strategy import Batch, Decision, History, Strategy

#: Two configs are compared once they share this many scored items.
MIN_SHARED = 3


@dataclass
class _Standing:
    """The race after a look: who still runs, and what this look decided (by candidate)."""

    survivors: list[int]
    decided: dict[int, Decision] = field(default_factory=dict)
    #: Whether decisions have left a single survivor: the race is won.
    over: bool = False
    #: Runs (repeats included) the rounds before this look made.
    spent: int = 0


class RacingStrategy(Strategy):
    adaptive = True

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        sampler = Sampler(space)
        if sampler.finite or settings.samples is None:
            self._candidates = grid_configs(space)
        else:
            rng = random.Random(f"{settings.seed}:candidates")
            self._candidates = sampler.sample(rng, settings.samples, set())
        self._keys = [config_key(config) for config in self._candidates]
        self._order = self._all_items()
        random.Random(f"{settings.seed}:items").shuffle(self._order)
        step = settings.items_per_round
        self._rounds = [self._order[i : i + step] for i in range(0, n_items, step)]
        # Each pair is tested at alpha / (comparisons one config can be part of).
        self._judge = Judge(self._keys, len(self._candidates) - 1, settings)
        #: The standing after look r (r rounds raced), filled as the race goes.
        self._looks: list[_Standing] = [_Standing(list(range(len(self._candidates))))]
        first = self._round_runs(0, self._looks[0]) if self._rounds else 0
        if settings.max_runs is not None and first > settings.max_runs:
            raise BadInput(
                f"sweep.max_runs is {settings.max_runs}, but a race's first round alone takes "
                f"{first} runs ({len(self._candidates)} candidates x {len(self._rounds[0])} "
                f"items x {settings.repeats} repeats)"
            )

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number >= len(self._rounds):
            return None
        if number > 0 and self._ends(number - 1, self._standing(number - 1, history)):
            return None
        standing = self._standing(number, history)
        if self._ends(number, standing):
            # The look that ended the race still has decisions to record, once.
            return Batch([], [], self._named(standing.decided)) if number > 0 else None
        return Batch(
            [dict(self._candidates[i]) for i in standing.survivors],
            list(self._rounds[number]),
            self._named(standing.decided),
        )

    def plan_size(self) -> tuple[int, int]:
        return len(self._candidates), self.n_items

    def known_runs(self) -> tuple[list[Config], list[int]]:
        """Every candidate on every item: a race runs a part of them, all known up front."""
        return [dict(c) for c in self._candidates], self._all_items()

    def _round_runs(self, look: int, standing: _Standing) -> int:
        """The runs of round `look` for the survivors of `standing`."""
        return len(standing.survivors) * len(self._rounds[look]) * self.settings.repeats

    def _ends(self, look: int, standing: _Standing) -> bool:
        """Whether the race ends at this look: one survivor is left, or the next round would
        take the runs past `max_runs`."""
        budget = self.settings.max_runs
        return standing.over or (
            budget is not None and standing.spent + self._round_runs(look, standing) > budget
        )

    def _named(self, decided: Mapping[int, Decision]) -> dict[str, Decision]:
        return {self._keys[i]: decision for i, decision in decided.items()}

    def _standing(self, look: int, history: History) -> _Standing:
        """The race after `look` rounds: built from the history once, then kept."""
        while len(self._looks) <= look:
            made = len(self._looks)
            before = self._looks[-1]
            spent = before.spent + (0 if before.over else self._round_runs(made - 1, before))
            if before.over:
                self._looks.append(_Standing(before.survivors, over=True, spent=spent))
                continue
            raced = [item for r in self._rounds[:made] for item in r]
            standing = self._look(before.survivors, raced, history)
            standing.spent = spent
            self._looks.append(standing)
        return self._looks[look]

    def _look(self, survivors: list[int], raced: list[int], history: History) -> _Standing:
        """Compare every survivor with the leader on the `raced` items (in race order)."""
        decided = self._judge.look(survivors, raced, history)
        left = [i for i in survivors if i not in decided]
        return _Standing(left, decided, over=bool(decided) and len(left) == 1)


class Judge:
    """Compares a race's survivors with its leader: `keys[i]` is candidate i's config key,
    `comparisons` how many comparisons one config can be part of (candidates - 1), which sets
    each one's level."""

    def __init__(self, keys: list[str], comparisons: int, settings: SweepSettings) -> None:
        self.keys = keys
        self._comparisons = max(1, comparisons)
        self._level = settings.alpha / self._comparisons
        self._margin = settings.min_effect

    def look(self, survivors: list[int], raced: list[int], history: History) -> dict[int, Decision]:
        """The survivors the leader (the best mean on the `raced` items, in race order) has
        confidently beaten or matched, by candidate."""
        scores = {i: history.item_scores(self.keys[i]) for i in survivors}
        known = {i: [item for item in raced if item in scores[i]] for i in survivors}
        eligible = [i for i in survivors if len(known[i]) >= MIN_SHARED]
        if len(eligible) < 2:
            return {}
        leader = self.leader(eligible, raced, history)
        decided: dict[int, Decision] = {}
        for i in eligible:
            if i == leader:
                continue
            sums = PairedSums()
            for item in known[i]:
                if item in scores[leader]:
                    sums.add(scores[leader][item] - scores[i][item])
            if sums.n < MIN_SHARED:
                continue
            decision = self._decide(sums, leader)
            if decision is not None:
                decided[i] = decision
        return decided

    def leader(self, candidates: list[int], raced: list[int], history: History) -> int:
        """The candidate with the best mean on the raced items it has (the earliest on a tie)."""
        return max(candidates, key=lambda i: (self.mean(i, raced, history), -i))

    def mean(self, candidate: int, raced: list[int], history: History) -> float:
        scores = history.item_scores(self.keys[candidate])
        known = [scores[item] for item in raced if item in scores]
        return sum(known) / len(known) if known else -1.0

    def _decide(self, sums: PairedSums, leader: int) -> Decision | None:
        comparison = sums.compare(self._level)
        against = self.keys[leader]
        if comparison.low > 0:
            p = min(1.0, comparison.p_value(0.0) * self._comparisons)
            return Decision("eliminated", sums.n, against, round(p, 6))
        if self._margin > 0 and comparison.below(self._margin):
            p = min(1.0, comparison.equivalence_p(self._margin) * self._comparisons)
            return Decision("equivalent", sums.n, against, round(p, 6))
        return None


def describe_race(
    *,
    candidates: int,
    alpha: float,
    min_effect: float,
    items_per_round: int,
    max_runs: int | None = None,
) -> str:
    """How a race with these settings decides, in a few sentences for a report."""
    level = alpha / max(1, candidates - 1)
    equivalence = (
        f"or equivalent, when the difference is confidently within +-{min_effect:g}, the "
        "sweep's min_effect (a difference that does not matter)"
        if min_effect > 0
        else "(min_effect 0: no config is declared equivalent)"
    )
    return (
        f"The race: {candidates} candidates visited the items in one seeded order, "
        f"{items_per_round} a round, so every comparison is paired. After each round, each "
        "survivor was compared with the leader (the best mean so far) by a confidence "
        "sequence for the mean per-item difference, valid however often it is looked at, "
        f"at level {alpha:g} / {max(1, candidates - 1)} = {level:.2g} per comparison: the "
        f"chance that the best config is ever dropped is at most {alpha:g}. A config stopped "
        f"running when it was eliminated, the leader being confidently better, {equivalence}. "
        "The race ends when one survivor is left, the items run out"
        + (f" or its budget of {max_runs:,} runs (max_runs) would be passed" if max_runs else "")
        + "; the winner is the best survivor."
    )
