"""What the simulated endpoint remembers: request counters, a bounded log and the fault dice."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .options import SimulatorOptions

#: Entries kept in the request log; older ones are dropped first.
LOG_LIMIT = 200_000


@dataclass(slots=True)
class RequestRecord:
    """One /v1 request as the server saw it."""

    seq: int
    path: str
    fingerprint: str  # sha256 hex of the canonical JSON body (of the raw bytes if not JSON)
    started: float
    status: int | None = None
    finished: float | None = None  # when the full response was sent; None if cut or unsent

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
        }


class SimulatorState:
    """Request counters, a bounded request log and the fault dice; lives on `app.state.sim`.

    Only /v1 routes are counted and logged; the /_sim routes that read them are not.
    """

    def __init__(self, options: SimulatorOptions, log_limit: int = LOG_LIMIT) -> None:
        self.options = options
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.log: deque[RequestRecord] = deque(maxlen=log_limit)
        self._seq = 0
        self._dice = random.Random(options.seed)

    def begin(self, path: str, fingerprint: str) -> RequestRecord:
        """Count and log a request that just arrived."""
        self._seq += 1
        self.requests += 1
        self.by_path[path] += 1
        record = RequestRecord(self._seq, path, fingerprint, time.time())
        self.log.append(record)
        return record

    def answered(self, record: RequestRecord, status: int) -> None:
        """Note the status the request is being answered with."""
        record.status = status
        self.by_status[status] += 1

    def finish(self, record: RequestRecord) -> None:
        """Note that the whole response has been sent."""
        record.finished = time.time()

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (a fault happens)."""
        return rate > 0.0 and self._dice.random() < rate

    def authorized(self, authorization: str | None) -> bool:
        key = self.options.api_key
        return key is None or authorization == f"Bearer {key}"

    def reset(self) -> None:
        """Forget every count and log entry."""
        self.requests = 0
        self.by_path.clear()
        self.by_status.clear()
        self.log.clear()
        self._seq = 0

    def stats(self) -> dict[str, Any]:
        """The /_sim/stats document: {"requests", "by_path", "by_status"} (status keys as text)."""
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(status): count for status, count in self.by_status.items()},
        }

    def records(self) -> list[dict[str, Any]]:
        """The /_sim/requests document, oldest first."""
        return [record.as_dict() for record in self.log]
