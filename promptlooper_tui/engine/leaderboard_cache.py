"""Recent leaderboards, so that many readers of one sweep or experiment (API clients polling,
MCP agents checking a sweep's status, the TUI) cost one ranking between changes, not one each.

A ranking costs tens of milliseconds of CPU on the event loop (bootstrap intervals), so two
hundred clients polling a running sweep would otherwise starve the sweep itself.

- A cached board is served while its data is unchanged: the completed-run count of the sweeps
  it ranks and the newest score id (any human score) are the same as when it was ranked (one
  cheap query). A new sweep of the version is a new scope, so a new board.
- While one of its sweeps is running in this process its data changes with every run; a board
  is then served for up to `max_age` seconds: a live leaderboard lags by at most that.
- Concurrent requests for a board of the same data wait for one ranking.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..domain.records import Leaderboard
from ..store.database import Database
from ..store.ranking import ranking_data_version
from .ranking import Scope, leaderboard

#: Boards kept; a few per sweep someone is looking at.
_MAX_ENTRIES = 64


@dataclass(frozen=True)
class _Board:
    version: tuple[int, int]
    ranked_at: float
    board: Leaderboard


class LeaderboardCache:
    def __init__(self, db: Database, *, max_age: float = 1.0) -> None:
        self._db = db
        self._max_age = max_age
        self._boards: dict[tuple[Scope, int | None], _Board] = {}
        #: Rankings under way, by scope, top and the data version they rank.
        self._ranking: dict[tuple[Scope, int | None, tuple[int, int]], asyncio.Future[_Board]] = {}

    async def get(self, scope: Scope, *, top: int | None, running: bool) -> Leaderboard:
        """The board of `scope` (first `top` configs); `running`: one of its sweeps is running
        in this process, so a board up to `max_age` seconds old will do."""
        key = (scope, top)
        cached = self._boards.get(key)
        if cached is not None and running and time.monotonic() - cached.ranked_at < self._max_age:
            return cached.board
        version = await self._version(scope)
        if cached is not None and cached.version == version:
            return cached.board
        ranking = self._ranking.get((*key, version))
        if ranking is None:
            ranking = asyncio.ensure_future(self._rank(key, version))
            self._ranking[(*key, version)] = ranking
        # Shielded: one waiter giving up must not cancel the ranking the others wait for.
        return (await asyncio.shield(ranking)).board

    async def _rank(self, key: tuple[Scope, int | None], version: tuple[int, int]) -> _Board:
        try:
            board = await leaderboard(self._db, key[0], top=key[1])
        finally:
            del self._ranking[(*key, version)]
        cached = _Board(version, time.monotonic(), board)
        if len(self._boards) >= _MAX_ENTRIES and key not in self._boards:
            self._boards.pop(next(iter(self._boards)))
        self._boards[key] = cached
        return cached

    async def _version(self, scope: Scope) -> tuple[int, int]:
        if not scope.sweep_ids:
            return 0, 0
        return await ranking_data_version(self._db, scope.sweep_ids)
