"""Recent leaderboards, so that many readers of one sweep (API clients polling, MCP agents
checking a sweep's status, the TUI) cost one ranking between changes, not one each.

A ranking costs tens of milliseconds of CPU on the event loop (bootstrap intervals), so two
hundred clients polling a running sweep would otherwise starve the sweep itself.

- A cached board is served while the sweep's data is unchanged: its completed-run count and
  the newest score id (any human score) are the same as when it was ranked (one cheap query).
- While the sweep is running in this process its data changes with every run; a board is then
  served for up to `max_age` seconds: a live leaderboard lags by at most that.
- Concurrent requests for a board of the same data wait for one ranking.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..domain.records import LeaderboardEntry
from ..store.database import Database
from .ranking import leaderboard

_DATA_VERSION = """
SELECT (SELECT count(*) FROM runs WHERE sweep_id = ? AND status = 'completed') AS completed,
       (SELECT coalesce(max(id), 0) FROM scores) AS last_score
"""
#: Boards kept; a few per sweep someone is looking at.
_MAX_ENTRIES = 64


@dataclass(frozen=True)
class _Board:
    version: tuple[int, int]
    ranked_at: float
    entries: list[LeaderboardEntry]


class LeaderboardCache:
    def __init__(self, db: Database, *, max_age: float = 1.0) -> None:
        self._db = db
        self._max_age = max_age
        self._boards: dict[tuple[str, int | None], _Board] = {}
        #: Rankings under way, by sweep, top and the data version they rank.
        self._ranking: dict[tuple[str, int | None, tuple[int, int]], asyncio.Future[_Board]] = {}

    async def get(self, sweep_id: str, *, top: int | None, running: bool) -> list[LeaderboardEntry]:
        """The board of `sweep_id` (first `top` configs); `running`: its sweep is running in
        this process, so a board up to `max_age` seconds old will do."""
        key = (sweep_id, top)
        cached = self._boards.get(key)
        if cached is not None and running and time.monotonic() - cached.ranked_at < self._max_age:
            return cached.entries
        version = await self._version(sweep_id)
        if cached is not None and cached.version == version:
            return cached.entries
        ranking = self._ranking.get((*key, version))
        if ranking is None:
            ranking = asyncio.ensure_future(self._rank(key, version))
            self._ranking[(*key, version)] = ranking
        # Shielded: one waiter giving up must not cancel the ranking the others wait for.
        return (await asyncio.shield(ranking)).entries

    async def _rank(self, key: tuple[str, int | None], version: tuple[int, int]) -> _Board:
        try:
            entries = await leaderboard(self._db, key[0], top=key[1])
        finally:
            del self._ranking[(*key, version)]
        board = _Board(version, time.monotonic(), entries)
        if len(self._boards) >= _MAX_ENTRIES and key not in self._boards:
            self._boards.pop(next(iter(self._boards)))
        self._boards[key] = board
        return board

    async def _version(self, sweep_id: str) -> tuple[int, int]:
        row = await self._db.fetchone(_DATA_VERSION, (sweep_id,))
        assert row is not None
        return int(row["completed"]), int(row["last_score"])
