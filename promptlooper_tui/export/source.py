"""What every export format starts from: the sweep whose runs it lists, the spec of the
experiment version it ranks, the leaderboard it stands on, and the store to read. The
Workbench resolves these; exports read only, and never touch endpoints (so no secret can
leak)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain.experiment import ExperimentSpec
from ..domain.records import Evolution, Leaderboard, SweepRecord
from ..store.database import Database

#: The export's leaderboard, cut to its first N configs (None: all).
Ranking = Callable[[int | None], Awaitable[Leaderboard]]


@dataclass(frozen=True)
class ExportJob:
    """One export: the sweep whose runs it lists (`sweep`: the one asked for, else the
    experiment's latest), the spec of the experiment version it ranks (`spec`), how many
    leaderboard rows the report shows (`top`), the leaderboard (`rank`: the experiment's, every
    sweep of its latest version, unless a sweep was asked for, `asked_sweep`), the store, and
    for an evolve sweep its lineage (`evolution`)."""

    db: Database
    sweep: SweepRecord
    spec: ExperimentSpec
    top: int
    rank: Ranking
    asked_sweep: str | None = None
    evolution: Evolution | None = None

    async def ranking(self, top: int | None) -> Leaderboard:
        """The leaderboard this export stands on (its first `top` configs)."""
        return await self.rank(top)


def utc_now() -> str:
    """The export timestamp, in the same ISO 8601 form the store uses."""
    return datetime.now(UTC).isoformat(timespec="seconds")
