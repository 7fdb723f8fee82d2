"""A sweep's coordination: asks the strategy for batches, keeps workers executing their runs
within the token budget, stores and announces every run as it finishes, answers pause, resume,
stop and suspend, and sets the sweep's status.

Crash safety: a batch's plan is committed before its runs start, each finished run is committed
with its stage results and scores in one unit, and every LLM answer is in the cache before the
run goes on. Resuming replays the stored batches, skips finished runs, and finds every call that
had returned in the cache.

Sharing (DESIGN §10): while `promptlooper worker` processes are about, a batch's runs are stored
as work units that the workers here and those of every worker process (`help_out`) claim a few
at a time (`unit_source.py`); with none about, runs come from the plan and cost the store no
more. Only the coordinator (the lease holder, `work_leases.py`) plans batches and sets the
status; after each batch it reads what every process found, so adaptive strategies decide the
same whoever ran the runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from typing import Any

from ..domain.errors import PromptLooperError
from ..domain.records import RateLimitCounts
from ..store import sweep_progress as progress
from ..store import work
from ..store.database import Database
from ..store.timestamps import now_iso
from .budget import TokenBudget
from .cache import CallCache, canonical_json
from .concurrency import AdaptiveLimiter, RateLimitMeter
from .endpoints import EndpointPool
from .events import EventBus
from .evolve_proposer import OverBudget
from .evolve_setup import evolve_parameter, evolved_spec, sweep_strategy
from .expected_runs import ExpectedRuns
from .gateway import LLMGateway
from .run_execution import (
    Finished,
    PlannedRun,
    RunExecutor,
    describe,
    pending_runs,
    run_id_for,
)
from .run_recorder import RunRecorder
from .search_space import config_key
from .strategy import Batch
from .sweep_history import SweepHistory
from .sweep_job import SweepJob, worker_count
from .sweep_rate_limits import SweepRateLimits
from .unit_source import PlanSource, RunSource, UnitSource
from .work_leases import WorkLeases

log = logging.getLogger(__name__)

#: A sweep whose first this-many runs all fail is aborted (scaled up with concurrency).
_ABORT_AFTER_FAILURES = 10
#: The sweep's end states, each with the event that announces it.
_END_EVENTS = {
    "completed": "sweep.completed",
    "stopped": "sweep.stopped",
    "budget_exhausted": "sweep.budget_exhausted",
    "failed": "sweep.stopped",
}

#: How often a coordinator looks whether the units other processes hold are done.
_OTHERS_POLL_S = 0.2
#: A worker process that has not reported for this long is not counted on to help.
_WORKER_SEEN_S = 30.0


class SweepRunner:
    """Runs one sweep to an end state. Control it with pause(), resume() and stop()."""

    def __init__(
        self,
        job: SweepJob,
        *,
        db: Database,
        cache: CallCache,
        pool: EndpointPool,
        bus: EventBus,
        leases: WorkLeases,
    ) -> None:
        self.job = job
        self._db = db
        self._cache = cache
        self._pool = pool
        self._bus = bus
        self._items = job.spec.items
        self.limiter = AdaptiveLimiter(job.settings.max_concurrency)
        self.rate_limits = RateLimitMeter(wait_cap=job.settings.rate_limit_wait_s)
        self._429s = SweepRateLimits(self.rate_limits, self._publish)
        self._recorder = RunRecorder(
            db, job.sweep_id, job.experiment_id, self._429s, self._publish, self._lost
        )
        self.counters = self._recorder.counters
        self._history = SweepHistory()
        self._budget = TokenBudget(job.settings.max_tokens)
        self._running = asyncio.Event()
        self._running.set()
        self._stopping = False
        self._suspending = False
        self._handing_over = False
        self._budget_hit = False
        self._inflight: set[asyncio.Task[None]] = set()
        #: Set while no run is in flight (workers of a paused sweep wait outside `_inflight`).
        self._no_run_inflight = asyncio.Event()
        self._no_run_inflight.set()
        self._consecutive_failures = 0
        self._abort: str | None = None
        self.expected_runs = 0
        self.status = "running"
        self._leases = leases
        #: Each config of the sweep by id (key, parameters), as far as seen.
        self._configs: dict[int, tuple[str, dict[str, Any]]] = {}
        self._units = UnitSource(
            db, job.sweep_id, leases, self._configs, worker_count(job.settings.max_concurrency)
        )
        #: Where the workers take their runs: the store's units, or the batch's plan.
        self._source: RunSource = self._units

    # -- control -------------------------------------------------------------------------------

    async def pause(self) -> None:
        if self.status != "running":
            return
        self._running.clear()
        self.status = "paused"
        await self._set_status("paused")
        self._publish("sweep.paused")

    async def resume(self) -> None:
        if self.status != "paused":
            return
        self.status = "running"
        await self._set_status("running")
        self._running.set()
        self._publish("sweep.resumed")

    async def wait_inflight(self, within: float) -> None:
        """Wait up to `within` seconds for the runs in flight to finish (after a pause, no new
        run starts, so this drains the sweep)."""
        try:
            async with asyncio.timeout(within):
                await self._no_run_inflight.wait()
        except TimeoutError:
            return

    def stop(self) -> None:
        """Stop dispatching and cancel runs in flight; the sweep stays resumable."""
        self._stopping = True
        self._running.set()
        for task in list(self._inflight):
            task.cancel()

    def suspend(self) -> None:
        """Stop as `stop()` does, but end `paused`, with no end event: the process is going
        away and leaves the sweep to be resumed (it then reads as `interrupted`)."""
        self._suspending = True
        self.stop()

    def hold(self) -> None:
        """Start no new run (the ones in flight go on), without a word to the store: a
        leaving worker's first step before it hands the sweep over."""
        self._running.clear()

    def hand_over(self) -> None:
        """Stop as `stop()` does, but leave the sweep running for another process to carry
        on: no status is written, its coordination and unstarted units are let go at once."""
        self._handing_over = True
        self.stop()

    def rate_limit_counts(self) -> RateLimitCounts:
        """The sweep's 429s so far (all its invocations) and the calls waiting on them now."""
        return self._429s.counts()

    # -- the sweep -----------------------------------------------------------------------------

    async def run(self) -> str:
        """Run to an end state and return it: completed, stopped, budget_exhausted or failed
        (or paused, after `suspend()`)."""
        job = self.job
        try:
            await self._prepare()
            done = await self._load_progress()
            # A pause may have come in before the runner got here; it must not be overwritten.
            await self._set_status(self.status, owner=True)
            stored = await self._stored_batches()
            strategy = await sweep_strategy(
                self._db, job, self._pool, self._gateway, self._budget, self._publish
            )
            expected = ExpectedRuns(job.settings, len(self._items), strategy.plan_size())
            self.expected_runs = expected.total
            await progress.set_expected_runs(self._db, job.sweep_id, self.expected_runs)
            finished_before = sum(
                1 for s in done.values() if s == "completed" or not job.retry_failed
            )
            self._publish(
                "sweep.started",
                strategy=job.settings.strategy,
                expected_runs=self.expected_runs,
                finished_before=finished_before,
            )
            number = 0
            while not self._stopping and not self._budget_hit and self._abort is None:
                batch = stored.get(number)
                if batch is None:
                    try:
                        await strategy.prepare(number, self._history)
                    except OverBudget:
                        self._budget_hit = True
                        break
                    batch = strategy.next_batch(number, self._history)
                    if batch is None:
                        break
                    await self._store_batch(number, batch)
                if expected.narrow(batch):
                    self.expected_runs = expected.total
                    await progress.set_expected_runs(self._db, job.sweep_id, expected.total)
                await self._run_batch(number, batch, done)
                number += 1
        except asyncio.CancelledError:
            self._stopping = True
        except PromptLooperError as exc:
            # A failure we name (the database cannot be written...): its message says it all;
            # a traceback in the log would only bury it.
            return await self._finish("failed", error=str(exc))
        except Exception as exc:
            log.exception("sweep %s failed", job.sweep_id)
            return await self._finish("failed", error=describe(exc))
        if self._abort is not None:
            return await self._finish("failed", error=self._abort)
        if self._handing_over:
            return await self._let_go()
        if self._stopping:
            return await self._finish("paused" if self._suspending else "stopped")
        if self._budget_hit:
            return await self._finish("budget_exhausted")
        return await self._finish("completed")

    async def help_out(self) -> int:
        """Run units of this sweep, which another process coordinates, until none is free;
        returns how many runs were done here. Its status and batches are not this runner's."""
        try:
            await self._prepare()
            self._budget.used = (await progress.sweep_usage(self._db, self.job.sweep_id)).tokens
            await self._execute_units()
        except asyncio.CancelledError:
            self._stopping = True
        finally:
            await self._settle_writes()
            await self._db.write(self._units.give_back_unstarted())
        return self.counters.runs_done + self.counters.runs_failed

    async def _prepare(self) -> None:
        job = self.job
        self._endpoint = await self._pool.resolve(job.spec.endpoint)
        self._gateway = LLMGateway(
            self._cache,
            self._pool,
            self.limiter,
            self.rate_limits,
            stream=job.settings.stream,
            read_cache=job.read_cache,
            fresh_since=job.fresh_since,
        )
        #: evolve: the parameter naming each run's prompt, which may be one proposed since.
        self._evolving = evolve_parameter(job.spec, job.settings)
        await self._load_prompts()

    async def _load_prompts(self) -> None:
        """Build the executor on the experiment's prompts and those its proposer wrote."""
        spec = await evolved_spec(self._db, self.job.sweep_id, self.job.spec, self.job.settings)
        self._prompt_names = frozenset(spec.prompts)
        self._executor = RunExecutor(spec, self._gateway, self._pool, self._endpoint)

    async def _load_progress(self) -> Finished:
        """Finished runs of this sweep (for resume) and what it has already used."""
        sweep_id = self.job.sweep_id
        done: Finished = {}
        for row in await progress.finished_runs(self._db, sweep_id):
            done[(row["key"], row["item_index"], row["repeat"])] = row["status"]
            if row["status"] == "completed":
                self._history.add(row["key"], row["item_index"], row["score"])
        usage = await progress.sweep_usage(self._db, sweep_id)
        self._budget.used = usage.tokens
        self._recorder.unpriced = usage.unpriced
        self._429s.counted_before = usage.responses_429
        return done

    async def _stored_batches(self) -> dict[int, Batch]:
        batches = {}
        for number, plan in (await progress.stored_batches(self._db, self.job.sweep_id)).items():
            batches[number] = Batch(configs=plan["configs"], items=plan["items"])
            for config in plan["configs"]:
                self._history.add_config(config)
        return batches

    async def _store_batch(self, number: int, batch: Batch) -> None:
        await self._db.write(
            progress.batch_statements(
                self.job.sweep_id,
                number,
                canonical_json({"configs": batch.configs, "items": batch.items}),
                [(config_key(c), canonical_json(c)) for c in batch.configs],
                [(key, canonical_json(d.as_dict())) for key, d in batch.decided.items()],
                len(batch.configs) * len(batch.items) * self.job.settings.repeats,
                now_iso(),
            )
        )
        for config in batch.configs:
            self._history.add_config(config)

    async def _run_batch(self, number: int, batch: Batch, done: Finished) -> None:
        sweep_id = self.job.sweep_id
        keys = [config_key(c) for c in batch.configs]
        ids = await progress.config_ids(self._db, sweep_id, keys)
        for config, key in zip(batch.configs, keys, strict=True):
            self._configs[ids[key]] = (key, config)
        pending = (
            (run_id_for(sweep_id, p.key, p.item_index, p.repeat), p)
            for p in pending_runs(batch, ids, done, self.job)
        )
        if not await work.workers_seen_since(self._db, time.time() - _WORKER_SEEN_S):
            self._source = PlanSource(pending)
            await self._execute_units()
            self._source = self._units
            await self._settle_writes()
            await self._catch_up()
            return
        units = [(r, p.config_id, p.item_index, p.repeat, p.retry) for r, p in pending]
        await self._db.write(work.add_unit_statements(sweep_id, number, units))
        await self._execute_units()
        # Units other processes hold: wait for them (and take over those whose lease ran out).
        while not self._ending() and await work.units_left(self._db, sweep_id, number):
            await asyncio.sleep(_OTHERS_POLL_S)
            await self._execute_units()
        await self._settle_writes()
        await self._catch_up()

    async def _execute_units(self) -> None:
        workers = worker_count(self.job.settings.max_concurrency)
        await asyncio.gather(*(self._worker() for _ in range(workers)))

    def _ending(self) -> bool:
        return self._stopping or self._budget_hit or self._abort is not None

    async def _catch_up(self) -> None:
        """What every process found in this sweep so far (the coordinator plans the next
        batch on it), and the tokens they used."""
        rows = await progress.finished_runs(self._db, self.job.sweep_id)
        self._history = SweepHistory.of(self._history.configs(), rows)
        self._budget.used = (await progress.sweep_usage(self._db, self.job.sweep_id)).tokens

    async def _settle_writes(self) -> None:
        """Wait until every finished run and cache entry of this sweep is committed."""
        await self._recorder.settle()
        await self._cache.flush()

    async def _worker(self) -> None:
        source = self._source
        while True:
            await self._running.wait()
            if self._ending():
                return
            next_run = await source.next()
            if next_run is None:
                return
            run_id, planned = next_run
            prior = functools.partial(self._executor.prior_estimate, planned)
            estimate = self._budget.estimate(prior)
            if not self._budget.try_reserve(estimate):
                self._budget_hit = True
                self._give_back(source, run_id)
                return
            task = asyncio.current_task()
            assert task is not None
            self._inflight.add(task)
            self._no_run_inflight.clear()
            try:
                actual = await self._run_one(run_id, planned, source)
            except asyncio.CancelledError:
                if self._stopping:
                    self._budget.settle(estimate, 0)
                    self._give_back(source, run_id)
                    return
                raise
            finally:
                self._inflight.discard(task)
                if not self._inflight:
                    self._no_run_inflight.set()
            self._budget.settle(estimate, actual)
            # Outside `_inflight`: a stop never finds a worker that waits for the writer.
            await self._recorder.keep_up()

    # -- one run -------------------------------------------------------------------------------

    def _give_back(self, source: RunSource, run_id: str) -> None:
        released = source.give_back(run_id)
        if released is not None:
            self._db.submit([released])

    async def _run_one(self, run_id: str, planned: PlannedRun, source: RunSource) -> int:
        """Execute one run and record it (its work unit done in the same write). Returns the
        tokens it really spent (cache hits are free)."""
        prompt = planned.config.get(self._evolving) if self._evolving else None
        if prompt is not None and prompt not in self._prompt_names:
            await self._load_prompts()  # a generation proposed since this process began
        self.counters.runs_running += 1
        self._publish(
            "run.started",
            run_id=run_id,
            config=planned.config,
            item_index=planned.item_index,
            repeat=planned.repeat,
        )
        try:
            run = await self._executor.execute(planned)
        finally:
            self.counters.runs_running -= 1
        # The worker moves on to its next run while this one commits.
        self._recorder.record(run_id, planned, run, source.finished_statement(run_id))
        if run.status == "completed":
            self._history.add(planned.key, planned.item_index, run.score)
            self._consecutive_failures = 0
        else:
            self._note_failure(run.error)
        return run.meter.paid

    def _lost(self, reason: str) -> None:
        self._abort = reason
        self.stop()

    def _note_failure(self, error: str | None) -> None:
        """Give up on a sweep whose runs keep failing in a row (endpoint down, wrong model
        name) instead of failing every remaining run one by one; it stays resumable."""
        self._consecutive_failures += 1
        limit = max(_ABORT_AFTER_FAILURES, 2 * self.job.settings.max_concurrency)
        if self._consecutive_failures >= limit:
            self._abort = (
                f"aborted after {self._consecutive_failures} failed runs in a row; "
                f"last error: {error}"
            )

    # -- status --------------------------------------------------------------------------------

    async def _set_status(
        self, status: str, *, owner: bool = False, error: str | None = None
    ) -> None:
        now = now_iso()
        await progress.set_status(
            self._db,
            self.job.sweep_id,
            status,
            now=now,
            finished_at=now if status in _END_EVENTS else None,
            error=error,
            owner_pid=os.getpid() if owner else None,
        )

    async def _finish(self, status: str, error: str | None = None) -> str:
        # Runs cancelled by stop() are gone; the ones that finished are committed first.
        await self._settle_writes()
        await self._429s.last_word()
        unsaved = self._429s.unsaved()
        if unsaved:
            await progress.add_429s(self._db, self.job.sweep_id, unsaved)
        self.status = status
        released = self._units.give_back_unstarted()
        if status in _END_EVENTS:
            released.append(work.clear_units_statement(self.job.sweep_id))
        released.append(self._leases.drop_coordination_statement(self.job.sweep_id))
        await self._db.write(released)
        await self._set_status(status, error=error)
        event = _END_EVENTS.get(status)
        if event is not None:  # a suspended sweep announced `sweep.paused` already
            self._publish(event, status=status, error=error)
        return status

    async def _let_go(self) -> str:
        await self._settle_writes()
        released = self._units.give_back_unstarted()
        released.append(self._leases.drop_coordination_statement(self.job.sweep_id))
        await self._db.write(released)
        return "running"

    def _publish(self, type: str, run_id: str | None = None, **data: Any) -> None:
        self._bus.publish(
            type, self.job.experiment_id, sweep_id=self.job.sweep_id, run_id=run_id, data=data
        )
