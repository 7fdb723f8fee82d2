"""The sweep's token budget: dispatch a run only if its estimate fits beside what is in flight."""

from __future__ import annotations

from collections.abc import Callable


class TokenBudget:
    """`limit=None` means unlimited. Cache hits cost nothing: only real tokens are charged."""

    def __init__(self, limit: int | None, used: int = 0) -> None:
        self.limit = limit
        self.used = used
        self.reserved = 0
        self._observed_runs = 0
        self._observed_tokens = 0

    def estimate(self, prior_estimate: Callable[[], int]) -> int:
        """Tokens the next run will probably use: the mean of paid runs so far once there are
        a few, else `prior_estimate()` (prompt size plus max_tokens per stage), which is only
        computed then: it renders the run's first prompt."""
        if self._observed_runs >= 5:
            return max(1, round(self._observed_tokens / self._observed_runs * 1.2))
        return prior_estimate()

    def try_reserve(self, tokens: int) -> bool:
        if self.limit is not None and self.used + self.reserved + tokens > self.limit:
            return False
        self.reserved += tokens
        return True

    def settle(self, reserved: int, actual: int) -> None:
        """Release a reservation and charge what the run really used (0 when fully cached)."""
        self.reserved -= reserved
        self.used += actual
        if actual > 0:
            self._observed_runs += 1
            self._observed_tokens += actual

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)
