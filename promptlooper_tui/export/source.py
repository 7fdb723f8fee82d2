"""What every export format starts from: the sweep, the experiment version it ran, and the
Workbench to query. Exports read only; they never touch endpoints (so no secret can leak)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from ..domain.experiment import ExperimentSpec
from ..domain.records import SweepRecord
from ..store.database import Database

if TYPE_CHECKING:
    from ..service import Workbench


@dataclass(frozen=True)
class ExportJob:
    """One export: the sweep (`sweep`), the spec of the experiment version it ran (`spec`),
    how many leaderboard rows the report shows (`top`), and the Workbench to read through."""

    wb: Workbench
    sweep: SweepRecord
    spec: ExperimentSpec
    top: int

    @property
    def db(self) -> Database:
        return self.wb.db


async def load_job(wb: Workbench, ref: str, sweep: str | None, top: int) -> ExportJob:
    """Resolve `ref` (an experiment id or name) and `sweep` (default: its latest sweep).

    Raises NotFound for unknown ids and BadInput for a sweep of another experiment.
    """
    if top < 1:
        raise BadInput(f"--top must be at least 1, got {top}")
    record = await wb.get_sweep(sweep or ref)
    if sweep is not None:
        experiment_id = await wb.resolve_experiment(ref)
        if record.experiment_id != experiment_id:
            raise BadInput(
                f"sweep {record.id} belongs to experiment {record.experiment!r}, not {ref!r}"
            )
    # The sweep's own version: a later edit of the experiment must not change its export.
    detail = await wb.get_experiment(record.experiment_id, version=record.experiment_version)
    return ExportJob(wb, record, ExperimentSpec.model_validate(detail.spec), top)


def utc_now() -> str:
    """The export timestamp, in the same ISO 8601 form the store uses."""
    return datetime.now(UTC).isoformat(timespec="seconds")
