"""The Workbench: every user operation, once. The CLI, TUI, daemon and MCP server are thin
wrappers over its methods, which delegate to one part per concern:

- experiments.py: check, import, list, show, duplicate, delete
- sweep_control.py: plan, create, start, pause, resume, stop, suspend
- sweeps.py: list sweeps, a sweep's status and summary
- runs.py: pages of runs, a run in full, human scores
- rankings.py: leaderboards
- evolution.py, evolve_apply.py: an evolve sweep's lineage; its winner as a new version
- endpoints.py, webhooks.py, exports.py; the call cache is `Services.cache` itself
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..domain.records import (
    CacheStats,
    ConnectionResult,
    DeliveryRecord,
    EndpointRecord,
    Evolution,
    ExperimentDetail,
    ExperimentRecord,
    ImportResult,
    Leaderboard,
    LeaderboardEntry,
    RunDetail,
    RunPage,
    SweepPlan,
    SweepRecord,
    SweepSummary,
    WebhookRecord,
    WorkerRecord,
)
from ..domain.trust import CallerPolicy
from ..settings import Settings
from ..store.connect import open_database
from ..store.database import Database
from . import worker_list
from .endpoints import Endpoints
from .evolution import evolution
from .evolve_apply import EvolutionApply, EvolvedExperiment
from .experiments import Experiments
from .exports import Exports
from .lookups import resolve_experiment, resolve_sweep
from .overrides import SweepOverrides
from .rankings import Rankings
from .runs import Runs
from .services import Services
from .sweep_control import SweepControl
from .sweeps import Sweeps
from .webhooks import Webhooks

if TYPE_CHECKING:
    from ..domain.experiment import ExperimentSpec
    from ..engine.loader import LoadedExperiment
    from ..engine.sweep import SweepRunner
    from ..simulated.options import SimulatorOptions
    from .worker import TeamWorker


class Workbench(Services):
    """Open with `async with open_workbench(settings) as wb:`. The shared services (`db`,
    `bus`, `cache`, `endpoints`, `webhooks`, ...) are attributes, see `Services`."""

    def __init__(
        self, settings: Settings, db: Database, policy: CallerPolicy | None = None
    ) -> None:
        super().__init__(settings, db, policy)
        self._rankings = Rankings(self)
        self._experiments = Experiments(self, self._rankings)
        self._sweeps = Sweeps(self, self._rankings)
        self._control = SweepControl(self, self._experiments, self._sweeps)
        self._runs = Runs(self)
        self._endpoint_book = Endpoints(self)
        self._webhook_book = Webhooks(self)
        self._exports = Exports(self, self._experiments, self._sweeps, self._rankings)
        self._evolution_apply = EvolutionApply(
            self, self._experiments, self._sweeps, self._rankings
        )

    async def close(self) -> None:
        await self._control.stop_all()
        await self.relay.aclose()
        if self.guard is not None:
            await self.guard.aclose()
        await self.endpoints.aclose()
        await self.leases.close()
        await self.db.close()

    # -- experiments ---------------------------------------------------------------------------

    @staticmethod
    def validate_file(path: str | Path) -> LoadedExperiment:
        """Check a file the person at the terminal named (in this process: it is trusted)."""
        from ..engine.loader import load_experiment_file  # here: reads skip the loader

        return load_experiment_file(path)

    async def validate_text(
        self, text: str, source: str = "<experiment>", base_dir: Path | None = None
    ) -> LoadedExperiment:
        """Check experiment text in a worker process, bounded in time and memory, as this
        Workbench's callers may (DESIGN §9); relative dataset files resolve against
        `base_dir` (a remote caller's: inside the data folder only)."""
        return await self._experiments.validate_text(text, source, base_dir)

    async def import_experiment(self, loaded: LoadedExperiment) -> ImportResult:
        """Store an experiment: a new name makes version 1, changed content a new version.

        Safe against another process importing at the same moment: names and version numbers
        are claimed with ON CONFLICT DO NOTHING and read back, so the loser of a race takes
        the next number (or finds its content already stored) instead of failing.
        """
        return await self._experiments.import_experiment(loaded)

    async def import_file(self, path: str | Path) -> ImportResult:
        return await self.import_experiment(self.validate_file(path))

    async def import_text(
        self, text: str, source: str = "<experiment>", base_dir: Path | None = None
    ) -> ImportResult:
        return await self.import_experiment(await self.validate_text(text, source, base_dir))

    async def resolve_experiment(self, ref: str) -> str:
        """An experiment id from an id or a name."""
        return await resolve_experiment(self.db, ref)

    async def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment with its latest version and sweep; `best_score` is the leader's
        score on its leaderboard (every sweep of the latest version, DESIGN §5b)."""
        return await self._experiments.list_experiments()

    async def get_experiment(self, ref: str, version: int | None = None) -> ExperimentDetail:
        return await self._experiments.get_experiment(ref, version)

    async def duplicate_experiment(self, ref: str, new_name: str | None = None) -> ImportResult:
        """Copy an experiment's latest version as version 1 of a new experiment, named
        `new_name` or else the first free of `NAME-copy`, `NAME-copy-2`, ..."""
        return await self._experiments.duplicate_experiment(ref, new_name)

    async def delete_experiment(self, ref: str) -> str:
        """Delete an experiment with every version, sweep, run and score; returns its name.
        Refused while one of its sweeps is running or paused. Cached LLM calls are kept."""
        return await self._experiments.delete_experiment(ref)

    # -- sweeps --------------------------------------------------------------------------------

    async def plan(self, ref: str, overrides: SweepOverrides | None = None) -> SweepPlan:
        """What a sweep would do, spending nothing: configs, runs, calls, cached calls, cost."""
        return await self._control.plan(ref, overrides)

    async def plan_spec(
        self, spec: ExperimentSpec, overrides: SweepOverrides | None = None
    ) -> SweepPlan:
        """`plan` for an experiment that need not be stored (the editor's text as it is typed)."""
        return await self._control.plan_spec(spec, overrides)

    async def create_sweep(self, ref: str, overrides: SweepOverrides | None = None) -> str:
        """Record a new sweep of the experiment's latest version; `start_sweep` runs it."""
        return await self._control.create_sweep(ref, overrides)

    async def start_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> asyncio.Task[str]:
        """Run (or resume) a sweep in the background; the task's result is its end status."""
        return await self._control.start_sweep(
            sweep_ref, retry_failed=retry_failed, max_tokens=max_tokens
        )

    async def run_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepSummary:
        """Run (or resume) a sweep to its end and return its summary."""
        return await self._control.run_sweep(
            sweep_ref, retry_failed=retry_failed, max_tokens=max_tokens
        )

    def runner(self, sweep_id: str) -> SweepRunner | None:
        """The live runner of a sweep running in this process, if any."""
        return self.live.runners.get(sweep_id)

    def running_sweeps(self) -> dict[str, str]:
        """The sweeps this process is running now, not paused (id -> experiment name)."""
        return {
            sweep_id: runner.job.experiment_name
            for sweep_id, runner in self.live.runners.items()
            if runner.status == "running"
        }

    async def pause_sweep(self, sweep_ref: str) -> SweepRecord:
        return await self._control.pause_sweep(sweep_ref)

    async def resume_paused_sweep(self, sweep_ref: str) -> SweepRecord:
        return await self._control.resume_paused_sweep(sweep_ref)

    async def stop_sweep(self, sweep_ref: str) -> SweepRecord:
        return await self._control.stop_sweep(sweep_ref)

    async def resume_sweep(
        self, sweep_ref: str, *, retry_failed: bool = False, max_tokens: int | None = None
    ) -> SweepRecord:
        """Continue a sweep whatever halted it: one paused in this process resumes at once; any
        other resumable one (interrupted, stopped, failed, budget_exhausted) starts again in the
        background, repeating no completed run."""
        return await self._control.resume_sweep(
            sweep_ref, retry_failed=retry_failed, max_tokens=max_tokens
        )

    async def suspend_sweeps(self, grace: float = 10.0) -> list[str]:
        """Pause every sweep running in this process and end it as `interrupted` (resumable),
        not `stopped`: what a daemon shutting down does. Runs in flight get `grace` seconds to
        finish; the rest are cancelled, and a resume finds their returned calls in the cache.
        Returns the ids of the suspended sweeps."""
        return await self._control.suspend_sweeps(grace)

    def team_worker(
        self,
        name: str,
        concurrency: int | None = None,
        on_event: Callable[[str], None] = lambda message: None,
    ) -> TeamWorker:
        """A `promptlooper worker` on this Workbench's store: `await worker.run()` works until
        `worker.leave()`. `concurrency` caps the calls in flight of each sweep it works on."""
        from .worker import TeamWorker  # here: only the worker command needs it

        return TeamWorker(self, self._control, name, concurrency, on_event)

    async def resolve_sweep(self, ref: str) -> str:
        """A sweep id from a sweep id, or an experiment id/name (its latest sweep)."""
        return await resolve_sweep(self.db, ref)

    async def list_sweeps(self, experiment: str | None = None) -> list[SweepRecord]:
        return await self._sweeps.list_sweeps(experiment)

    async def get_sweep(self, sweep_ref: str) -> SweepRecord:
        return await self._sweeps.get_sweep(sweep_ref)

    async def evolution(self, sweep_ref: str) -> Evolution:
        """An evolve sweep's lineage: each generation's proposals, accepted or rejected."""
        return await evolution(self.db, self._sweeps, sweep_ref)

    async def apply_evolution(
        self,
        sweep_ref: str,
        *,
        write_file: bool = False,
        out: Path | None = None,
        overwrite: bool = False,
    ) -> EvolvedExperiment:
        """Put the winner of evolve sweep `sweep_ref` (rank 1 of its leaderboard, judged on
        the held-out items), when it is an evolved prompt, into a new version of the
        experiment: the text of the version the sweep ran, comments and all, with the prompt
        added first under `prompts:` and first among the prompt parameter's values. Only the
        prompt: the winner's other parameter values are left as they were.

        With `write_file` (the person at the terminal only), the text is also written, to
        `out` or else beside the original file (`default_evolved_path`); an existing file is
        refused (Conflict) unless `overwrite`. NotFound for an unknown sweep; BadInput for a
        sweep of another strategy or without a winner; Conflict while it runs."""
        return await self._evolution_apply.apply(
            sweep_ref, write_file=write_file, out=out, overwrite=overwrite
        )

    async def sweep_summary(self, sweep_ref: str, *, top: int = 10) -> SweepSummary:
        """The `run --json` object: the sweep's totals over all its resumes (runs against its
        planned total, calls, tokens, cost, scorer failures), this invocation's calls, and the
        sweep's leaderboard."""
        return await self._sweeps.sweep_summary(sweep_ref, top=top)

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
        after: str | None = None,
    ) -> RunPage:
        """Up to `limit` runs, newest first, and how many match (`total`). `after` is the
        `next` cursor of the previous page: the page after it, at the same cost at any
        depth. `offset` skips that many more (without a cursor, from the newest)."""
        return await self._runs.list_runs(
            experiment=experiment,
            sweep=sweep,
            status=status,
            min_score=min_score,
            max_score=max_score,
            limit=limit,
            offset=offset,
            after=after,
        )

    async def get_run(self, run_id: str) -> RunDetail:
        return await self._runs.get_run(run_id)

    async def add_score(
        self, run_id: str, value: float, *, scorer: str = "human", note: str | None = None
    ) -> RunDetail:
        """Record a person's rating of a run, in [0, 1]; the run's score and the leaderboard
        include it. It replaces that person's (that `scorer` name's) earlier rating of the run,
        which is kept as history (`RunDetail.superseded_scores`) but no longer counts. A name
        of one of the experiment's automatic scorers is refused (BadInput): a person's rating
        under it would pass for that scorer's."""
        return await self._runs.add_score(run_id, value, scorer=scorer, note=note)

    async def leaderboard(
        self, ref: str, *, top: int = 10, sweep: str | None = None
    ) -> list[LeaderboardEntry]:
        """The first `top` entries of `ranking(ref, top=top, sweep=sweep)`."""
        return await self._rankings.leaderboard(ref, top=top, sweep=sweep)

    async def ranking(
        self, ref: str, *, top: int | None = 10, sweep: str | None = None
    ) -> Leaderboard:
        """The leaderboard of experiment `ref` (DESIGN §5b): every distinct (config, item,
        repeat) observation of its latest version, over all that version's sweeps (the latest
        completed run of each). With `sweep` (or a sweep id as `ref`), that one sweep's runs.
        The board says what it ranked, which scorers its scores include, which failed on
        how many runs, and which models have no price."""
        return await self._rankings.ranking(ref, top=top, sweep=sweep)

    # -- export --------------------------------------------------------------------------------

    async def export(
        self, ref: str, fmt: str, out: TextIO, *, sweep: str | None = None, top: int = 10
    ) -> None:
        """Write a sweep of experiment `ref` (default: its latest) to `out` as `fmt`: the best
        config (json, yaml, env) or the whole sweep (report with the top `top` configs, csv,
        jsonl; these stream, in bounded memory). BadInput for an unknown format or a sweep with
        nothing to export yet; NotFound for unknown ids. No API key is ever part of an export.
        """
        await self._exports.export(ref, fmt, out, sweep=sweep, top=top)

    # -- webhooks ------------------------------------------------------------------------------

    async def add_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> WebhookRecord:
        """Register a webhook for `events` (None or empty: every type); with a `secret`, each
        delivery is signed. The secret is stored encrypted and never returned."""
        return await self._webhook_book.add_webhook(url, events, secret)

    async def list_webhooks(self) -> list[WebhookRecord]:
        return await self._webhook_book.list_webhooks()

    async def remove_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log; deliveries still queued for it are dropped."""
        await self._webhook_book.remove_webhook(webhook_id)

    async def webhook_deliveries(
        self, webhook_id: str | None = None, limit: int = 50
    ) -> list[DeliveryRecord]:
        """The latest delivery attempts, newest first: of one webhook, or of all."""
        return await self._webhook_book.webhook_deliveries(webhook_id, limit)

    # -- cache ---------------------------------------------------------------------------------

    async def cache_stats(self) -> CacheStats:
        return await self.cache.stats()

    async def cache_clear(self) -> int:
        return await self.cache.clear()

    # -- workers -------------------------------------------------------------------------------

    async def list_workers(self) -> list[WorkerRecord]:
        """The `promptlooper worker` processes on the store: what each works on, its runs done,
        when it was last seen, and whether it is gone (silent too long: it died without
        leaving)."""
        return await worker_list.list_workers(self.db)

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
        return await self._endpoint_book.add_endpoint(
            name,
            base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            pricing=pricing,
            keep_api_key=keep_api_key,
            max_response_mb=max_response_mb,
            deadline_s=deadline_s,
            idle_timeout_s=idle_timeout_s,
            rate_limit_wait_s=rate_limit_wait_s,
        )

    async def list_endpoints(self) -> list[EndpointRecord]:
        return await self._endpoint_book.list_endpoints()

    async def get_endpoint(self, name: str) -> EndpointRecord:
        return await self._endpoint_book.get_endpoint(name)

    async def remove_endpoint(self, name: str) -> None:
        await self._endpoint_book.remove_endpoint(name)

    async def test_endpoint(self, name: str) -> ConnectionResult:
        return await self._endpoint_book.test_endpoint(name)

    async def start_simulated_endpoint(self, options: SimulatorOptions) -> str:
        """Start the built-in simulated endpoint with `options` (latency, fault rates) for the
        Workbench's lifetime, so `endpoint: simulated` calls it; returns its base URL. When it
        is already running, returns that one's URL and the options do not apply."""
        return await self._endpoint_book.start_simulated_endpoint(options)


@contextlib.asynccontextmanager
async def open_workbench(
    settings: Settings, policy: CallerPolicy | None = None
) -> AsyncIterator[Workbench]:
    """The one way to build a Workbench (CLI, TUI, daemon and tests all use it). The daemon
    and the MCP server pass `CallerPolicy.for_remote(...)`; the CLI and the app, nothing."""
    db = await open_database(settings.database)
    workbench = Workbench(settings, db, policy)
    try:
        await workbench.store_secret.check_on_open()
        await workbench.webhooks.start()
        await workbench.relay.start()
        yield workbench
    finally:
        await workbench.webhooks.aclose()
        await workbench.close()
