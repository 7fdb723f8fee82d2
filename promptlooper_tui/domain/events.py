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
    #: A front-end of another process asks the one running the sweep to pause, resume or
    #: stop it (data: {"action": ...}); the runner's own event follows when it has.
    "sweep.control",
    #: evolve: the proposer wrote a generation's prompts (data: generation, the proposer's
    #: model, cached, and each proposal's name or rejection reason, parents and rationale).
    "sweep.generation",
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
    #: The process that published it first when that is another one sharing the store (its
    #: owner, "host:pid:nonce"), relayed in; None for this process's own events.
    origin: str | None = None

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
