"""What a sweep has learned so far, as adaptive strategies read it (`strategies.History`)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from .search_space import config_key


class SweepHistory:
    """Every config proposed so far, in order, and the mean score per (config, item) over
    completed runs."""

    def __init__(self) -> None:
        #: Per config key, the score sum and the count of each item, indexed by item: 16 bytes
        #: an item, where a dict of [sum, count] lists took ten times that.
        self._sums: dict[str, tuple[array[float], array[float]]] = {}
        self._configs: dict[str, Mapping[str, Any]] = {}

    @classmethod
    def of(cls, configs: Iterable[Mapping[str, Any]], runs: Iterable[Any]) -> SweepHistory:
        """The history of these configs and these stored runs (key, item_index, status,
        score), in their order."""
        history = cls()
        for config in configs:
            history.add_config(config)
        for run in runs:
            if run["status"] == "completed":
                history.add(run["key"], run["item_index"], run["score"])
        return history

    def add_config(self, config: Mapping[str, Any]) -> None:
        self._configs.setdefault(config_key(config), config)

    def add(self, key: str, item_index: int, score: float | None) -> None:
        if score is None:
            return
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = (array("d"), array("d"))
        total, count = sums
        if item_index >= len(total):
            zeros = array("d", bytes(8 * (item_index + 1 - len(total))))
            total.extend(zeros)
            count.extend(zeros)
        total[item_index] += score
        count[item_index] += 1

    def item_scores(self, key: str) -> Mapping[int, float]:
        sums = self._sums.get(key)
        if sums is None:
            return {}
        total, count = sums
        return {item: total[item] / n for item, n in enumerate(count) if n}

    def configs(self) -> list[Mapping[str, Any]]:
        return list(self._configs.values())
