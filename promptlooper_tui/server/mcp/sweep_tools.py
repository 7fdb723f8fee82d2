"""Tools for sweeps: plan (free), start and resume (they spend tokens), follow, pause, stop."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from ...domain.records import Evolution, SweepPlan, SweepRecord, SweepSummary
from ...workbench import SweepOverrides
from ...workbench.evolve_apply import EvolvedExperiment
from ..models import SweepStarted
from .arguments import (
    Concurrency,
    ExperimentRef,
    Generations,
    Holdout,
    MaxRuns,
    MaxTokens,
    MinEffect,
    NoCache,
    Proposals,
    ProposerModel,
    Repeats,
    Samples,
    Seed,
    Strategy,
    SweepRef,
    Top,
)
from .registry import LOCAL_WRITE, READ_ONLY, SPENDS, ToolRegistry


class SweepList(BaseModel):
    sweeps: list[SweepRecord]


def add_sweep_tools(tools: ToolRegistry) -> None:
    wb = tools.wb

    @tools.tool(READ_ONLY)
    async def plan_sweep(
        experiment: ExperimentRef,
        strategy: Strategy = None,
        samples: Samples = None,
        repeats: Repeats = None,
        concurrency: Concurrency = None,
        max_tokens: MaxTokens = None,
        min_effect: MinEffect = None,
        max_runs: MaxRuns = None,
        seed: Seed = None,
        generations: Generations = None,
        proposals: Proposals = None,
        holdout: Holdout = None,
        proposer_model: ProposerModel = None,
        no_cache: NoCache = False,
    ) -> SweepPlan:
        """Dry-run plan of a sweep: configs, runs, LLM calls, how many are cached, estimated
        tokens and cost. Spends nothing; use it before start_sweep."""
        overrides = SweepOverrides(
            strategy=strategy,
            samples=samples,
            repeats=repeats,
            concurrency=concurrency,
            max_tokens=max_tokens,
            min_effect=min_effect,
            max_runs=max_runs,
            seed=seed,
            generations=generations,
            proposals=proposals,
            holdout=holdout,
            proposer_model=proposer_model,
            no_cache=no_cache,
        )
        return await wb().plan(experiment, overrides)

    @tools.tool(SPENDS)
    async def start_sweep(
        experiment: ExperimentRef,
        strategy: Strategy = None,
        samples: Samples = None,
        repeats: Repeats = None,
        concurrency: Concurrency = None,
        max_tokens: MaxTokens = None,
        min_effect: MinEffect = None,
        max_runs: MaxRuns = None,
        seed: Seed = None,
        generations: Generations = None,
        proposals: Proposals = None,
        holdout: Holdout = None,
        proposer_model: ProposerModel = None,
        no_cache: NoCache = False,
    ) -> SweepStarted:
        """Start a sweep of the experiment's latest version. SPENDS TOKENS (cache hits are
        free). Returns at once with the sweep id while it runs in the background: poll
        sweep_status every few seconds until status is not "running" (long sweeps take
        minutes), then read the leaderboard. Over stdio (`promptlooper mcp`) the sweep
        outlives the connection: if the client disconnects while it runs, it is handed to a
        background `promptlooper resume` process on the same home, which finishes it without
        repeating completed runs; sweep_status on a new connection follows it."""
        workbench = wb()
        overrides = SweepOverrides(
            strategy=strategy,
            samples=samples,
            repeats=repeats,
            concurrency=concurrency,
            max_tokens=max_tokens,
            min_effect=min_effect,
            max_runs=max_runs,
            seed=seed,
            generations=generations,
            proposals=proposals,
            holdout=holdout,
            proposer_model=proposer_model,
            no_cache=no_cache,
        )
        sweep_id = await workbench.create_sweep(experiment, overrides)
        await workbench.start_sweep(sweep_id)
        return SweepStarted(sweep_id=sweep_id)

    @tools.tool(READ_ONLY)
    async def sweep_status(sweep: SweepRef, top: Top = 10) -> SweepSummary:
        """A sweep's status (running, paused, completed, stopped, budget_exhausted, failed,
        interrupted), run counts, tokens, cost and current leaderboard. Poll this while a
        sweep runs."""
        return await wb().sweep_summary(sweep, top=top)

    @tools.tool(READ_ONLY)
    async def sweep_evolution(sweep: SweepRef) -> Evolution:
        """The lineage of an evolve sweep: the prompt parameter it rewrites, the experiment's
        own prompts (generation 0), the held-out items the proposer never saw, and each
        generation's proposer call (model, tokens, whether cached) with its proposals:
        template, parents (prompt names), the proposer's rationale, and "accepted" under a new
        prompt name (g1.1, g2.3...) or "rejected" with the reason. Prompt names in a
        leaderboard's configs are these. Fails for a sweep of another strategy."""
        return await wb().evolution(sweep)

    @tools.tool(READ_ONLY)
    async def list_sweeps(
        experiment: Annotated[str | None, Field(description="only this experiment's")] = None,
    ) -> SweepList:
        """Sweeps, newest first, with status; `resumable` ones can be finished by resume_sweep."""
        return SweepList(sweeps=await wb().list_sweeps(experiment))

    @tools.tool(LOCAL_WRITE)
    async def pause_sweep(sweep: SweepRef) -> SweepSummary:
        """Pause a running sweep (runs in flight finish; nothing new starts)."""
        await wb().pause_sweep(sweep)
        return await wb().sweep_summary(sweep)

    @tools.tool(SPENDS)
    async def resume_sweep(
        sweep: SweepRef,
        retry_failed: Annotated[bool, Field(description="run failed runs again")] = False,
        max_tokens: MaxTokens = None,
    ) -> SweepSummary:
        """Resume a paused sweep, or restart an interrupted/stopped/budget-exhausted one in the
        background. SPENDS TOKENS; completed runs are never repeated. Poll sweep_status."""
        await wb().resume_sweep(sweep, retry_failed=retry_failed, max_tokens=max_tokens)
        return await wb().sweep_summary(sweep)

    @tools.tool(LOCAL_WRITE)
    async def stop_sweep(sweep: SweepRef) -> SweepSummary:
        """Stop a running sweep now (runs in flight are cancelled); it stays resumable."""
        await wb().stop_sweep(sweep)
        return await wb().sweep_summary(sweep)

    @tools.tool(LOCAL_WRITE)
    async def evolve_apply(sweep: SweepRef) -> EvolvedExperiment:
        """After an evolve sweep has finished: store its winner (best on the held-out items),
        when it is a prompt the sweep wrote, as a new version of the experiment, whose YAML
        (`text`) is the version's own with the prompt added and chosen first; only the prompt
        is copied, not the winner's other parameter values. Writes no file; start_sweep on the
        experiment runs the new version. `applied` false: the winner is one of the
        experiment's own prompts and nothing was stored. Spends nothing."""
        return await wb().apply_evolution(sweep)
