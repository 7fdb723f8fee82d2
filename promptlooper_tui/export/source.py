"""What every export format starts from: what it ranks (an experiment's latest version over all
its sweeps, or one sweep), the sweep whose runs it lists, the experiment version, and the
Workbench to query. Exports read only; they never touch endpoints (so no secret can leak)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..domain.errors import BadInput, NotFound
from ..domain.experiment import ExperimentSpec
from ..domain.records import Leaderboard, SweepRecord
from ..store.database import Database

if TYPE_CHECKING:
    from ..service import Workbench


@dataclass(frozen=True)
class ExportJob:
    """One export: the sweep whose runs it lists (`sweep`: the one asked for, else the
    experiment's latest), the spec of the experiment version it ranks (`spec`), how many
    leaderboard rows the report shows (`top`), and the Workbench to read through. The ranking
    is the experiment's (`experiment_id`, every sweep of its latest version) unless a sweep
    was asked for (`asked_sweep`)."""

    wb: Workbench
    sweep: SweepRecord
    spec: ExperimentSpec
    top: int
    experiment_id: str = ""
    asked_sweep: str | None = None

    async def ranking(self, top: int | None) -> Leaderboard:
        """The leaderboard this export stands on (its first `top` configs)."""
        return await self.wb.ranking(
            self.experiment_id or self.sweep.experiment_id, top=top, sweep=self.asked_sweep
        )

    @property
    def db(self) -> Database:
        return self.wb.db


async def load_job(wb: Workbench, ref: str, sweep: str | None, top: int) -> ExportJob:
    """Resolve `ref` (an experiment id or name) and `sweep` (None: rank the experiment's
    latest version over all its sweeps, and list the runs of its latest sweep).

    Raises NotFound for unknown ids and BadInput for a sweep of another experiment.
    """
    if top < 1:
        raise BadInput(f"--top must be at least 1, got {top}")
    experiment_id = await wb.resolve_experiment(ref)
    if sweep is not None:
        record = await wb.get_sweep(sweep)
        if record.experiment_id != experiment_id:
            raise BadInput(
                f"sweep {record.id} belongs to experiment {record.experiment!r}, not {ref!r}"
            )
        version = record.experiment_version
    else:
        latest = await wb.get_experiment(experiment_id)
        version = latest.version
        sweeps = await wb.list_sweeps(experiment_id)
        of_version = [s for s in sweeps if s.experiment_version == version]
        record = (of_version or sweeps or [None])[0]  # type: ignore[list-item]
        if record is None:
            raise NotFound(f"experiment {latest.name!r} has no sweeps yet")
    # The ranked version's own spec: a later edit of the experiment must not change an export.
    detail = await wb.get_experiment(experiment_id, version=version)
    return ExportJob(
        wb,
        record,
        ExperimentSpec.model_validate(detail.spec),
        top,
        experiment_id=experiment_id,
        asked_sweep=record.id if sweep is not None else None,
    )


def utc_now() -> str:
    """The export timestamp, in the same ISO 8601 form the store uses."""
    return datetime.now(UTC).isoformat(timespec="seconds")
