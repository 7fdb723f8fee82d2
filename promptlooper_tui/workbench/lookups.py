"""Finding what a user named: an experiment by id or name, a sweep by id or by its
experiment, and the spec of an experiment version. Every part of the Workbench uses these."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..domain.errors import NotFound
from ..domain.experiment import ExperimentSpec, HumanScorerSpec
from ..engine.process_identity import process_alive
from ..store import experiments as stored_experiments
from ..store import sweeps as stored_sweeps
from ..store.database import Database

if TYPE_CHECKING:
    from ..engine.sweep import SweepRunner

ACTIVE_STATES = ("running", "paused")


async def resolve_experiment(db: Database, ref: str) -> str:
    """An experiment id from an id or a name."""
    experiment_id = await stored_experiments.find_experiment_id(db, ref)
    if experiment_id is None:
        raise NotFound(f"no experiment with id or name {ref!r}")
    return experiment_id


async def latest_version(db: Database, ref: str) -> tuple[str, int]:
    """(id, latest version) of experiment `ref`."""
    experiment_id = await resolve_experiment(db, ref)
    version = await stored_experiments.latest_version_number(db, experiment_id)
    assert version is not None
    return experiment_id, version


async def resolve_sweep(db: Database, ref: str) -> str:
    """A sweep id from a sweep id, or an experiment id/name (its latest sweep)."""
    if await stored_sweeps.sweep_exists(db, ref):
        return ref
    try:
        experiment_id = await resolve_experiment(db, ref)
    except NotFound:
        raise NotFound(f"no sweep (or experiment) with id or name {ref!r}") from None
    sweep_id = await stored_sweeps.latest_sweep_id(db, experiment_id)
    if sweep_id is None:
        raise NotFound(f"experiment {ref!r} has no sweeps yet")
    return sweep_id


async def load_spec(db: Database, experiment_id: str, version: int) -> ExperimentSpec:
    stored = await stored_experiments.spec_json(db, experiment_id, version)
    if stored is None:
        raise NotFound(f"experiment {experiment_id} has no version {version}")
    return ExperimentSpec.model_validate(json.loads(stored))


def automatic_scorers(spec: ExperimentSpec) -> list[str]:
    """The names of the experiment's automatic scorers (everything but `human`), in order."""
    return [
        spec.scorer_name(i)
        for i, scorer in enumerate(spec.scorers)
        if not isinstance(scorer, HumanScorerSpec)
    ]


def effective_status(
    status: str, owner_pid: int | None, live_status: str | None, row: Any = None
) -> str:
    """A sweep live in this process is as its runner says (`live_status`: the stored row may
    not have caught up yet, e.g. just after a resume). Otherwise, one stored as running/paused
    whose process is gone was interrupted (a `paused` sweep owned by nobody was paused by
    someone and left so). With its store `row` (which says who coordinates it), one
    coordinated from another machine is as stored while its coordinator's lease lasts: its
    pid means nothing here."""
    if live_status is not None:
        return live_status
    if status == "paused" and owner_pid is None:
        return status
    if row is not None and _coordinated_elsewhere(row):
        return status
    gone = owner_pid == os.getpid() or not _pid_alive(owner_pid)
    if status in ACTIVE_STATES and gone:
        return "interrupted"
    return status


def live_status(runners: Mapping[str, SweepRunner], sweep_id: str | None) -> str | None:
    """The status of the sweep's runner in this process, if it runs here."""
    runner = runners.get(sweep_id) if sweep_id is not None else None
    return runner.status if runner is not None else None


def _coordinated_elsewhere(row: Any) -> bool:
    host, until = row["coordinator_host"], row["coordinated_until"]
    return host is not None and host != _HOST and until >= time.time()


_HOST = socket.gethostname()


def _pid_alive(pid: int | None) -> bool:
    return bool(pid) and (pid == os.getpid() or process_alive(pid))  # type: ignore[arg-type]
