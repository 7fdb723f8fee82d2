"""What a runner needs to (re)start one sweep, and how many runs it keeps going at once."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.experiment import ExperimentSpec, SweepSettings


@dataclass(frozen=True)
class SweepJob:
    """Everything the runner needs to (re)start one sweep."""

    sweep_id: str
    experiment_id: str
    experiment_name: str
    experiment_version: int
    spec: ExperimentSpec
    settings: SweepSettings
    read_cache: bool = True
    #: With --no-cache, only entries this sweep wrote count as hits (on resume).
    fresh_since: str = ""
    retry_failed: bool = False


def worker_count(max_concurrency: int) -> int:
    """Runs a sweep keeps going at once. The limiter caps calls in flight at max_concurrency;
    a quarter more workers keep those slots busy while others render, score or wait for the
    cache (without them a 50 ms endpoint at concurrency 16 ran ~10 % slower). It also bounds
    what a kill can cost: each worker has at most one call whose answer is not yet saved."""
    return max_concurrency + max_concurrency // 4 + 1
