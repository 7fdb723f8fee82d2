"""How many runs a sweep expects to make, as its progress shows it.

At the start: every config the strategy may run on every item (`plan_size`), times the
repeats; a race, guided search or evolve held to its `max_runs`. A race then narrows it as it goes:
once a round is planned, the sweep is what the earlier rounds ran plus this round's survivors
on every item left.
"""

from __future__ import annotations

from ..domain.experiment import SweepSettings
from .strategies import BUDGETED
from .strategy import Batch


class ExpectedRuns:
    def __init__(self, settings: SweepSettings, n_items: int, plan_size: tuple[int, int]) -> None:
        self._settings = settings
        self._n_items = n_items
        configs, items = plan_size
        self.total = self._capped(configs * items * settings.repeats)
        #: Runs and items of the racing rounds so far.
        self._raced_runs = self._raced_items = 0

    def narrow(self, batch: Batch) -> bool:
        """Count a racing round about to run; whether that lowered `total`."""
        if self._settings.strategy != "racing":
            return False
        repeats = self._settings.repeats
        self._raced_runs += len(batch.configs) * len(batch.items) * repeats
        self._raced_items += len(batch.items)
        left = max(0, self._n_items - self._raced_items)
        plan = self._capped(self._raced_runs + len(batch.configs) * left * repeats)
        if plan >= self.total:
            return False
        self.total = plan
        return True

    def _capped(self, runs: int) -> int:
        budget = self._settings.max_runs
        if self._settings.strategy in BUDGETED and budget is not None:
            return min(runs, budget)
        return runs
