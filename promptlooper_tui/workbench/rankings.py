"""Leaderboards: what a leaderboard of an experiment or a sweep ranks, and the ranking itself
(from the shared, briefly cached boards)."""

from __future__ import annotations

from ..domain.errors import BadInput
from ..domain.records import Leaderboard, LeaderboardEntry
from ..engine.ranking import Scope
from ..store import sweeps as stored_sweeps
from .lookups import (
    automatic_scorers,
    latest_version,
    load_spec,
    resolve_experiment,
    resolve_sweep,
)
from .services import Services


class Rankings:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def ranking(
        self, ref: str, *, top: int | None = 10, sweep: str | None = None
    ) -> Leaderboard:
        """See `Workbench.ranking`."""
        scope = await self.scope(ref, sweep)
        live = self._services.live
        # A board of a sweep running here may lag its runs by a second: the price of ranking
        # once for all readers (see LeaderboardCache), not once per reader.
        running = any(live.running_here(sweep_id) for sweep_id in scope.sweep_ids)
        return await self._services.boards.get(scope, top=top, running=running)

    async def leaderboard(
        self, ref: str, *, top: int = 10, sweep: str | None = None
    ) -> list[LeaderboardEntry]:
        return (await self.ranking(ref, top=top, sweep=sweep)).entries

    async def best_score(self, experiment_id: str) -> float | None:
        """The leader's score on the experiment's leaderboard, if anything is scored."""
        board = await self.ranking(experiment_id, top=1)
        return board.entries[0].score if board.entries else None

    async def scope(self, ref: str, sweep: str | None = None) -> Scope:
        """What a leaderboard of `ref` ranks: one sweep (`sweep`, or `ref` naming a sweep),
        else every sweep of experiment `ref`'s latest version."""
        db = self._services.db
        asked = sweep
        if asked is None and await stored_sweeps.sweep_exists(db, ref):
            asked = ref
        if asked is not None:
            row = await stored_sweeps.sweep_with_experiment_name(db, await resolve_sweep(db, asked))
            assert row is not None
            if asked != ref and row["experiment_id"] != await resolve_experiment(db, ref):
                raise BadInput(
                    f"sweep {row['id']} belongs to experiment {row['name']!r}, not {ref!r}"
                )
            spec = await load_spec(db, row["experiment_id"], row["experiment_version"])
            return Scope(
                version=row["experiment_version"],
                sweep_ids=(row["id"],),
                asked_sweep=row["id"],
                scorers=tuple(automatic_scorers(spec)),
            )
        experiment_id, version = await latest_version(db, ref)
        sweep_ids = await stored_sweeps.sweep_ids_of_version(db, experiment_id, version)
        spec = await load_spec(db, experiment_id, version)
        return Scope(
            version=version,
            sweep_ids=tuple(sweep_ids),
            scorers=tuple(automatic_scorers(spec)),
        )
