"""A sweep driven in memory, as the runner drives a strategy: for strategy tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from promptlooper_tui.engine.search_space import config_key
from promptlooper_tui.engine.strategy import Batch, Strategy

ScoreFn = Callable[[Mapping[str, Any], int], float]


class FakeHistory:
    """A runner's history in memory: every run of a batch completes with `score(config, item)`."""

    def __init__(self) -> None:
        self._configs: list[dict[str, Any]] = []
        self._scores: dict[str, dict[int, float]] = {}

    def record(self, batch: Batch, score: ScoreFn) -> None:
        for config in batch.configs:
            key = config_key(config)
            if key not in self._scores:
                self._configs.append(config)
                self._scores[key] = {}
            for item in batch.items:
                self._scores[key][item] = score(config, item)

    def configs(self) -> Sequence[Mapping[str, Any]]:
        return list(self._configs)

    def item_scores(self, key: str) -> Mapping[int, float]:
        return self._scores.get(key, {})


def run(strategy: Strategy, score: ScoreFn, limit: int = 100) -> tuple[list[Batch], FakeHistory]:
    """Every batch of a sweep, as the runner would drive it."""
    history = FakeHistory()
    batches = []
    for number in range(limit):
        batch = strategy.next_batch(number, history)
        if batch is None:
            return batches, history
        batches.append(batch)
        history.record(batch, score)
    raise AssertionError(f"the sweep did not end within {limit} batches")
