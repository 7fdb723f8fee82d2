"""The Workbench: every user operation, once. The CLI, TUI, daemon and MCP server are thin
wrappers over these methods."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from .domain.errors import BadInput, Conflict, NotFound
from .domain.experiment import ExperimentSpec, HumanScorerSpec, SweepSettings
from .domain.records import (
    RESUMABLE,
    CacheStats,
    CallCounts,
    ConnectionResult,
    DeliveryRecord,
    EndpointRecord,
    ExperimentDetail,
    ExperimentRecord,
    ImportResult,
    Leaderboard,
    LeaderboardEntry,
    RateLimitCounts,
    RunCounts,
    RunDetail,
    RunPage,
    RunRecord,
    ScoreRecord,
    StageRecord,
    SweepPlan,
    SweepRecord,
    SweepSummary,
    TokenCounts,
    WebhookRecord,
)
from .domain.trust import CallerPolicy
from .engine.cache import CallCache, canonical_json, process_alive
from .engine.endpoints import EndpointPool, ResolvedEndpoint
from .engine.events import EventBus
from .engine.guard import CheckGuard
from .engine.leaderboard_cache import LeaderboardCache
from .engine.limits import TooExpensive, check_sweep_size, default_limits
from .engine.loader import LoadedExperiment, load_experiment_file
from .engine.planning import plan_sweep
from .engine.ranking import Scope
from .engine.runner import SweepCounters, SweepJob, SweepRunner, now_iso
from .engine.webhooks import (
    WebhookDispatcher,
    check_event_types,
    check_url,
    delivery_record,
    webhook_record,
)
from .keystore import SecretBox
from .settings import Settings
from .store.database import Database

if TYPE_CHECKING:
    from .simulated.options import SimulatorOptions

_ACTIVE_STATES = ("running", "paused")
#: The experiment's `name:` line in its YAML (top level: no indentation).
_TOP_LEVEL_NAME = re.compile(r"^name:[ \t]*\S.*$", re.MULTILINE)


class SweepOverrides(BaseModel):
    """Per-sweep changes to the experiment's `sweep:` settings (CLI flags, API body)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None
    samples: int | None = Field(default=None, ge=1)
    repeats: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    no_cache: bool = False

    def apply(self, base: SweepSettings) -> SweepSettings:
        update = {
            "strategy": self.strategy,
            "samples": self.samples,
            "repeats": self.repeats,
            "max_concurrency": self.concurrency,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        merged = base.model_dump() | {k: v for k, v in update.items() if v is not None}
        try:
            settings = SweepSettings.model_validate(merged)
        except Exception as exc:
            raise BadInput(f"invalid sweep settings: {exc}") from None
        if settings.strategy in ("random", "guided") and settings.samples is None:
            raise BadInput(
                f"strategy {settings.strategy!r} needs a number of samples (--samples N)"
            )
        return settings


class Workbench:
    """Open with `async with open_workbench(settings) as wb:`."""

    def __init__(
        self, settings: Settings, db: Database, policy: CallerPolicy | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        #: Who this Workbench's callers are (DESIGN §9): the terminal's person, or remote.
        self.policy = policy or CallerPolicy.local()
        self.bus = EventBus()
        self.cache = CallCache(db)
        self.secrets = SecretBox(settings.secret_key_path)
        self.endpoints = EndpointPool(self._resolve_stored_endpoint)
        self.webhooks = WebhookDispatcher(db, self.bus, self.secrets)
        self.boards = LeaderboardCache(db)
        self._runners: dict[str, SweepRunner] = {}
        self._tasks: dict[str, asyncio.Task[str]] = {}
        #: The bounds on experiment checks (DESIGN §9); `PROMPTLOOPER_LIMIT_*` change them.
        self.limits = default_limits()
        self._guard: CheckGuard | None = None
        #: Counters of sweeps this process ran, kept for their summaries.
        self._counters: dict[str, SweepCounters] = {}
        #: Sweeps `close()` found live and stopped (id -> experiment name): the app's command
        #: prints how to resume them once the app has quit.
        self.stopped_on_close: dict[str, str] = {}

    async def close(self) -> None:
        for runner in self._runners.values():
            self.stopped_on_close[runner.job.sweep_id] = runner.job.experiment_name
            runner.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._guard is not None:
            await self._guard.aclose()
        await self.endpoints.aclose()
        await self.db.close()

    # -- experiments ---------------------------------------------------------------------------

    @staticmethod
    def validate_file(path: str | Path) -> LoadedExperiment:
        """Check a file the person at the terminal named (in this process: it is trusted)."""
        return load_experiment_file(path)

    async def validate_text(
        self, text: str, source: str = "<experiment>", base_dir: Path | None = None
    ) -> LoadedExperiment:
        """Check experiment text in a worker process, bounded in time and memory, as this
        Workbench's callers may (DESIGN §9); relative dataset files resolve against
        `base_dir` (a remote caller's: inside the data folder only)."""
        if self._guard is None:
            self._guard = CheckGuard(self.limits)
        return await self._guard.load_text(
            text, source=source, base_dir=base_dir, policy=self.policy
        )

    async def import_experiment(self, loaded: LoadedExperiment) -> ImportResult:
        """Store an experiment: a new name makes version 1, changed content a new version.

        Safe against another process importing at the same moment: names and version numbers
        are claimed with ON CONFLICT DO NOTHING and read back, so the loser of a race takes
        the next number (or finds its content already stored) instead of failing.
        """
        spec = loaded.spec
        spec_json = canonical_json(spec.model_dump(mode="json", by_alias=True))
        content_hash = hashlib.sha256(spec_json.encode()).hexdigest()
        await self.db.execute(
            "INSERT INTO experiments (id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            ("exp_" + uuid.uuid4().hex[:10], spec.name, now_iso()),
        )
        row = await self.db.fetchone("SELECT id FROM experiments WHERE name = ?", (spec.name,))
        assert row is not None
        experiment_id = row["id"]
        while True:
            latest = await self.db.fetchone(
                "SELECT version, content_hash FROM experiment_versions WHERE experiment_id = ? "
                "ORDER BY version DESC LIMIT 1",
                (experiment_id,),
            )
            if latest is not None and latest["content_hash"] == content_hash:
                return ImportResult(
                    id=experiment_id, name=spec.name, version=latest["version"], created=False
                )
            version = 1 if latest is None else latest["version"] + 1
            await self.db.write(
                [_version_insert(experiment_id, version, loaded, spec_json, content_hash)]
            )
            stored = await self.db.fetchone(
                "SELECT content_hash FROM experiment_versions "
                "WHERE experiment_id = ? AND version = ?",
                (experiment_id, version),
            )
            if stored is not None and stored["content_hash"] == content_hash:
                return ImportResult(id=experiment_id, name=spec.name, version=version, created=True)

    async def import_file(self, path: str | Path) -> ImportResult:
        return await self.import_experiment(load_experiment_file(path))

    async def import_text(
        self, text: str, source: str = "<experiment>", base_dir: Path | None = None
    ) -> ImportResult:
        return await self.import_experiment(await self.validate_text(text, source, base_dir))

    async def resolve_experiment(self, ref: str) -> str:
        """An experiment id from an id or a name."""
        row = await self.db.fetchone(
            "SELECT id FROM experiments WHERE id = ? OR name = ?", (ref, ref)
        )
        if row is None:
            raise NotFound(f"no experiment with id or name {ref!r}")
        return str(row["id"])

    async def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment with its latest version and sweep; `best_score` is the leader's
        score on its leaderboard (every sweep of the latest version, DESIGN §5b)."""
        rows = await self.db.fetchall(_EXPERIMENT_SUMMARY + " ORDER BY e.name")
        return [
            _experiment_record(row, row["sweep_id"] in self._runners, await self._best(row["id"]))
            for row in rows
        ]

    async def _best(self, experiment_id: str) -> float | None:
        board = await self.ranking(experiment_id, top=1)
        return board.entries[0].score if board.entries else None

    async def get_experiment(self, ref: str, version: int | None = None) -> ExperimentDetail:
        experiment_id = await self.resolve_experiment(ref)
        row = await self.db.fetchone(_EXPERIMENT_SUMMARY + " WHERE e.id = ?", (experiment_id,))
        assert row is not None
        wanted = version or row["version"]
        spec_row = await self.db.fetchone(
            "SELECT spec_yaml, spec_json, source FROM experiment_versions "
            "WHERE experiment_id = ? AND version = ?",
            (experiment_id, wanted),
        )
        if spec_row is None:
            raise NotFound(f"experiment {row['name']!r} has no version {wanted}")
        record = _experiment_record(
            row, row["sweep_id"] in self._runners, await self._best(experiment_id)
        )
        return ExperimentDetail(
            **(record.model_dump() | {"version": wanted}),
            spec_yaml=spec_row["spec_yaml"],
            spec=json.loads(spec_row["spec_json"]),
            source_file=spec_row["source"] if Path(spec_row["source"]).is_absolute() else None,
        )

    async def duplicate_experiment(self, ref: str, new_name: str | None = None) -> ImportResult:
        """Copy an experiment's latest version as version 1 of a new experiment, named
        `new_name` or else the first free of `NAME-copy`, `NAME-copy-2`, ..."""
        original = await self.get_experiment(ref)
        taken = {row["name"] for row in await self.db.fetchall("SELECT name FROM experiments")}
        name = new_name or _copy_name(original.name, taken)
        if name in taken:
            raise Conflict(f"an experiment named {name!r} exists already")
        text, renamed = _TOP_LEVEL_NAME.subn(f"name: {name}", original.spec_yaml, count=1)
        if not renamed:
            raise BadInput(f"cannot find the top-level `name:` line of {original.name!r}")
        # The stored spec has its dataset inlined, so a copy never re-reads a dataset file.
        try:
            spec = ExperimentSpec.model_validate(original.spec | {"name": name})
        except PydanticValidationError as exc:
            raise BadInput(f"invalid name {name!r}: {exc.errors()[0]['msg']}") from None
        source = f"copy of {original.name} v{original.version}"
        return await self.import_experiment(LoadedExperiment(spec=spec, text=text, source=source))

    async def delete_experiment(self, ref: str) -> str:
        """Delete an experiment with every version, sweep, run and score; returns its name.
        Refused while one of its sweeps is running or paused. Cached LLM calls are kept."""
        experiment = await self.get_experiment(ref)
        active = [s.id for s in await self.list_sweeps(experiment.id) if s.status in _ACTIVE_STATES]
        if active:
            raise Conflict(
                f"experiment {experiment.name!r} has a sweep in progress ({', '.join(active)}); "
                "stop it first"
            )
        await self.db.execute("DELETE FROM experiments WHERE id = ?", (experiment.id,))
        return experiment.name

    async def _spec(self, experiment_id: str, version: int) -> ExperimentSpec:
        row = await self.db.fetchone(
            "SELECT spec_json FROM experiment_versions WHERE experiment_id = ? AND version = ?",
            (experiment_id, version),
        )
        if row is None:
            raise NotFound(f"experiment {experiment_id} has no version {version}")
        return ExperimentSpec.model_validate(json.loads(row["spec_json"]))

    # -- sweeps --------------------------------------------------------------------------------

    async def plan(self, ref: str, overrides: SweepOverrides | None = None) -> SweepPlan:
        """What a sweep would do, spending nothing: configs, runs, calls, cached calls, cost."""
        experiment = await self.get_experiment(ref)
        return await self.plan_spec(await self._spec(experiment.id, experiment.version), overrides)

    async def plan_spec(
        self, spec: ExperimentSpec, overrides: SweepOverrides | None = None
    ) -> SweepPlan:
        """`plan` for an experiment that need not be stored (the editor's text as it is typed)."""
        overrides = overrides or SweepOverrides()
        settings = overrides.apply(spec.sweep)
        check_sweep_size(spec, settings, self.limits)
        endpoint = await self.endpoints.resolve(spec.endpoint)
        read_cache = not overrides.no_cache
        planning = plan_sweep(spec, settings, endpoint, self.cache, read_cache=read_cache)
        if not self.policy.remote:
            return await planning
        seconds = self.limits.check_seconds
        try:
            async with asyncio.timeout(seconds):
                return await planning
        except TimeoutError:
            raise TooExpensive(
                f"planning took longer than {seconds:g} s (PROMPTLOOPER_LIMIT_CHECK_SECONDS)"
            ) from None

    async def create_sweep(self, ref: str, overrides: SweepOverrides | None = None) -> str:
        """Record a new sweep of the experiment's latest version; `start_sweep` runs it."""
        overrides = overrides or SweepOverrides()
        experiment = await self.get_experiment(ref)
        spec = await self._spec(experiment.id, experiment.version)
        settings = overrides.apply(spec.sweep)
        check_sweep_size(spec, settings, self.limits)
        sweep_id = "sw_" + uuid.uuid4().hex[:10]
        stored = settings.model_dump() | {"no_cache": overrides.no_cache}
        created = now_iso()
        await self.db.execute(
            "INSERT INTO sweeps (id, experiment_id, experiment_version, settings, status, "
            "owner_pid, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
            (
                sweep_id,
                experiment.id,
                experiment.version,
                json.dumps(stored),
                os.getpid(),
                created,
                created,
            ),
        )
        return sweep_id

    async def start_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> asyncio.Task[str]:
        """Run (or resume) a sweep in the background; the task's result is its end status."""
        sweep_id = await self.resolve_sweep(sweep_ref)
        if sweep_id in self._runners:
            raise Conflict(f"sweep {sweep_id} is already running")
        job = await self._job(sweep_id, retry_failed=retry_failed, max_tokens=max_tokens)
        runner = SweepRunner(job, db=self.db, cache=self.cache, pool=self.endpoints, bus=self.bus)
        self._runners[sweep_id] = runner
        task = asyncio.create_task(runner.run(), name=f"sweep-{sweep_id}")
        self._tasks[sweep_id] = task

        def forget(_: asyncio.Task[str]) -> None:
            self._counters[sweep_id] = runner.counters
            self._runners.pop(sweep_id, None)
            self._tasks.pop(sweep_id, None)

        task.add_done_callback(forget)
        return task

    async def run_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepSummary:
        """Run (or resume) a sweep to its end and return its summary."""
        task = await self.start_sweep(sweep_ref, retry_failed=retry_failed, max_tokens=max_tokens)
        await asyncio.shield(task)
        return await self.sweep_summary(sweep_ref)

    async def _job(self, sweep_id: str, *, retry_failed: bool, max_tokens: int | None) -> SweepJob:
        row = await self.db.fetchone(
            "SELECT s.*, e.name FROM sweeps s JOIN experiments e ON e.id = s.experiment_id "
            "WHERE s.id = ?",
            (sweep_id,),
        )
        assert row is not None
        state = _effective_status(row["status"], row["owner_pid"], sweep_id in self._runners)
        if state == "completed":
            failed = await self.db.fetchone(
                "SELECT count(*) AS n FROM runs WHERE sweep_id = ? AND status = 'failed'",
                (sweep_id,),
            )
            if not retry_failed or not (failed and failed["n"]):
                what = "failed runs to retry" if retry_failed else "runs left to do"
                raise Conflict(f"sweep {sweep_id} is completed; it has no {what}")
        if state in _ACTIVE_STATES and row["owner_pid"] not in (None, os.getpid()):
            raise Conflict(
                f"sweep {sweep_id} is {state} in another process (pid {row['owner_pid']})"
            )
        stored = json.loads(row["settings"])
        no_cache = bool(stored.pop("no_cache", False))
        if max_tokens is not None:
            stored["max_tokens"] = max_tokens
        return SweepJob(
            sweep_id=sweep_id,
            experiment_id=row["experiment_id"],
            experiment_name=row["name"],
            experiment_version=row["experiment_version"],
            spec=await self._spec(row["experiment_id"], row["experiment_version"]),
            settings=SweepSettings.model_validate(stored),
            read_cache=True,
            fresh_since=row["created_at"] if no_cache else "",
            retry_failed=retry_failed,
        )

    def runner(self, sweep_id: str) -> SweepRunner | None:
        """The live runner of a sweep running in this process, if any."""
        return self._runners.get(sweep_id)

    def running_sweeps(self) -> dict[str, str]:
        """The sweeps this process is running now, not paused (id -> experiment name)."""
        return {
            sweep_id: runner.job.experiment_name
            for sweep_id, runner in self._runners.items()
            if runner.status == "running"
        }

    async def _live_runner(self, sweep_ref: str) -> SweepRunner:
        sweep_id = await self.resolve_sweep(sweep_ref)
        runner = self._runners.get(sweep_id)
        if runner is None:
            sweep = await self.get_sweep(sweep_id)
            if sweep.status == "running":
                state = "is running in another process; pause or stop it there"
            elif sweep.resumable:
                state = f"is {sweep.status}; resume it first (promptlooper resume {sweep_id})"
            else:
                state = f"has ended ({sweep.status})"
            raise Conflict(f"sweep {sweep_id} of {sweep.experiment!r} {state}")
        return runner

    async def pause_sweep(self, sweep_ref: str) -> SweepRecord:
        runner = await self._live_runner(sweep_ref)
        await runner.pause()
        return await self.get_sweep(runner.job.sweep_id)

    async def resume_paused_sweep(self, sweep_ref: str) -> SweepRecord:
        runner = await self._live_runner(sweep_ref)
        await runner.resume()
        return await self.get_sweep(runner.job.sweep_id)

    async def stop_sweep(self, sweep_ref: str) -> SweepRecord:
        runner = await self._live_runner(sweep_ref)
        runner.stop()
        task = self._tasks.get(runner.job.sweep_id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get_sweep(runner.job.sweep_id)

    async def resolve_sweep(self, ref: str) -> str:
        """A sweep id from a sweep id, or an experiment id/name (its latest sweep)."""
        row = await self.db.fetchone("SELECT id FROM sweeps WHERE id = ?", (ref,))
        if row is not None:
            return str(row["id"])
        try:
            experiment_id = await self.resolve_experiment(ref)
        except NotFound:
            raise NotFound(f"no sweep (or experiment) with id or name {ref!r}") from None
        row = await self.db.fetchone(
            "SELECT id FROM sweeps WHERE experiment_id = ? ORDER BY created_at DESC, rowid DESC "
            "LIMIT 1",
            (experiment_id,),
        )
        if row is None:
            raise NotFound(f"experiment {ref!r} has no sweeps yet")
        return str(row["id"])

    async def list_sweeps(self, experiment: str | None = None) -> list[SweepRecord]:
        where, params = "", ()
        if experiment is not None:
            where, params = (
                "WHERE s.experiment_id = ?",
                (await self.resolve_experiment(experiment),),
            )
        rows = await self.db.fetchall(
            _SWEEP_SUMMARY + f" {where} ORDER BY s.created_at DESC, s.rowid DESC", params
        )
        return [self._sweep_record(row) for row in rows]

    async def get_sweep(self, sweep_ref: str) -> SweepRecord:
        sweep_id = await self.resolve_sweep(sweep_ref)
        row = await self.db.fetchone(_SWEEP_SUMMARY + " WHERE s.id = ?", (sweep_id,))
        assert row is not None
        return self._sweep_record(row)

    def _sweep_record(self, row: Any) -> SweepRecord:
        status = _effective_status(row["status"], row["owner_pid"], row["id"] in self._runners)
        strategy = json.loads(row["settings"])["strategy"]
        total, estimate = _planned_total(row, status, strategy)
        return SweepRecord(
            id=row["id"],
            experiment_id=row["experiment_id"],
            experiment=row["name"],
            experiment_version=row["experiment_version"],
            strategy=strategy,
            status=status,
            resumable=status in RESUMABLE,
            error=row["error"],
            runs_completed=row["completed"],
            runs_failed=row["failed"],
            planned_runs=row["planned_runs"],
            runs_total=total,
            total_is_estimate=estimate,
            tokens=row["tokens_in"] + row["tokens_out"],
            cost=None if row["unpriced"] else round(row["cost"], 6),
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )

    async def sweep_summary(self, sweep_ref: str, *, top: int = 10) -> SweepSummary:
        """The `run --json` object: the sweep's totals over all its resumes (runs against its
        planned total, calls, tokens, cost, scorer failures), this invocation's calls, and the
        sweep's leaderboard."""
        sweep = await self.get_sweep(sweep_ref)
        row = await self.db.fetchone(
            "SELECT coalesce(sum(status = 'completed'), 0) AS completed, "
            "coalesce(sum(status = 'failed'), 0) AS failed, "
            "coalesce(sum(status = 'completed' AND calls > 0 AND calls = cached_calls), 0) "
            "AS cached FROM runs WHERE sweep_id = ?",
            (sweep.id,),
        )
        sweep_row = await self.db.fetchone(
            "SELECT tokens_in, tokens_out, cost, responses_429, calls, cache_hits FROM sweeps "
            "WHERE id = ?",
            (sweep.id,),
        )
        assert row is not None and sweep_row is not None
        live = self._runners.get(sweep.id)
        counters = live.counters if live else self._counters.get(sweep.id)
        board = await self.ranking(sweep.id, top=top, sweep=sweep.id)
        most_common_error = None
        if row["failed"] and (not row["completed"] or sweep.status == "failed"):
            common = await self.db.fetchone(
                "SELECT coalesce(error, '(no message)') AS error, count(*) AS n FROM runs "
                "WHERE sweep_id = ? AND status = 'failed' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1",
                (sweep.id,),
            )
            most_common_error = common["error"] if common else None
        return SweepSummary(
            sweep_id=sweep.id,
            experiment=sweep.experiment,
            experiment_version=sweep.experiment_version,
            status=sweep.status,
            runs=RunCounts(
                total=sweep.runs_total,
                completed=row["completed"],
                failed=row["failed"],
                cached=row["cached"],
                total_is_estimate=sweep.total_is_estimate,
            ),
            calls=CallCounts(requested=sweep_row["calls"], cache_hits=sweep_row["cache_hits"]),
            calls_this_run=CallCounts(requested=counters.calls, cache_hits=counters.cache_hits)
            if counters
            else None,
            tokens=TokenCounts(input=sweep_row["tokens_in"], output=sweep_row["tokens_out"]),
            cost=None if board.unpriced_models else round(sweep_row["cost"], 6),
            unpriced_models=board.unpriced_models,
            scorer_failures=board.scorer_failures,
            most_common_error=most_common_error,
            leaderboard=board.entries,
            leaderboard_configs=board.configs,
            rate_limits=live.rate_limit_counts()
            if live
            else RateLimitCounts(responses_429=sweep_row["responses_429"]),
        )

    # -- runs and scores -----------------------------------------------------------------------

    async def list_runs(
        self,
        *,
        experiment: str | None = None,
        sweep: str | None = None,
        status: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> RunPage:
        # The store compares 64-bit integers: a larger offset would overflow, not page.
        if not 1 <= limit <= 10_000 or not 0 <= offset <= 2**63 - 1:
            raise BadInput(f"limit must be 1..10000 and offset 0..{2**63 - 1}")
        if status is not None and status not in ("completed", "failed"):
            raise BadInput(f"unknown run status {status!r}; use completed or failed")
        clauses, params = [], []
        if experiment is not None:
            clauses.append("r.experiment_id = ?")
            params.append(await self.resolve_experiment(experiment))
        if sweep is not None:
            clauses.append("r.sweep_id = ?")
            params.append(await self.resolve_sweep(sweep))
        if status is not None:
            clauses.append("r.status = ?")
            params.append(status)
        if min_score is not None:
            clauses.append("r.score >= ?")
            params.append(min_score)
        if max_score is not None:
            clauses.append("r.score <= ?")
            params.append(max_score)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total_row = await self.db.fetchone(f"SELECT count(*) AS n FROM runs r {where}", params)
        rows = await self.db.fetchall(
            f"{_RUN_SELECT} {where} ORDER BY r.finished_at DESC, r.id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return RunPage(
            items=[_run_record(row) for row in rows], total=total_row["n"] if total_row else 0
        )

    async def get_run(self, run_id: str) -> RunDetail:
        row = await self.db.fetchone(f"{_RUN_SELECT} WHERE r.id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        record = _run_record(row)
        sweep = await self.db.fetchone(
            "SELECT experiment_id, experiment_version FROM sweeps WHERE id = ?", (record.sweep_id,)
        )
        assert sweep is not None
        spec = await self._spec(sweep["experiment_id"], sweep["experiment_version"])
        stages = await self.db.fetchall(
            "SELECT * FROM stage_results WHERE run_id = ? ORDER BY stage_index", (run_id,)
        )
        scores = [
            ScoreRecord(
                scorer=s["scorer"],
                kind=s["kind"],
                value=s["value"],
                weight=s["weight"],
                error=s["error"],
                note=s["note"],
                created_at=s["created_at"],
                superseded_at=s["superseded_at"],
            )
            for s in await self.db.fetchall(
                "SELECT * FROM scores WHERE run_id = ? ORDER BY id", (run_id,)
            )
        ]
        return RunDetail(
            **record.model_dump(),
            item=spec.items[record.item_index],
            stages=[
                StageRecord(
                    index=s["stage_index"],
                    name=s["name"],
                    messages=json.loads(s["messages"]),
                    output=s["output"],
                    tokens_in=s["tokens_in"],
                    tokens_out=s["tokens_out"],
                    latency_ms=s["latency_ms"],
                    cached=bool(s["cached"]),
                    error=s["error"],
                    finish_reason=s["finish_reason"],
                    warnings=json.loads(s["warnings"]) if s["warnings"] else [],
                )
                for s in stages
            ],
            scores=[s for s in scores if s.superseded_at is None],
            superseded_scores=[s for s in scores if s.superseded_at is not None],
        )

    async def add_score(
        self, run_id: str, value: float, *, scorer: str = "human", note: str | None = None
    ) -> RunDetail:
        """Record a person's rating of a run, in [0, 1]; the run's score and the leaderboard
        include it. It replaces that person's (that `scorer` name's) earlier rating of the run,
        which is kept as history (`RunDetail.superseded_scores`) but no longer counts. A name
        of one of the experiment's automatic scorers is refused (BadInput): a person's rating
        under it would pass for that scorer's."""
        if not 0.0 <= value <= 1.0:
            raise BadInput(f"a score must be between 0 and 1, got {value}")
        run = await self.get_run(run_id)
        sweep = await self.db.fetchone(
            "SELECT experiment_id, experiment_version FROM sweeps WHERE id = ?", (run.sweep_id,)
        )
        assert sweep is not None
        spec = await self._spec(sweep["experiment_id"], sweep["experiment_version"])
        automatic = _automatic_scorers(spec)
        if scorer in automatic:
            raise BadInput(
                f"{scorer!r} is an automatic scorer of this experiment; rate under your own "
                f"name (the default is 'human'), not one of: {', '.join(automatic)}"
            )
        weight = next((s.weight for s in spec.scorers if isinstance(s, HumanScorerSpec)), 1.0)
        created = now_iso()
        await self.db.write(
            [
                (
                    "UPDATE scores SET superseded_at = ? WHERE run_id = ? AND scorer = ? "
                    "AND kind = 'human' AND superseded_at IS NULL",
                    (created, run_id, scorer),
                ),
                (
                    "INSERT INTO scores (run_id, scorer, kind, value, weight, note, created_at) "
                    "VALUES (?, ?, 'human', ?, ?, ?, ?)",
                    (run_id, scorer, value, weight, note, created),
                ),
                (
                    "UPDATE runs SET score = (SELECT round(sum(value * weight) / sum(weight), 6) "
                    "FROM scores WHERE run_id = ? AND value IS NOT NULL AND weight > 0 "
                    "AND superseded_at IS NULL) WHERE id = ?",
                    (run_id, run_id),
                ),
            ]
        )
        detail = await self.get_run(run_id)
        self.bus.publish(
            "score.added",
            run.experiment_id,
            sweep_id=run.sweep_id,
            run_id=run_id,
            data={"scorer": scorer, "value": value, "note": note, "run_score": detail.score},
        )
        return detail

    async def leaderboard(
        self, ref: str, *, top: int = 10, sweep: str | None = None
    ) -> list[LeaderboardEntry]:
        """The first `top` entries of `ranking(ref, top=top, sweep=sweep)`."""
        return (await self.ranking(ref, top=top, sweep=sweep)).entries

    async def ranking(
        self, ref: str, *, top: int | None = 10, sweep: str | None = None
    ) -> Leaderboard:
        """The leaderboard of experiment `ref` (DESIGN §5b): every distinct (config, item,
        repeat) observation of its latest version, over all that version's sweeps (the latest
        completed run of each). With `sweep` (or a sweep id as `ref`), that one sweep's runs.
        The board says what it ranked, which scorers its scores include, which failed on
        how many runs, and which models have no price."""
        scope = await self._scope(ref, sweep)
        # A board of a sweep running here may lag its runs by a second: the price of ranking
        # once for all readers (see LeaderboardCache), not once per reader.
        running = any(
            (runner := self._runners.get(sweep_id)) is not None and runner.status == "running"
            for sweep_id in scope.sweep_ids
        )
        return await self.boards.get(scope, top=top, running=running)

    async def _scope(self, ref: str, sweep: str | None) -> Scope:
        asked = sweep
        if asked is None and await self.db.fetchone("SELECT 1 FROM sweeps WHERE id = ?", (ref,)):
            asked = ref
        if asked is not None:
            row = await self.db.fetchone(
                "SELECT s.id, s.experiment_id, s.experiment_version, e.name FROM sweeps s "
                "JOIN experiments e ON e.id = s.experiment_id WHERE s.id = ?",
                (await self.resolve_sweep(asked),),
            )
            assert row is not None
            if asked != ref and row["experiment_id"] != await self.resolve_experiment(ref):
                raise BadInput(
                    f"sweep {row['id']} belongs to experiment {row['name']!r}, not {ref!r}"
                )
            spec = await self._spec(row["experiment_id"], row["experiment_version"])
            return Scope(
                version=row["experiment_version"],
                sweep_ids=(row["id"],),
                asked_sweep=row["id"],
                scorers=tuple(_automatic_scorers(spec)),
            )
        experiment = await self._latest_version(ref)
        rows = await self.db.fetchall(
            "SELECT id FROM sweeps WHERE experiment_id = ? AND experiment_version = ? "
            "ORDER BY created_at, rowid",
            experiment,
        )
        spec = await self._spec(*experiment)
        return Scope(
            version=experiment[1],
            sweep_ids=tuple(row["id"] for row in rows),
            scorers=tuple(_automatic_scorers(spec)),
        )

    async def _latest_version(self, ref: str) -> tuple[str, int]:
        """(id, latest version) of experiment `ref`."""
        experiment_id = await self.resolve_experiment(ref)
        row = await self.db.fetchone(
            "SELECT max(version) AS version FROM experiment_versions WHERE experiment_id = ?",
            (experiment_id,),
        )
        assert row is not None
        return experiment_id, int(row["version"])

    # -- export --------------------------------------------------------------------------------

    async def export(
        self, ref: str, fmt: str, out: TextIO, *, sweep: str | None = None, top: int = 10
    ) -> None:
        """Write a sweep of experiment `ref` (default: its latest) to `out` as `fmt`: the best
        config (json, yaml, env) or the whole sweep (report with the top `top` configs, csv,
        jsonl; these stream, in bounded memory). BadInput for an unknown format or a sweep with
        nothing to export yet; NotFound for unknown ids. No API key is ever part of an export.
        """
        from .export import export_sweep

        await export_sweep(self, ref, fmt, out, sweep=sweep, top=top)

    # -- webhooks ------------------------------------------------------------------------------

    async def add_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> WebhookRecord:
        """Register a webhook for `events` (None or empty: every type); with a `secret`, each
        delivery is signed. The secret is stored encrypted and never returned."""
        url = check_url(url)
        from .engine.netguard import check_literal_host

        check_literal_host(url, "webhook URL")
        types = check_event_types(events)
        if secret is not None and not secret.strip():
            raise BadInput("a webhook secret must not be empty")
        webhook_id = "wh_" + uuid.uuid4().hex[:10]
        encrypted = self.secrets.encrypt(secret) if secret else None
        await self.db.execute(
            "INSERT INTO webhooks (id, url, events, secret_encrypted, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (webhook_id, url, json.dumps(types), encrypted, now_iso()),
        )
        await self.webhooks.reload()
        return await self._webhook(webhook_id)

    async def list_webhooks(self) -> list[WebhookRecord]:
        rows = await self.db.fetchall("SELECT * FROM webhooks ORDER BY created_at, id")
        return [webhook_record(row) for row in rows]

    async def remove_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log; deliveries still queued for it are dropped."""
        await self._webhook(webhook_id)
        await self.db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        await self.webhooks.reload()

    async def webhook_deliveries(
        self, webhook_id: str | None = None, limit: int = 50
    ) -> list[DeliveryRecord]:
        """The latest delivery attempts, newest first: of one webhook, or of all."""
        if not 1 <= limit <= 10_000:
            raise BadInput(f"limit must be 1..10000, got {limit}")
        if webhook_id is None:
            where, params = "", ()
        else:
            await self._webhook(webhook_id)
            where, params = "WHERE webhook_id = ?", (webhook_id,)
        rows = await self.db.fetchall(
            f"SELECT * FROM webhook_deliveries {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [delivery_record(row) for row in rows]

    async def _webhook(self, webhook_id: str) -> WebhookRecord:
        row = await self.db.fetchone("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        if row is None:
            raise NotFound(f"no webhook with id {webhook_id!r}")
        return webhook_record(row)

    # -- cache ---------------------------------------------------------------------------------

    async def cache_stats(self) -> CacheStats:
        return await self.cache.stats()

    async def cache_clear(self) -> int:
        return await self.cache.clear()

    # -- endpoints -----------------------------------------------------------------------------

    async def add_endpoint(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        pricing: dict[str, tuple[float, float]] | None = None,
        keep_api_key: bool = False,
        max_response_mb: float | None = None,
        deadline_s: float | None = None,
        idle_timeout_s: float | None = None,
        rate_limit_wait_s: float | None = None,
    ) -> EndpointRecord:
        """Add an endpoint, or replace the one of that name. With `keep_api_key` (and no new
        key or variable given), a replaced endpoint keeps its stored key. A base URL whose
        password reads *** (as `list_endpoints` shows it) keeps the stored password.

        The limits bound each request (None: the defaults, 8 MiB, 300 s, 60 s idle) and the
        wait on 429s (default 600 s). Every field is checked here, for every front-end: bad
        input is a BadInput naming the field."""
        from .engine.endpoints import (
            check_endpoint_name,
            check_key_env_name,
            check_limit,
            check_pricing,
        )
        from .engine.netguard import check_base_url, check_literal_host, redact_url

        check_endpoint_name(name)
        base_url = check_base_url(base_url)
        check_literal_host(base_url, "base_url")
        if api_key is not None and api_key_env is not None:
            raise BadInput("give the API key on stdin or by environment variable, not both")
        if api_key_env is not None:
            check_key_env_name(api_key_env)
            if not self.policy.may_read_key_env(api_key_env):
                raise BadInput(
                    f"api_key_env: API key variable {api_key_env!r} is not allowed for remote "
                    f"callers; the operator may allow it with `serve --allow-key-env "
                    f"{api_key_env}`"
                )
        prices = check_pricing(pricing or {})
        limits = [
            check_limit("max_response_mb", max_response_mb),
            check_limit("deadline_s", deadline_s),
            check_limit("idle_timeout_s", idle_timeout_s),
            check_limit("rate_limit_wait_s", rate_limit_wait_s),
        ]
        if "***@" in base_url:
            row = await self.db.fetchone("SELECT base_url FROM endpoints WHERE name = ?", (name,))
            if row is not None and redact_url(row["base_url"]) == base_url:
                base_url = row["base_url"]
        encrypted = self.secrets.encrypt(api_key) if api_key else None
        await self.db.execute(
            "INSERT INTO endpoints (name, base_url, api_key_env, api_key_encrypted, pricing, "
            "created_at, max_response_mb, deadline_s, idle_timeout_s, rate_limit_wait_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "base_url = excluded.base_url, api_key_env = excluded.api_key_env, "
            "api_key_encrypted = CASE WHEN ? THEN endpoints.api_key_encrypted "
            "ELSE excluded.api_key_encrypted END, pricing = excluded.pricing, "
            "max_response_mb = excluded.max_response_mb, deadline_s = excluded.deadline_s, "
            "idle_timeout_s = excluded.idle_timeout_s, "
            "rate_limit_wait_s = excluded.rate_limit_wait_s",
            (
                name,
                base_url,
                api_key_env,
                encrypted,
                json.dumps(prices),
                now_iso(),
                *limits,
                keep_api_key and api_key is None and api_key_env is None,
            ),
        )
        return await self.get_endpoint(name)

    async def list_endpoints(self) -> list[EndpointRecord]:
        rows = await self.db.fetchall("SELECT * FROM endpoints ORDER BY name")
        return [_endpoint_record(row) for row in rows]

    async def get_endpoint(self, name: str) -> EndpointRecord:
        row = await self.db.fetchone("SELECT * FROM endpoints WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no endpoint named {name!r}")
        return _endpoint_record(row)

    async def remove_endpoint(self, name: str) -> None:
        await self.get_endpoint(name)
        await self.db.execute("DELETE FROM endpoints WHERE name = ?", (name,))

    async def test_endpoint(self, name: str) -> ConnectionResult:
        endpoint = await self.endpoints.resolve(name)
        client = await self.endpoints.client(endpoint)
        report = await client.test_connection()
        return ConnectionResult(
            name=name,
            ok=report.ok,
            latency_ms=report.latency_ms,
            models=report.models,
            error=report.error,
        )

    async def start_simulated_endpoint(self, options: SimulatorOptions) -> str:
        """Start the built-in simulated endpoint with `options` (latency, fault rates) for the
        Workbench's lifetime, so `endpoint: simulated` calls it; returns its base URL. When it
        is already running, returns that one's URL and the options do not apply."""
        return (await self.endpoints.start_simulated(options)).base_url

    async def _resolve_stored_endpoint(self, name: str) -> ResolvedEndpoint:
        row = await self.db.fetchone("SELECT * FROM endpoints WHERE name = ?", (name,))
        if row is None:
            raise NotFound(
                f"no endpoint named {name!r}; add it with `promptlooper endpoints add {name} "
                "--base-url URL`, or use `simulated`"
            )
        from .engine.endpoints import api_key_from_env, stored_limits

        if row["api_key_encrypted"] is not None:
            key = self.secrets.decrypt(row["api_key_encrypted"])
        else:
            key = api_key_from_env(row["api_key_env"], f"endpoint {name!r}")
        pricing = {model: tuple(price) for model, price in json.loads(row["pricing"]).items()}
        return ResolvedEndpoint(
            name=name,
            base_url=row["base_url"],
            api_key=key,
            pricing=pricing,  # type: ignore[arg-type]
            limits=stored_limits(row["max_response_mb"], row["deadline_s"], row["idle_timeout_s"]),
            rate_limit_wait=row["rate_limit_wait_s"],
        )

    # -- long-lived front-ends (daemon, MCP) ---------------------------------------------------

    async def resume_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepRecord:
        """Continue a sweep whatever halted it: one paused in this process resumes at once; any
        other resumable one (interrupted, stopped, failed, budget_exhausted) starts again in the
        background, repeating no completed run."""
        sweep_id = await self.resolve_sweep(sweep_ref)
        runner = self._runners.get(sweep_id)
        if runner is None:
            await self.start_sweep(sweep_id, retry_failed=retry_failed, max_tokens=max_tokens)
            # The runner records `running` only after resolving its endpoint; until then the
            # stored status would still say how the sweep last ended. Queued before any write
            # of the runner (its task has not started yet), so it cannot overwrite one.
            await self.db.execute(
                "UPDATE sweeps SET status = 'running', finished_at = NULL, owner_pid = ? "
                "WHERE id = ?",
                (os.getpid(), sweep_id),
            )
        elif retry_failed or max_tokens is not None:
            raise Conflict(
                f"sweep {sweep_id} is live in this process; stop it before resuming it with "
                "retry_failed or a new max_tokens"
            )
        else:
            await runner.resume()
        return await self.get_sweep(sweep_id)

    async def suspend_sweeps(self, grace: float = 10.0) -> list[str]:
        """Pause every sweep running in this process and end it as `interrupted` (resumable),
        not `stopped`: what a daemon shutting down does. Runs in flight get `grace` seconds to
        finish; the rest are cancelled, and a resume finds their returned calls in the cache.
        Returns the ids of the suspended sweeps."""
        runners = list(self._runners.values())
        paused_by_user = [r.job.sweep_id for r in runners if r.status == "paused"]
        for runner in runners:
            await runner.pause()
        await asyncio.gather(*(runner.wait_inflight(grace) for runner in runners))
        tasks = [self._tasks[r.job.sweep_id] for r in runners if r.job.sweep_id in self._tasks]
        # Each ends `paused` with this (ending) process as owner, which reads as `interrupted`:
        # a restart knows that nobody chose to stop it.
        for runner in runners:
            runner.suspend()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A sweep someone had paused stays `paused` (owned by nobody): a restart does not
        # take it for interrupted and resume it behind their back.
        await self.db.write(
            [
                ("UPDATE sweeps SET owner_pid = NULL WHERE id = ? AND status = 'paused'", (sid,))
                for sid in paused_by_user
            ]
        )
        return [runner.job.sweep_id for runner in runners]


@contextlib.asynccontextmanager
async def open_workbench(
    settings: Settings, policy: CallerPolicy | None = None
) -> AsyncIterator[Workbench]:
    """The one way to build a Workbench (CLI, TUI, daemon and tests all use it). The daemon
    and the MCP server pass `CallerPolicy.for_remote(...)`; the CLI and the app, nothing."""
    db = await Database.open(settings.db_path)
    workbench = Workbench(settings, db, policy)
    try:
        await workbench.webhooks.start()
        yield workbench
    finally:
        await workbench.webhooks.aclose()
        await workbench.close()


def _copy_name(name: str, taken: set[str]) -> str:
    """`NAME-copy`, else `NAME-copy-2`, `NAME-copy-3`, ...: the first not taken."""
    candidate, number = f"{name}-copy", 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-copy-{number}"
    return candidate


def _version_insert(
    experiment_id: str, version: int, loaded: LoadedExperiment, spec_json: str, content_hash: str
) -> tuple[str, tuple[Any, ...]]:
    origin = loaded.origin or loaded.source
    return (
        "INSERT INTO experiment_versions (experiment_id, version, spec_yaml, spec_json, "
        "content_hash, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (experiment_id, version, loaded.text, spec_json, content_hash, origin, now_iso()),
    )


def _automatic_scorers(spec: ExperimentSpec) -> list[str]:
    """The names of the experiment's automatic scorers (everything but `human`), in order."""
    return [
        spec.scorer_name(i)
        for i, scorer in enumerate(spec.scorers)
        if not isinstance(scorer, HumanScorerSpec)
    ]


#: Strategies that plan as they go: until such a sweep completes, its total is an estimate.
_ADAPTIVE = frozenset({"racing", "guided", "evolve"})


def _planned_total(row: Any, status: str, strategy: str) -> tuple[int, bool]:
    """A sweep's planned total of runs and whether it is an estimate. A completed sweep ran
    its plan: the runs its batches held. Otherwise the strategy's plan (stored as the sweep
    starts; racing and guided narrow it as they go), never less than what is already
    planned or finished, so a stopped or failed sweep shows how much is left."""
    finished = row["completed"] + row["failed"]
    if status == "completed":
        return max(row["planned_runs"], finished), False
    total = max(row["expected_runs"] or 0, row["planned_runs"], finished)
    return total, strategy in _ADAPTIVE


def _pid_alive(pid: int | None) -> bool:
    return bool(pid) and (pid == os.getpid() or process_alive(pid))  # type: ignore[arg-type]


def _effective_status(status: str, owner_pid: int | None, live_here: bool) -> str:
    """A sweep stored as running/paused whose process is gone was interrupted (a `paused`
    sweep owned by nobody was paused by someone and left so)."""
    if status == "paused" and owner_pid is None:
        return status
    gone = owner_pid == os.getpid() or not _pid_alive(owner_pid)
    if status in _ACTIVE_STATES and not live_here and gone:
        return "interrupted"
    return status


_EXPERIMENT_SUMMARY = """
SELECT e.id, e.name, e.created_at,
       v.version, v.description, v.versions,
       s.id AS sweep_id, s.status AS sweep_status, s.owner_pid,
       (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id) AS runs,
       (SELECT coalesce(sum(tokens_in + tokens_out), 0) FROM sweeps WHERE experiment_id = e.id)
            AS tokens
FROM experiments e
JOIN (SELECT experiment_id, max(version) AS version, count(*) AS versions,
             json_extract(spec_json, '$.description') AS description
      FROM experiment_versions GROUP BY experiment_id) v ON v.experiment_id = e.id
LEFT JOIN sweeps s ON s.id = (SELECT id FROM sweeps WHERE experiment_id = e.id
                             ORDER BY created_at DESC, rowid DESC LIMIT 1)
"""

_SWEEP_SUMMARY = """
SELECT s.*, e.name,
       (SELECT count(*) FROM runs r WHERE r.sweep_id = s.id AND r.status = 'completed')
           AS completed,
       (SELECT count(*) FROM runs r WHERE r.sweep_id = s.id AND r.status = 'failed')
           AS failed
FROM sweeps s JOIN experiments e ON e.id = s.experiment_id
"""

_RUN_SELECT = "SELECT r.*, c.params FROM runs r JOIN configs c ON c.id = r.config_id"


def _experiment_record(row: Any, sweep_live_here: bool, best: float | None) -> ExperimentRecord:
    """`sweep_live_here`: the latest sweep runs in this process (so it is not interrupted);
    `best`: the leader's score on the experiment's leaderboard."""
    return ExperimentRecord(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        description=row["description"] or "",
        created_at=row["created_at"],
        versions=row["versions"],
        latest_sweep_id=row["sweep_id"],
        latest_sweep_status=(
            _effective_status(row["sweep_status"], row["owner_pid"], sweep_live_here)
            if row["sweep_status"]
            else None
        ),
        best_score=best,
        runs=row["runs"],
        tokens=row["tokens"],
    )


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        sweep_id=row["sweep_id"],
        experiment_id=row["experiment_id"],
        config=json.loads(row["params"]),
        item_index=row["item_index"],
        repeat=row["repeat"],
        status=row["status"],
        score=row["score"],
        error=row["error"],
        tokens_in=row["tokens_in"],
        tokens_out=row["tokens_out"],
        cost=row["cost"],
        latency_ms=row["latency_ms"],
        calls=row["calls"],
        cached_calls=row["cached_calls"],
        finished_at=row["finished_at"],
        truncated=bool(row["truncated"]),
    )


def _endpoint_record(row: Any) -> EndpointRecord:
    """What may be shown of a stored endpoint: never a key, and its URL's password as ***."""
    from .engine.adapters.retry import RetryPolicy
    from .engine.adapters.transport import DEFAULT_LIMITS, MIB
    from .engine.netguard import redact_url

    def stored(column: str, default: float) -> float:
        value = row[column]
        return default if value is None else float(value)

    return EndpointRecord(
        name=row["name"],
        base_url=redact_url(row["base_url"]),
        api_key_env=row["api_key_env"],
        has_api_key=row["api_key_encrypted"] is not None or row["api_key_env"] is not None,
        pricing={m: tuple(p) for m, p in json.loads(row["pricing"]).items()},
        created_at=row["created_at"],
        max_response_mb=stored("max_response_mb", DEFAULT_LIMITS.max_bytes / MIB),
        deadline_s=stored("deadline_s", DEFAULT_LIMITS.deadline),
        idle_timeout_s=stored("idle_timeout_s", DEFAULT_LIMITS.idle_timeout),
        rate_limit_wait_s=stored("rate_limit_wait_s", RetryPolicy().rate_limit_cap),
    )
