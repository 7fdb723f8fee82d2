"""What the live monitor shows, kept apart from widgets: counts, the latest runs and the scores,
folded from bus events between frames so the screen redraws a few times a second however fast
the events come."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..domain.events import Event
from ..domain.records import RateLimitCounts, RunRecord, SweepRecord, SweepSummary
from ..engine.run_recorder import SweepCounters
from ..engine.sweep import SweepRunner

#: Sweep states after which nothing more will happen.
ENDED = frozenset({"completed", "stopped", "budget_exhausted", "failed", "interrupted"})

_STATUS_EVENTS = {
    "sweep.started": "running",
    "sweep.resumed": "running",
    "sweep.paused": "paused",
    "sweep.stopped": "stopped",
    "sweep.budget_exhausted": "budget_exhausted",
    "sweep.completed": "completed",
}


@dataclass(frozen=True)
class RunLine:
    """One finished run, as the latest-runs table shows it."""

    run_id: str
    status: str
    config: dict[str, Any]
    #: The dataset item the run answered (its index in the experiment's dataset).
    item_index: int
    score: float | None
    tokens: int
    latency_ms: float
    cached: bool
    error: str | None

    @classmethod
    def from_event(cls, event: Event) -> RunLine:
        data = event.data
        return cls(
            run_id=event.run_id or "",
            status="completed" if event.type == "run.completed" else "failed",
            config=dict(data.get("config") or {}),
            item_index=int(data.get("item_index") or 0),
            score=data.get("score"),
            tokens=int(data.get("tokens") or 0),
            latency_ms=float(data.get("latency_ms") or 0.0),
            cached=bool(data.get("cached")),
            error=data.get("error"),
        )

    @classmethod
    def from_record(cls, run: RunRecord) -> RunLine:
        return cls(
            run_id=run.id,
            status=run.status,
            config=run.config,
            item_index=run.item_index,
            score=run.score,
            tokens=run.tokens_in + run.tokens_out,
            latency_ms=run.latency_ms,
            cached=run.calls > 0 and run.calls == run.cached_calls,
            error=run.error,
        )


@dataclass(frozen=True)
class Counts:
    """The sweep's totals as the progress bar and counters show them."""

    done: int = 0
    failed: int = 0
    cached: int = 0
    #: Runs in flight; None when unknown (a sweep not running in this process).
    running: int | None = None
    tokens: int = 0
    #: None when a model has no price (shown as unpriced).
    cost: float | None = 0.0
    expected: int = 0
    concurrency: int | None = None
    max_concurrency: int | None = None
    #: Seconds to the end at the current pace; None when unknown or ended.
    eta: float | None = None
    #: The endpoint's 429s over the sweep, and the calls waiting on them now.
    rate_limits: RateLimitCounts = field(default_factory=RateLimitCounts)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @classmethod
    def stored(cls, summary: SweepSummary, sweep: SweepRecord) -> Counts:
        """What the database says (a sweep not running in this process, or ended)."""
        return cls(
            done=summary.runs.completed,
            failed=summary.runs.failed,
            cached=summary.runs.cached,
            tokens=summary.tokens.input + summary.tokens.output,
            cost=summary.cost,
            expected=max(summary.runs.total, sweep.planned_runs),
            rate_limits=summary.rate_limits,
        )


class LiveCounts:
    """Counts of a sweep running in this process: the database's totals when the monitor
    attached, plus what the runner's counters added since. Both are read back to back, so the
    only error is a run committed but not yet counted at that instant (attaching mid-run)."""

    def __init__(self, stored: Counts, runner: SweepRunner) -> None:
        self._stored = stored
        self._runner = runner
        self._start: SweepCounters = dataclasses.replace(runner.counters)

    def now(self, clock: float | None = None) -> Counts:
        runner, start, stored = self._runner, self._start, self._stored
        c = runner.counters
        done = stored.done + c.runs_done - start.runs_done
        failed = stored.failed + c.runs_failed - start.runs_failed
        expected = max(runner.expected_runs, stored.expected, done + failed)
        elapsed = (time.monotonic() if clock is None else clock) - c.started
        finished_here = c.runs_done + c.runs_failed
        pace = finished_here / elapsed if elapsed > 0 else 0.0
        eta = (expected - done - failed) / pace if pace > 0 else None
        return Counts(
            done=done,
            failed=failed,
            cached=stored.cached + c.runs_cached - start.runs_cached,
            running=c.runs_running,
            tokens=stored.tokens + c.tokens_in + c.tokens_out - start.tokens_in - start.tokens_out,
            cost=None if stored.cost is None else stored.cost + c.cost - start.cost,
            expected=expected,
            concurrency=runner.limiter.limit,
            max_concurrency=runner.job.settings.max_concurrency,
            eta=eta if runner.status == "running" else None,
            rate_limits=runner.rate_limit_counts(),
        )


class SweepFeed:
    """The latest runs and recent scores of one sweep, fed by stored runs and live events."""

    def __init__(self, *, recent: int = 100, window: int = 2000) -> None:
        self.latest: deque[RunLine] = deque(maxlen=recent)
        #: Scores of the last `window` scored runs, oldest first.
        self.scores: deque[float] = deque(maxlen=window)
        self.status: str | None = None
        #: Events folded so far; results that arrived since the leaderboard was fetched; and a
        #: number that changes whenever `latest` does (so its table is redrawn only then).
        self.events = 0
        self.new_results = 0
        self.revision = 0
        #: evolve: generations proposed since the monitor last read the sweep's lineage.
        self.new_generations = 0
        # Ids of the runs read from the database: events for runs committed while the monitor
        # was reading them must not be counted twice.
        self._stored_ids: set[str] = set()
        # Ids of the latest runs taken from events (an ordered set, the oldest dropped): a
        # sweep of another process is also polled from the database, whose newest runs are
        # among them.
        self._folded_ids: dict[str, None] = {}
        self._folded_most = 2 * recent

    def load(self, runs: Iterable[RunRecord]) -> None:
        """Start again from the database's runs, newest first (they are the whole truth)."""
        self.latest.clear()
        self.scores.clear()
        self._stored_ids.clear()
        self._folded_ids.clear()
        self.add_stored(runs)

    def add_stored(self, runs: Iterable[RunRecord]) -> None:
        """Add the database's newest runs (newest first) that are not shown yet."""
        for run in reversed(list(runs)):
            if run.id not in self._stored_ids and run.id not in self._folded_ids:
                self._stored_ids.add(run.id)
                self._add(RunLine.from_record(run))

    def fold(self, events: Iterable[Event]) -> bool:
        """Take the events since the last frame; True when the sweep's status changed."""
        changed = False
        for event in events:
            self.events += 1
            if event.type in ("run.completed", "run.failed"):
                self.new_results += 1
                if event.run_id not in self._stored_ids:
                    self._fold_run(event)
            elif event.type == "score.added":
                self.new_results += 1
            elif event.type == "sweep.generation":
                self.new_generations += 1
            elif event.type in _STATUS_EVENTS:
                # A failed sweep ends with sweep.stopped carrying its status.
                self.status = event.data.get("status") or _STATUS_EVENTS[event.type]
                changed = True
        return changed

    def _fold_run(self, event: Event) -> None:
        folded = self._folded_ids
        folded[event.run_id or ""] = None
        if len(folded) > self._folded_most:
            del folded[next(iter(folded))]
        self._add(RunLine.from_event(event))

    def _add(self, line: RunLine) -> None:
        self.latest.appendleft(line)
        self.revision += 1
        if line.score is not None:
            self.scores.append(line.score)

    def histogram(self, bins: int = 10) -> list[int]:
        """Counts of the recent scores in `bins` equal bins over [0, 1]."""
        counts = [0] * bins
        for score in self.scores:
            counts[min(bins - 1, max(0, int(score * bins)))] += 1
        return counts
