"""Exports: resolving what an export of an experiment (or one of its sweeps) stands on, then
handing it to `export/`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from ..domain.errors import BadInput, NotFound
from ..domain.experiment import ExperimentSpec
from ..domain.records import Leaderboard
from .evolution import evolution
from .experiments import Experiments
from .lookups import resolve_experiment
from .rankings import Rankings
from .services import Services
from .sweeps import Sweeps

if TYPE_CHECKING:
    from ..export import ExportJob


class Exports:
    def __init__(
        self, services: Services, experiments: Experiments, sweeps: Sweeps, rankings: Rankings
    ) -> None:
        self._services = services
        self._experiments = experiments
        self._sweeps = sweeps
        self._rankings = rankings

    async def export(
        self, ref: str, fmt: str, out: TextIO, *, sweep: str | None = None, top: int = 10
    ) -> None:
        """See `Workbench.export`."""
        from ..export import export_sweep, writer_for  # here: other commands skip the writers

        writer_for(fmt)
        await export_sweep(await self._job(ref, sweep, top), fmt, out)

    async def _job(self, ref: str, sweep: str | None, top: int) -> ExportJob:
        """Resolve `ref` (an experiment id or name) and `sweep` (None: rank the experiment's
        latest version over all its sweeps, and list the runs of its latest sweep).

        Raises NotFound for unknown ids and BadInput for a sweep of another experiment.
        """
        from ..export import ExportJob

        if top < 1:
            raise BadInput(f"--top must be at least 1, got {top}")
        experiment_id = await resolve_experiment(self._services.db, ref)
        if sweep is not None:
            record = await self._sweeps.get_sweep(sweep)
            if record.experiment_id != experiment_id:
                raise BadInput(
                    f"sweep {record.id} belongs to experiment {record.experiment!r}, not {ref!r}"
                )
            version = record.experiment_version
        else:
            latest = await self._experiments.get_experiment(experiment_id)
            version = latest.version
            sweeps = await self._sweeps.list_sweeps(experiment_id)
            of_version = [s for s in sweeps if s.experiment_version == version]
            if not sweeps:
                raise NotFound(f"experiment {latest.name!r} has no sweeps yet")
            record = (of_version or sweeps)[0]
        # The ranked version's own spec: a later edit of the experiment must not change an export.
        detail = await self._experiments.get_experiment(experiment_id, version=version)
        asked_sweep = record.id if sweep is not None else None

        async def rank(top: int | None) -> Leaderboard:
            return await self._rankings.ranking(experiment_id, top=top, sweep=asked_sweep)

        return ExportJob(
            db=self._services.db,
            sweep=record,
            spec=ExperimentSpec.model_validate(detail.spec),
            top=top,
            rank=rank,
            asked_sweep=asked_sweep,
            evolution=await evolution(self._services.db, self._sweeps, record.id)
            if record.strategy == "evolve"
            else None,
        )
