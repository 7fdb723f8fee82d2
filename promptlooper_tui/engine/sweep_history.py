"""What a sweep has learned so far, as adaptive strategies read it (`strategies.History`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from .strategies import config_key


class SweepHistory:
    """Every config proposed so far, in order, and the mean score per (config, item) over
    completed runs."""

    def __init__(self) -> None:
        self._sums: dict[str, dict[int, list[float]]] = defaultdict(dict)
        self._configs: dict[str, Mapping[str, Any]] = {}

    def add_config(self, config: Mapping[str, Any]) -> None:
        self._configs.setdefault(config_key(config), config)

    def add(self, key: str, item_index: int, score: float | None) -> None:
        if score is None:
            return
        total = self._sums[key].setdefault(item_index, [0.0, 0.0])
        total[0] += score
        total[1] += 1

    def item_scores(self, key: str) -> Mapping[int, float]:
        return {item: s / n for item, (s, n) in self._sums.get(key, {}).items() if n}

    def configs(self) -> list[Mapping[str, Any]]:
        return list(self._configs.values())
