"""Events: the only way progress travels outward (TUI, CLI progress, websocket feed, webhooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = (
    "sweep.started",
    "run.started",
    "run.completed",
    "run.failed",
    "score.added",
    "sweep.paused",
    "sweep.resumed",
    "sweep.stopped",
    "sweep.budget_exhausted",
    "sweep.completed",
    #: The endpoint answers 429: counts and waits, at most one event a second per sweep.
    "sweep.rate_limited",
)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: str
    type: str
    experiment_id: str
    sweep_id: str | None = None
    run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: The bus instance (one per process) that numbered it: seqs of two epochs don't compare.
    epoch: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "ts": self.ts,
            "type": self.type,
            "experiment_id": self.experiment_id,
            "sweep_id": self.sweep_id,
            "run_id": self.run_id,
            "data": self.data,
        }
