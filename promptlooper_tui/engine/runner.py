"""The sweep runner: asks the strategy for batches, runs them through the pipeline, scores and
persists every run as it finishes, and reports progress on the event bus.

Crash safety: a batch's plan is committed before its runs start, each finished run is committed
with its stage results and scores in one unit, and every LLM answer is in the cache before the
run goes on. Resuming replays the stored batches, skips finished runs, and finds every call that
had returned in the cache.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateError

from ..domain.errors import (
    EndpointError,
    PromptLooperError,
    StorageError,
    TemplateLimitExceeded,
)
from ..domain.experiment import (
    API_PARAMETERS,
    ExperimentSpec,
    HumanScorerSpec,
    SweepSettings,
)
from ..domain.records import RateLimitCounts
from ..domain.tokens import estimate_tokens
from ..store.database import Database, Statement
from .budget import TokenBudget
from .cache import CachedValue, CallCache, cache_key, canonical_json
from .concurrency import AdaptiveLimiter, RateLimitMeter
from .endpoints import EndpointPool, ResolvedEndpoint
from .events import EventBus
from .scorers import ScoreContext, Scorer, ScorerError, build_scorer
from .strategies import Batch, config_key, make_strategy
from .templates import PipelineTemplates

#: What rendering one run's templates may raise: that run fails, the sweep goes on.
_RENDER_ERRORS = (TemplateError, TemplateLimitExceeded, KeyError, TypeError, ArithmeticError)

log = logging.getLogger(__name__)

#: A sweep whose first this-many runs all fail is aborted (scaled up with concurrency).
_ABORT_AFTER_FAILURES = 10
#: Tokens assumed for a judge or embedding call beyond the output it reads.
_SCORER_CALL_ESTIMATE = 120
#: Output tokens assumed for a stage without max_tokens when estimating budget use.
_DEFAULT_OUTPUT_ESTIMATE = 512
#: At most one `sweep.rate_limited` event per this many seconds (a 429 storm is one story).
_RATE_LIMIT_EVENT_EVERY = 1.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_id_for(sweep_id: str, key: str, item_index: int, repeat: int) -> str:
    """Deterministic, so a resumed sweep recognises the runs it already finished."""
    digest = hashlib.sha256(f"{sweep_id}:{key}:{item_index}:{repeat}".encode()).hexdigest()
    return "run_" + digest[:16]


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


@dataclass
class SweepCounters:
    """Live counts for this invocation (the store holds the sweep's totals)."""

    runs_done: int = 0
    runs_failed: int = 0
    runs_cached: int = 0
    runs_running: int = 0
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _RunMeter:
    """One run's LLM use, stages and judge/embedding calls alike.

    `tokens_*`, `cost` and `latency_ms` are what the run costs without a cache (comparable
    across configs however much was cached); `paid_*` is what this execution really spent.
    """

    calls: int = 0
    cached_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    paid_in: int = 0
    paid_out: int = 0
    paid_cost: float = 0.0
    #: Models called without a price: the run's cost leaves them out.
    unpriced: set[str] = field(default_factory=set)

    @property
    def paid(self) -> int:
        return self.paid_in + self.paid_out


class _History:
    """What adaptive strategies look at: every config proposed so far, in order, and the mean
    score per (config, item) over completed runs."""

    def __init__(self) -> None:
        self._sums: dict[str, dict[int, list[float]]] = defaultdict(dict)
        self._configs: dict[str, Mapping[str, Any]] = {}

    def add_config(self, config: Mapping[str, Any]) -> None:
        self._configs.setdefault(config_key(config), config)

    def add(self, key: str, item_index: int, score: float | None) -> None:
        if score is None:
            return
        total = self._sums[key].setdefault(item_index, [0.0, 0.0])
        total[0] += score
        total[1] += 1

    def item_scores(self, key: str) -> Mapping[int, float]:
        return {item: s / n for item, (s, n) in self._sums.get(key, {}).items() if n}

    def configs(self) -> list[Mapping[str, Any]]:
        return list(self._configs.values())


class LLMGateway:
    """Every LLM call of a sweep: cache first, then the endpoint; charges the run's meter."""

    def __init__(
        self,
        cache: CallCache,
        pool: EndpointPool,
        job: SweepJob,
        limiter: AdaptiveLimiter,
        rate_limits: RateLimitMeter,
    ) -> None:
        self._cache = cache
        self._pool = pool
        self._job = job
        self.limiter = limiter
        self.rate_limits = rate_limits

    async def chat(
        self,
        endpoint: ResolvedEndpoint,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        repeat: int,
        meter: _RunMeter,
    ) -> tuple[str, CachedValue, bool]:
        model = str(params.get("model", ""))
        key = cache_key(
            base_url=endpoint.cache_identity,
            model=model,
            messages=messages,
            params=params,
            repeat=repeat,
        )

        async def call() -> CachedValue:
            # Only a miss needs a client (and the simulated endpoint, a server).
            client = await self._pool.client(endpoint)
            result = await client.chat(
                messages,
                params,
                stream=self._job.settings.stream,
                limiter=self.limiter,
                rate_limits=self.rate_limits,
            )
            value: dict[str, Any] = {
                "text": result.text,
                "finish_reason": result.finish_reason,
                "latency_ms": round(result.latency_ms, 2),
            }
            if result.warnings:
                value["warnings"] = list(result.warnings)
            return CachedValue(value, result.tokens_in, result.tokens_out)

        entry, hit = await self._cache.get_or_call(
            key, "chat", call, read=self._job.read_cache, fresh_since=self._job.fresh_since
        )
        self._charge(meter, endpoint, model, entry, hit)
        return key, entry, hit

    async def embed(
        self, endpoint: ResolvedEndpoint, model: str, texts: list[str], meter: _RunMeter
    ) -> list[list[float]]:
        key = cache_key(
            base_url=endpoint.cache_identity, model=model, kind="embedding", inputs=texts
        )

        async def call() -> CachedValue:
            client = await self._pool.client(endpoint)
            result = await client.embed(
                model, texts, limiter=self.limiter, rate_limits=self.rate_limits
            )
            return CachedValue({"vectors": result.vectors}, result.tokens_in, 0)

        entry, hit = await self._cache.get_or_call(
            key, "embedding", call, read=self._job.read_cache, fresh_since=self._job.fresh_since
        )
        self._charge(meter, endpoint, model, entry, hit)
        vectors: list[list[float]] = entry.value["vectors"]
        return vectors

    @staticmethod
    def _charge(
        meter: _RunMeter, endpoint: ResolvedEndpoint, model: str, entry: CachedValue, hit: bool
    ) -> None:
        cost = endpoint.cost(model, entry.tokens_in, entry.tokens_out)
        if model not in endpoint.pricing and "*" not in endpoint.pricing:
            meter.unpriced.add(model)
        meter.calls += 1
        meter.tokens_in += entry.tokens_in
        meter.tokens_out += entry.tokens_out
        meter.cost += cost
        meter.latency_ms += float(entry.value.get("latency_ms", 0.0))
        if hit:
            meter.cached_calls += 1
        else:
            meter.paid_in += entry.tokens_in
            meter.paid_out += entry.tokens_out
            meter.paid_cost += cost


class RunLLM:
    """What a scorer sees of the LLM: calls charged to the run being scored."""

    def __init__(
        self,
        gateway: LLMGateway,
        pool: EndpointPool,
        default: ResolvedEndpoint,
        repeat: int,
        meter: _RunMeter,
    ) -> None:
        self._gateway = gateway
        self._pool = pool
        self._default = default
        self._repeat = repeat
        self._meter = meter

    async def _endpoint(self, ref: Any) -> ResolvedEndpoint:
        return self._default if ref is None else await self._pool.resolve(ref)

    async def chat(
        self, endpoint: Any, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> str:
        resolved = await self._endpoint(endpoint)
        _, entry, _ = await self._gateway.chat(
            resolved, messages, params, self._repeat, self._meter
        )
        return str(entry.value["text"])

    async def embed(self, endpoint: Any, model: str, texts: list[str]) -> list[list[float]]:
        resolved = await self._endpoint(endpoint)
        return await self._gateway.embed(resolved, model, texts, self._meter)


@dataclass(frozen=True)
class _Outcome:
    """How one run ended, as its row records it."""

    status: str
    score: float | None
    error: str | None
    truncated: bool
    latency_ms: float


@dataclass
class _Planned:
    config: dict[str, Any]
    key: str
    config_id: int
    item_index: int
    repeat: int
    #: A failed run being retried: its old stage results and scores are replaced.
    retry: bool = False


def worker_count(max_concurrency: int) -> int:
    """Runs a sweep keeps going at once. The limiter caps calls in flight at max_concurrency;
    a quarter more workers keep those slots busy while others render, score or wait for the
    cache (without them a 50 ms endpoint at concurrency 16 ran ~10 % slower). It also bounds
    what a kill can cost: each worker has at most one call whose answer is not yet saved."""
    return max_concurrency + max_concurrency // 4 + 1


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
    ) -> None:
        self.job = job
        self._db = db
        self._cache = cache
        self._pool = pool
        self._bus = bus
        spec = job.spec
        self._templates = PipelineTemplates(spec)
        self._fixed = spec.fixed_parameters()
        self._space = spec.parameter_space()
        self._items = spec.items
        self._scorers: list[tuple[str, Scorer]] = [
            (spec.scorer_name(i), build_scorer(s))
            for i, s in enumerate(spec.scorers)
            if not isinstance(s, HumanScorerSpec)
        ]
        self.limiter = AdaptiveLimiter(job.settings.max_concurrency)
        self.rate_limits = RateLimitMeter(wait_cap=job.settings.rate_limit_wait_s)
        self.rate_limits.on_change = self._rate_limits_changed
        #: 429s of this sweep counted before this invocation, and this meter's already saved.
        self._429_before = self._429_saved = 0
        #: Models of this sweep without a price, as stored with the sweep.
        self._unpriced: set[str] = set()
        #: Runs and items of the racing rounds so far (see `_narrow_plan`).
        self._raced_runs = self._raced_items = 0
        self._rate_limit_note: asyncio.TimerHandle | None = None
        self._rate_limit_noted = float("-inf")
        self.counters = SweepCounters()
        self._history = _History()
        self._budget = TokenBudget(job.settings.max_tokens)
        self._running = asyncio.Event()
        self._running.set()
        self._stopping = False
        self._suspending = False
        self._budget_hit = False
        self._inflight: set[asyncio.Task[None]] = set()
        #: Set while no run is in flight (workers of a paused sweep wait outside `_inflight`).
        self._no_run_inflight = asyncio.Event()
        self._no_run_inflight.set()
        self._announcing: set[asyncio.Future[None]] = set()
        self._consecutive_failures = 0
        self._abort: str | None = None
        self.expected_runs = 0
        self.status = "running"

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

    # -- the sweep -----------------------------------------------------------------------------

    async def run(self) -> str:
        """Run to an end state and return it: completed, stopped, budget_exhausted or failed
        (or paused, after `suspend()`)."""
        job = self.job
        try:
            self._endpoint = await self._pool.resolve(job.spec.endpoint)
            self._gateway = LLMGateway(self._cache, self._pool, job, self.limiter, self.rate_limits)
            done = await self._load_progress()
            # A pause may have come in before the runner got here; it must not be overwritten.
            await self._set_status(self.status, owner=True)
            stored = await self._stored_batches()
            strategy = make_strategy(self._space, job.settings, len(self._items))
            n_configs, n_items = strategy.plan_size()
            self.expected_runs = n_configs * n_items * job.settings.repeats
            await self._store_expected_runs()
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
                    batch = strategy.next_batch(number, self._history)
                    if batch is None:
                        break
                    await self._store_batch(number, batch)
                await self._narrow_plan(batch)
                await self._run_batch(batch, done)
                number += 1
        except asyncio.CancelledError:
            self._stopping = True
        except PromptLooperError as exc:
            # A failure we name (the database cannot be written...): its message says it all;
            # a traceback in the log would only bury it.
            return await self._finish("failed", error=str(exc))
        except Exception as exc:
            log.exception("sweep %s failed", job.sweep_id)
            return await self._finish("failed", error=_describe(exc))
        if self._abort is not None:
            return await self._finish("failed", error=self._abort)
        if self._stopping:
            return await self._finish("paused" if self._suspending else "stopped")
        if self._budget_hit:
            return await self._finish("budget_exhausted")
        return await self._finish("completed")

    async def _store_expected_runs(self) -> None:
        """The sweep's planned total, for every reader of its status (DESIGN §3 `runs.total`)."""
        await self._db.execute(
            "UPDATE sweeps SET expected_runs = ? WHERE id = ?",
            (self.expected_runs, self.job.sweep_id),
        )

    async def _narrow_plan(self, batch: Batch) -> None:
        """Racing runs each round's survivors on the next items: once a round is planned, the
        plan is what the earlier rounds ran, plus this round's survivors on every item left."""
        if self.job.settings.strategy != "racing":
            return
        repeats = self.job.settings.repeats
        self._raced_runs += len(batch.configs) * len(batch.items) * repeats
        self._raced_items += len(batch.items)
        left = max(0, len(self._items) - self._raced_items)
        plan = self._raced_runs + len(batch.configs) * left * repeats
        if plan < self.expected_runs:
            self.expected_runs = plan
            await self._store_expected_runs()

    async def _load_progress(self) -> dict[tuple[str, int, int], str]:
        """Finished runs of this sweep (for resume) and the tokens it has already used."""
        rows = await self._db.fetchall(
            "SELECT c.key, r.item_index, r.repeat, r.status, r.score FROM runs r "
            "JOIN configs c ON c.id = r.config_id WHERE r.sweep_id = ?",
            (self.job.sweep_id,),
        )
        done: dict[tuple[str, int, int], str] = {}
        for row in rows:
            done[(row["key"], row["item_index"], row["repeat"])] = row["status"]
            if row["status"] == "completed":
                self._history.add(row["key"], row["item_index"], row["score"])
        sweep = await self._db.fetchone(
            "SELECT tokens_in + tokens_out AS used, responses_429, unpriced FROM sweeps "
            "WHERE id = ?",
            (self.job.sweep_id,),
        )
        self._budget.used = int(sweep["used"]) if sweep else 0
        if sweep and sweep["unpriced"]:
            self._unpriced = set(json.loads(sweep["unpriced"]))
        self._429_before = int(sweep["responses_429"]) if sweep else 0
        return done

    async def _stored_batches(self) -> dict[int, Batch]:
        rows = await self._db.fetchall(
            "SELECT number, plan FROM sweep_batches WHERE sweep_id = ? ORDER BY number",
            (self.job.sweep_id,),
        )
        batches = {}
        for row in rows:
            plan = json.loads(row["plan"])
            batches[row["number"]] = Batch(configs=plan["configs"], items=plan["items"])
            for config in plan["configs"]:
                self._history.add_config(config)
        return batches

    async def _store_batch(self, number: int, batch: Batch) -> None:
        sweep_id = self.job.sweep_id
        statements: list[Statement] = [
            (
                "INSERT OR IGNORE INTO configs (sweep_id, key, params) VALUES (?, ?, ?)",
                (sweep_id, config_key(c), canonical_json(c)),
            )
            for c in batch.configs
        ]
        statements += [
            (
                "UPDATE configs SET dropped = 1 WHERE sweep_id = ? AND key = ?",
                (sweep_id, config_key(c)),
            )
            for c in batch.dropped
        ]
        planned = len(batch.configs) * len(batch.items) * self.job.settings.repeats
        statements.append(
            (
                "INSERT INTO sweep_batches (sweep_id, number, plan) VALUES (?, ?, ?)",
                (
                    sweep_id,
                    number,
                    canonical_json({"configs": batch.configs, "items": batch.items}),
                ),
            )
        )
        statements.append(
            (
                "UPDATE sweeps SET planned_runs = planned_runs + ?, updated_at = ? WHERE id = ?",
                (planned, now_iso(), sweep_id),
            )
        )
        await self._db.write(statements)
        for config in batch.configs:
            self._history.add_config(config)

    async def _config_ids(self, batch: Batch) -> dict[str, int]:
        keys = [config_key(c) for c in batch.configs]
        ids: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._db.fetchall(
                f"SELECT key, id FROM configs WHERE sweep_id = ? AND key IN ({marks})",
                (self.job.sweep_id, *chunk),
            )
            ids.update({row["key"]: row["id"] for row in rows})
        return ids

    def _pending(
        self, batch: Batch, ids: dict[str, int], done: dict[tuple[str, int, int], str]
    ) -> Iterator[_Planned]:
        retry = self.job.retry_failed
        for config in batch.configs:
            key = config_key(config)
            for item_index in batch.items:
                for repeat in range(self.job.settings.repeats):
                    status = done.get((key, item_index, repeat))
                    if status == "completed" or (status == "failed" and not retry):
                        continue
                    yield _Planned(
                        config, key, ids[key], item_index, repeat, retry=status == "failed"
                    )

    async def _run_batch(self, batch: Batch, done: dict[tuple[str, int, int], str]) -> None:
        ids = await self._config_ids(batch)
        pending = self._pending(batch, ids, done)
        workers = worker_count(self.job.settings.max_concurrency)
        await asyncio.gather(*(self._worker(pending) for _ in range(workers)))
        await self._settle_writes()

    async def _settle_writes(self) -> None:
        """Wait until every finished run and cache entry of this sweep is committed."""
        if self._announcing:
            await asyncio.gather(*self._announcing, return_exceptions=True)
        await self._cache.flush()

    async def _worker(self, pending: Iterator[_Planned]) -> None:
        for planned in pending:
            await self._running.wait()
            if self._stopping or self._budget_hit or self._abort is not None:
                return
            estimate = self._budget.estimate(functools.partial(self._prior_estimate, planned))
            if not self._budget.try_reserve(estimate):
                self._budget_hit = True
                return
            task = asyncio.current_task()
            assert task is not None
            self._inflight.add(task)
            self._no_run_inflight.clear()
            try:
                actual = await self._execute(planned)
            except asyncio.CancelledError:
                if self._stopping:
                    self._budget.settle(estimate, 0)
                    return
                raise
            finally:
                self._inflight.discard(task)
                if not self._inflight:
                    self._no_run_inflight.set()
            self._budget.settle(estimate, actual)

    def _prior_estimate(self, planned: _Planned) -> int:
        params = {**self._fixed, **planned.config}
        item = self._items[planned.item_index]
        try:
            first = self._templates.render_stage(
                0, {**params, **self.job.spec.pipeline[0].params}, item, {}
            )
        except _RENDER_ERRORS:
            first = []
        prompt = sum(estimate_tokens(m["content"]) for m in first)
        total = output = 0
        for stage in self.job.spec.pipeline:
            output = int({**params, **stage.params}.get("max_tokens") or _DEFAULT_OUTPUT_ESTIMATE)
            total += prompt + output
            prompt = output + prompt // 2
        # Judge and embedding calls read the final output (plus a prompt of their own).
        paid_scorers = sum(1 for _, scorer in self._scorers if scorer.spends_tokens)
        return total + paid_scorers * (output + _SCORER_CALL_ESTIMATE)

    # -- one run -------------------------------------------------------------------------------

    async def _execute(self, planned: _Planned) -> int:
        """Run one (config, item, repeat) through the pipeline, score it and commit it.

        Returns the tokens it really spent (cache hits are free).
        """
        job = self.job
        run_id = run_id_for(job.sweep_id, planned.key, planned.item_index, planned.repeat)
        item = self._items[planned.item_index]
        params = {**self._fixed, **planned.config}
        meter = _RunMeter()
        counters = self.counters
        counters.runs_running += 1
        self._publish(
            "run.started",
            run_id=run_id,
            config=planned.config,
            item_index=planned.item_index,
            repeat=planned.repeat,
        )
        stages: list[dict[str, Any]] = []
        outputs: dict[str, str] = {}
        error: str | None = None
        try:
            for index, stage in enumerate(job.spec.pipeline):
                stage_params = {**params, **stage.params}
                request = {k: v for k, v in stage_params.items() if k in API_PARAMETERS}
                messages: list[dict[str, str]] = []
                try:
                    messages = self._templates.render_stage(index, stage_params, item, outputs)
                    _, entry, hit = await self._gateway.chat(
                        self._endpoint, messages, request, planned.repeat, meter
                    )
                except _RENDER_ERRORS as exc:
                    error = f"stage {stage.name}: template error: {exc}"
                except EndpointError as exc:
                    error = f"stage {stage.name}: {exc}"
                if error is not None:
                    stages.append(_stage_row(index, stage.name, messages, None, None, False, error))
                    break
                text = str(entry.value["text"])
                outputs[stage.name] = text
                stages.append(_stage_row(index, stage.name, messages, text, entry, hit, None))
        finally:
            counters.runs_running -= 1
        truncated = any(stage["finish_reason"] == "length" for stage in stages)
        scores: list[tuple[str, float | None, float, str | None]] = []
        if error is None:
            scores = await self._score(item, outputs, params, planned.repeat, meter)
        latency_ms = round(meter.latency_ms, 2)
        run_score = _weighted(scores)
        status = "failed" if error else "completed"
        saved = self._db.submit(
            self._run_statements(
                run_id,
                planned,
                _Outcome(status, run_score, error, truncated, latency_ms),
                meter,
                stages,
                scores,
            )
        )
        self._account(meter, status)
        if status == "completed":
            self._history.add(planned.key, planned.item_index, run_score)
            self._consecutive_failures = 0
        else:
            self._note_failure(error)
        event = {
            "config": planned.config,
            "item_index": planned.item_index,
            "repeat": planned.repeat,
            "score": run_score,
            "error": error,
            "tokens": meter.tokens_in + meter.tokens_out,
            "paid_tokens": meter.paid,
            "cost": meter.cost,
            "cached": meter.calls > 0 and meter.calls == meter.cached_calls,
            "latency_ms": latency_ms,
            "scores": {name: value for name, value, _, _ in scores},
            "scorer_errors": {name: err for name, _, _, err in scores if err is not None},
            "truncated": truncated,
        }
        # The worker moves on to its next run while this one commits; the event waits for
        # the commit, so nothing is ever announced that a crash could still lose.
        announce = asyncio.ensure_future(self._announce(saved, f"run.{status}", run_id, event))
        self._announcing.add(announce)
        announce.add_done_callback(self._announcing.discard)
        return meter.paid

    async def _announce(
        self, saved: asyncio.Future[None], type: str, run_id: str, data: dict[str, Any]
    ) -> None:
        try:
            await saved
        except StorageError as exc:
            self._abort = f"cannot save results: {exc}"
            self.stop()
            return
        self._publish(type, run_id=run_id, **data)

    async def _score(
        self,
        item: Mapping[str, Any],
        outputs: dict[str, str],
        params: dict[str, Any],
        repeat: int,
        meter: _RunMeter,
    ) -> list[tuple[str, float | None, float, str | None]]:
        final = outputs[self.job.spec.pipeline[-1].name]
        context = ScoreContext(
            item=item,
            params=params,
            stage_outputs=outputs,
            llm=RunLLM(self._gateway, self._pool, self._endpoint, repeat, meter),
        )
        results = []
        for name, scorer in self._scorers:
            try:
                value = float(await scorer.score(item.get("input"), final, context))
                results.append((name, min(1.0, max(0.0, value)), scorer.weight, None))
            except (ScorerError, PromptLooperError) as exc:
                results.append((name, None, scorer.weight, str(exc)))
            except Exception as exc:
                log.warning("scorer %s failed", name, exc_info=True)
                results.append((name, None, scorer.weight, f"scorer crashed: {_describe(exc)}"))
        return results

    def _run_statements(
        self,
        run_id: str,
        planned: _Planned,
        outcome: _Outcome,
        meter: _RunMeter,
        stages: list[dict[str, Any]],
        scores: list[tuple[str, float | None, float, str | None]],
    ) -> list[Statement]:
        job = self.job
        finished = now_iso()
        statements: list[Statement] = []
        if planned.retry:
            statements += [
                ("DELETE FROM stage_results WHERE run_id = ?", (run_id,)),
                ("DELETE FROM scores WHERE run_id = ? AND kind = 'auto'", (run_id,)),
            ]
        statements += [
            (
                "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
                "status, score, error, tokens_in, tokens_out, cost, latency_ms, calls, "
                "cached_calls, finished_at, truncated, unpriced) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET status = excluded.status, score = excluded.score, "
                "error = excluded.error, tokens_in = excluded.tokens_in, "
                "tokens_out = excluded.tokens_out, cost = excluded.cost, "
                "latency_ms = excluded.latency_ms, calls = excluded.calls, "
                "cached_calls = excluded.cached_calls, finished_at = excluded.finished_at, "
                "truncated = excluded.truncated, unpriced = excluded.unpriced",
                (
                    run_id,
                    job.sweep_id,
                    planned.config_id,
                    job.experiment_id,
                    planned.item_index,
                    planned.repeat,
                    outcome.status,
                    outcome.score,
                    outcome.error,
                    meter.tokens_in,
                    meter.tokens_out,
                    meter.cost,
                    outcome.latency_ms,
                    meter.calls,
                    meter.cached_calls,
                    finished,
                    int(outcome.truncated),
                    json.dumps(sorted(meter.unpriced)) if meter.unpriced else None,
                ),
            ),
        ]
        statements += [
            (
                "INSERT INTO stage_results (run_id, stage_index, name, messages, output, "
                "tokens_in, tokens_out, latency_ms, cached, error, finish_reason, warnings) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, *stage.values()),
            )
            for stage in stages
        ]
        statements += [
            (
                "INSERT INTO scores (run_id, scorer, kind, value, weight, error, created_at) "
                "VALUES (?, ?, 'auto', ?, ?, ?, ?)",
                (run_id, name, value, weight, err, finished),
            )
            for name, value, weight, err in scores
        ]
        statements.append(
            (
                "UPDATE sweeps SET tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, "
                "cost = cost + ?, responses_429 = responses_429 + ?, calls = calls + ?, "
                "cache_hits = cache_hits + ?, updated_at = ? WHERE id = ?",
                (
                    meter.paid_in,
                    meter.paid_out,
                    meter.paid_cost,
                    self._unsaved_429s(),
                    meter.calls,
                    meter.cached_calls,
                    finished,
                    job.sweep_id,
                ),
            )
        )
        if not meter.unpriced <= self._unpriced:
            self._unpriced |= meter.unpriced
            statements.append(
                (
                    "UPDATE sweeps SET unpriced = ? WHERE id = ?",
                    (json.dumps(sorted(self._unpriced)), job.sweep_id),
                )
            )
        statements.append(
            (
                "UPDATE cache_counters SET hits = hits + ?, misses = misses + ? WHERE id = 1",
                (meter.cached_calls, meter.calls - meter.cached_calls),
            )
        )
        return statements

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

    def _account(self, meter: _RunMeter, status: str) -> None:
        counters = self.counters
        counters.calls += meter.calls
        counters.cache_hits += meter.cached_calls
        counters.tokens_in += meter.paid_in
        counters.tokens_out += meter.paid_out
        counters.cost += meter.paid_cost
        if status == "completed":
            counters.runs_done += 1
            if meter.calls and meter.calls == meter.cached_calls:
                counters.runs_cached += 1
        else:
            counters.runs_failed += 1

    # -- status --------------------------------------------------------------------------------

    async def _set_status(
        self, status: str, *, owner: bool = False, error: str | None = None
    ) -> None:
        finished = (
            now_iso() if status in ("completed", "stopped", "budget_exhausted", "failed") else None
        )
        await self._db.execute(
            "UPDATE sweeps SET status = ?, error = ?, updated_at = ?, finished_at = ?, "
            "owner_pid = CASE WHEN ? THEN ? ELSE owner_pid END WHERE id = ?",
            (status, error, now_iso(), finished, owner, os.getpid(), self.job.sweep_id),
        )

    async def _finish(self, status: str, error: str | None = None) -> str:
        # Runs cancelled by stop() are gone; the ones that finished are committed first.
        await self._settle_writes()
        if self._rate_limit_note is not None:
            # The last word on 429s goes out before the end (not after it, or never), and
            # no sooner than the one-a-second rhythm allows.
            self._rate_limit_note.cancel()
            due = self._rate_limit_noted + _RATE_LIMIT_EVENT_EVERY
            await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
            self._announce_rate_limits()
        unsaved = self._unsaved_429s()
        if unsaved:
            await self._db.execute(
                "UPDATE sweeps SET responses_429 = responses_429 + ? WHERE id = ?",
                (unsaved, self.job.sweep_id),
            )
        self.status = status
        await self._set_status(status, error=error)
        event = {
            "completed": "sweep.completed",
            "stopped": "sweep.stopped",
            "budget_exhausted": "sweep.budget_exhausted",
            "failed": "sweep.stopped",
        }.get(status)
        if event is not None:  # a suspended sweep announced `sweep.paused` already
            self._publish(event, status=status, error=error)
        return status

    # -- rate limits ---------------------------------------------------------------------------

    def rate_limit_counts(self) -> RateLimitCounts:
        """The sweep's 429s so far (all its invocations) and the calls waiting on them now."""
        meter = self.rate_limits
        return RateLimitCounts(
            responses_429=self._429_before + meter.responses_429,
            waiting_s=round(meter.waiting_s(), 1),
            waiting_calls=meter.waiting_calls,
        )

    def _unsaved_429s(self) -> int:
        """429s counted since the last write that added them to the sweep's row."""
        count = self.rate_limits.responses_429
        unsaved, self._429_saved = count - self._429_saved, count
        return unsaved

    def _rate_limits_changed(self) -> None:
        """Announce the meter's news at most once a second, and always its latest state."""
        if self._rate_limit_note is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._rate_limit_noted + _RATE_LIMIT_EVENT_EVERY - loop.time())
        self._rate_limit_note = loop.call_later(delay, self._announce_rate_limits)

    def _announce_rate_limits(self) -> None:
        self._rate_limit_note = None
        self._rate_limit_noted = asyncio.get_running_loop().time()
        self._publish("sweep.rate_limited", **self.rate_limit_counts().model_dump())

    def _publish(self, type: str, run_id: str | None = None, **data: Any) -> None:
        self._bus.publish(
            type, self.job.experiment_id, sweep_id=self.job.sweep_id, run_id=run_id, data=data
        )


def _stage_row(
    index: int,
    name: str,
    messages: list[dict[str, str]],
    output: str | None,
    entry: CachedValue | None,
    hit: bool,
    error: str | None,
) -> dict[str, Any]:
    return {
        "stage_index": index,
        "name": name,
        "messages": json.dumps(messages, ensure_ascii=False),
        "output": output,
        "tokens_in": 0 if entry is None else entry.tokens_in,
        "tokens_out": 0 if entry is None else entry.tokens_out,
        "latency_ms": 0.0 if entry is None else float(entry.value.get("latency_ms", 0.0)),
        "cached": int(hit),
        "error": error,
        "finish_reason": None if entry is None else entry.value.get("finish_reason"),
        "warnings": _warnings_json(entry),
    }


def _warnings_json(entry: CachedValue | None) -> str | None:
    warnings = None if entry is None else entry.value.get("warnings")
    return json.dumps(warnings, ensure_ascii=False) if warnings else None


def _weighted(scores: list[tuple[str, float | None, float, str | None]]) -> float | None:
    """Weighted mean of the scores that were produced; None when no scorer produced one."""
    total = weight_sum = 0.0
    for _, value, weight, _ in scores:
        if value is not None:
            total += value * weight
            weight_sum += weight
    return round(total / weight_sum, 6) if weight_sum else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
