"""The MCP server: one tool per Workbench operation, typed inputs, structured (JSON) results.

Served over stdio by `promptlooper mcp` and over streamable HTTP by `promptlooper serve` (port
8401, behind the daemon's bearer token). Importing this module imports the MCP SDK (~1 s), so
only the commands that serve MCP import it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import pydantic
import yaml
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from .. import __version__
from ..domain.errors import (
    Conflict,
    EndpointError,
    NotFound,
    PromptLooperError,
    ValidationError,
)
from ..domain.experiment_schema import experiment_json_schema
from ..domain.records import (
    CacheStats,
    ConnectionResult,
    EndpointRecord,
    ExperimentDetail,
    ExperimentRecord,
    ImportResult,
    RunDetail,
    RunPage,
    SweepPlan,
    SweepRecord,
    SweepSummary,
)
from ..resources import sample_files
from ..workbench import SweepOverrides, Workbench
from .auth import BearerAuth
from .gate import WorkGate
from .models import Leaderboard, SweepStarted, ValidationReport
from .routing import MAX_SQL_INT

P = ParamSpec("P")
R = TypeVar("R")

#: The experiment file format (a JSON Schema) as an MCP resource.
EXPERIMENT_SCHEMA_URI = "promptlooper://schema/experiment"

INSTRUCTIONS = """\
PromptLooper sweeps prompt variants x models x parameters against OpenAI-compatible endpoints,
caches every LLM call, scores every output and ranks the configs.

The experiment file format is the resource promptlooper://schema/experiment (a JSON Schema);
complete examples are the promptlooper://samples/... resources.

Typical flow: validate_experiment / create_experiment (YAML) -> plan_sweep (free: shows runs,
calls and estimated tokens) -> start_sweep (SPENDS TOKENS; returns at once with a sweep id) ->
poll sweep_status every few seconds until its status is no longer "running" -> leaderboard ->
get_run for details -> export_best_config / sweep_report. Experiments and sweeps may be named
by id or by experiment name (a sweep named by its experiment means that experiment's latest
sweep). Only start_sweep and resume_sweep spend tokens (test_endpoint sends one request that
spends none); every other tool is free."""

# Shared argument types: the descriptions are what an agent reads in the input schema.
ExperimentRef = Annotated[str, Field(description="experiment id or name")]
SweepRef = Annotated[
    str, Field(description="sweep id, or an experiment id/name for its latest sweep")
]
Strategy = Annotated[
    Literal["grid", "random", "guided", "racing"] | None,
    Field(description="override the experiment's sweep strategy"),
]
Samples = Annotated[
    int | None,
    Field(ge=1, le=MAX_SQL_INT, description="configs to try (random, guided, racing)"),
]
Repeats = Annotated[int | None, Field(ge=1, le=1000, description="runs per config per item")]
Concurrency = Annotated[
    int | None, Field(ge=1, le=1024, description="most LLM calls in flight at once")
]
MaxTokens = Annotated[
    int | None,
    Field(ge=1, le=MAX_SQL_INT, description="token budget for the sweep; it stops when reached"),
]
Seed = Annotated[
    int | None,
    Field(ge=-MAX_SQL_INT, le=MAX_SQL_INT, description="random seed for sampling strategies"),
]
NoCache = Annotated[bool, Field(description="make every call afresh instead of using the cache")]
Top = Annotated[int, Field(ge=1, le=1000, description="leaderboard rows")]
OtherSweep = Annotated[
    str | None,
    Field(description="rank this sweep alone (default: every sweep of the latest version)"),
]


class ExperimentList(BaseModel):
    experiments: list[ExperimentRecord]


class SweepList(BaseModel):
    sweeps: list[SweepRecord]


class EndpointList(BaseModel):
    endpoints: list[EndpointRecord]


class BestConfig(BaseModel):
    """The winning config as a JSON document (`config`) and as text in the asked format."""

    format: str
    config: dict[str, Any]
    content: str


class SweepReport(BaseModel):
    markdown: str


class _Server(MCPServer):
    """The SDK's server, with argument errors said plainly: which argument, what is wrong."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, pydantic.ValidationError):
                raise ToolError(describe_arguments(name, exc.__cause__)) from None
            raise


def describe_arguments(tool: str, exc: pydantic.ValidationError) -> str:
    """`invalid arguments for list_runs: - offset: Input should be less than or equal to ...`"""
    problems = [
        f"- {'.'.join(str(part) for part in error['loc']) or '(arguments)'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]
    return f"invalid arguments for {tool}:\n" + "\n".join(problems)


def build_mcp_server(
    workbench_provider: Callable[[], Workbench], gate: WorkGate | None = None
) -> MCPServer:
    """An MCPServer whose tools call the Workbench `workbench_provider()` returns at call time
    (the daemon and `promptlooper mcp` open it after building the server). With a `gate`,
    tools that change state fail once it closes (daemon shutdown)."""
    server: MCPServer = _Server("promptlooper", instructions=INSTRUCTIONS, version=__version__)
    wb = workbench_provider
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    local_write = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, open_world_hint=False
    )
    spends = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

    def tool(
        annotations: ToolAnnotations,
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        changes_state = not annotations.read_only_hint

        def register(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            @functools.wraps(fn)
            async def call(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    if not changes_state or gate is None:
                        return await fn(*args, **kwargs)
                    with gate.admit():
                        return await fn(*args, **kwargs)
                except PromptLooperError as exc:
                    raise ToolError(describe_error(exc)) from None

            description = " ".join((fn.__doc__ or "").split())
            server.tool(description=description, annotations=annotations)(call)
            return call

        return register

    # -- experiments ---------------------------------------------------------------------------

    @tool(read_only)
    async def list_experiments() -> ExperimentList:
        """List every experiment with its latest version, latest sweep and best score."""
        return ExperimentList(experiments=await wb().list_experiments())

    @tool(read_only)
    async def get_experiment(
        experiment: ExperimentRef,
        version: Annotated[
            int | None, Field(ge=1, le=MAX_SQL_INT, description="default: latest")
        ] = None,
    ) -> ExperimentDetail:
        """Show one experiment: its spec (as JSON and as the YAML it was written in)."""
        return await wb().get_experiment(experiment, version=version)

    @tool(read_only)
    async def validate_experiment(
        yaml: Annotated[str, Field(description="the experiment file's YAML text")],
    ) -> ValidationReport:
        """Check experiment YAML without storing it. `ok` false lists every problem with its
        field path, line and message; fix them all and validate again."""
        try:
            return ValidationReport.of(await wb().validate_text(yaml, source="<mcp>"))
        except ValidationError as exc:
            return ValidationReport.failed(exc.issues)

    @tool(local_write)
    async def create_experiment(
        yaml: Annotated[str, Field(description="the experiment file's YAML text")],
    ) -> ImportResult:
        """Store an experiment from YAML. Re-sending a known name with changed content makes a
        new version (`created` says whether anything changed). Spends nothing."""
        return await wb().import_text(yaml, source="<mcp>")

    # -- sweeps --------------------------------------------------------------------------------

    @tool(read_only)
    async def plan_sweep(
        experiment: ExperimentRef,
        strategy: Strategy = None,
        samples: Samples = None,
        repeats: Repeats = None,
        concurrency: Concurrency = None,
        max_tokens: MaxTokens = None,
        seed: Seed = None,
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
            seed=seed,
            no_cache=no_cache,
        )
        return await wb().plan(experiment, overrides)

    @tool(spends)
    async def start_sweep(
        experiment: ExperimentRef,
        strategy: Strategy = None,
        samples: Samples = None,
        repeats: Repeats = None,
        concurrency: Concurrency = None,
        max_tokens: MaxTokens = None,
        seed: Seed = None,
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
            seed=seed,
            no_cache=no_cache,
        )
        sweep_id = await workbench.create_sweep(experiment, overrides)
        await workbench.start_sweep(sweep_id)
        return SweepStarted(sweep_id=sweep_id)

    @tool(read_only)
    async def sweep_status(sweep: SweepRef, top: Top = 10) -> SweepSummary:
        """A sweep's status (running, paused, completed, stopped, budget_exhausted, failed,
        interrupted), run counts, tokens, cost and current leaderboard. Poll this while a
        sweep runs."""
        return await wb().sweep_summary(sweep, top=top)

    @tool(read_only)
    async def list_sweeps(
        experiment: Annotated[str | None, Field(description="only this experiment's")] = None,
    ) -> SweepList:
        """Sweeps, newest first, with status; `resumable` ones can be finished by resume_sweep."""
        return SweepList(sweeps=await wb().list_sweeps(experiment))

    @tool(local_write)
    async def pause_sweep(sweep: SweepRef) -> SweepSummary:
        """Pause a running sweep (runs in flight finish; nothing new starts)."""
        await wb().pause_sweep(sweep)
        return await wb().sweep_summary(sweep)

    @tool(spends)
    async def resume_sweep(
        sweep: SweepRef,
        retry_failed: Annotated[bool, Field(description="run failed runs again")] = False,
        max_tokens: MaxTokens = None,
    ) -> SweepSummary:
        """Resume a paused sweep, or restart an interrupted/stopped/budget-exhausted one in the
        background. SPENDS TOKENS; completed runs are never repeated. Poll sweep_status."""
        await wb().resume_sweep(sweep, retry_failed=retry_failed, max_tokens=max_tokens)
        return await wb().sweep_summary(sweep)

    @tool(local_write)
    async def stop_sweep(sweep: SweepRef) -> SweepSummary:
        """Stop a running sweep now (runs in flight are cancelled); it stays resumable."""
        await wb().stop_sweep(sweep)
        return await wb().sweep_summary(sweep)

    # -- runs and scores -----------------------------------------------------------------------

    @tool(read_only)
    async def list_runs(
        experiment: Annotated[str | None, Field(description="experiment id or name")] = None,
        sweep: Annotated[str | None, Field(description="sweep id")] = None,
        status: Annotated[
            Literal["completed", "failed"] | None, Field(description="only runs in this state")
        ] = None,
        min_score: Annotated[
            float | None, Field(ge=0, le=1, allow_inf_nan=False, description="lowest score")
        ] = None,
        max_score: Annotated[
            float | None, Field(ge=0, le=1, allow_inf_nan=False, description="highest score")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="runs in this page")] = 20,
        offset: Annotated[
            int, Field(ge=0, le=MAX_SQL_INT, description="runs to skip (newest first)")
        ] = 0,
    ) -> RunPage:
        """Runs (one config on one dataset item), newest first, filtered and paginated;
        `total` counts every match."""
        return await wb().list_runs(
            experiment=experiment,
            sweep=sweep,
            status=status,
            min_score=min_score,
            max_score=max_score,
            limit=limit,
            offset=offset,
        )

    @tool(read_only)
    async def get_run(
        run_id: Annotated[str, Field(description="run id (from list_runs or a leaderboard)")],
    ) -> RunDetail:
        """One run: its config, dataset item, every stage's messages and output, every score."""
        return await wb().get_run(run_id)

    @tool(local_write)
    async def score_run(
        run_id: Annotated[str, Field(description="the run to rate (from list_runs)")],
        value: Annotated[float, Field(ge=0, le=1, description="0 = worst, 1 = best")],
        note: Annotated[str | None, Field(description="why, kept with the rating")] = None,
        scorer: Annotated[
            str,
            Field(
                description="who rates: a new rating replaces this name's earlier one of the "
                "run; never the name of one of the experiment's automatic scorers"
            ),
        ] = "human",
    ) -> RunDetail:
        """Rate a run's output as a person; the run's score and the leaderboard include it. A
        new rating under the same `scorer` name replaces the earlier one (kept as history)."""
        return await wb().add_score(run_id, value, scorer=scorer, note=note)

    @tool(read_only)
    async def leaderboard(
        experiment: ExperimentRef, top: Top = 10, sweep: OtherSweep = None
    ) -> Leaderboard:
        """Configs ranked by weighted mean score with 95% CI, n, tokens, cost, p50 latency, and
        whether each is statistically tied with the leader; over every distinct (config, item,
        repeat) run of the experiment's latest version in all its sweeps (or one `sweep`).
        `ranked` says what was ranked, `scorers` which scorers the scores include,
        `scorer_failures` how often one failed, `unpriced_models` the models without a price."""
        return await wb().ranking(experiment, top=top, sweep=sweep)

    # -- exports -------------------------------------------------------------------------------

    @tool(read_only)
    async def export_best_config(
        experiment: ExperimentRef,
        format: Annotated[
            Literal["json", "yaml", "env"],
            Field(description="text form of `content`: json, yaml, or env (KEY=value lines)"),
        ] = "json",
        sweep: OtherSweep = None,
    ) -> BestConfig:
        """The best config of the experiment (every sweep of its latest version, or one
        `sweep`), ready to deploy: its parameters, the winning prompt's text, the pipeline, its
        score with 95% CI, and what was ranked (`ranked`). Spends nothing."""
        document = await export_text(wb(), experiment, "json", sweep=sweep)
        if format == "json":
            content = document
        else:
            content = await export_text(wb(), experiment, format, sweep=sweep)
        return BestConfig(format=format, config=json.loads(document), content=content)

    @tool(read_only)
    async def sweep_report(
        experiment: ExperimentRef, sweep: OtherSweep = None, top: Top = 10
    ) -> SweepReport:
        """A Markdown report of the latest sweep (or `sweep`): totals, tokens and cost, score
        distributions per scorer, grouped failures, and the leaderboard of the experiment's
        latest version over all its sweeps (or of `sweep`), saying what it ranked. Spends
        nothing."""
        return SweepReport(
            markdown=await export_text(wb(), experiment, "report", sweep=sweep, top=top)
        )

    # -- cache and endpoints -------------------------------------------------------------------

    @tool(read_only)
    async def cache_stats() -> CacheStats:
        """LLM call cache: hits, misses, hit rate, entries, bytes."""
        return await wb().cache_stats()

    @tool(read_only)
    async def list_endpoints() -> EndpointList:
        """Stored OpenAI-compatible endpoints (API keys are never shown). The name `simulated`
        is a built-in simulated endpoint that needs no setup."""
        return EndpointList(endpoints=await wb().list_endpoints())

    @tool(ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def test_endpoint(
        name: Annotated[str, Field(description="a stored endpoint's name (list_endpoints)")],
    ) -> ConnectionResult:
        """Connect to an endpoint and list its models. Sends one request; spends no tokens."""
        return await wb().test_endpoint(name)

    # -- resources -----------------------------------------------------------------------------

    @server.resource(
        EXPERIMENT_SCHEMA_URI,
        name="experiment-schema",
        title="Experiment file format",
        description="The experiment file format as a JSON Schema, every field described. "
        "Experiment YAML (create_experiment, validate_experiment) must match it; the samples "
        "(promptlooper://samples/...) are complete examples.",
        mime_type="application/schema+json",
    )
    def experiment_schema() -> str:
        return json.dumps(experiment_json_schema(), indent=1)

    for sample in sample_files():
        _add_sample(server, sample)

    @server.resource(
        "promptlooper://experiments/{experiment}",
        name="experiment",
        description="An experiment's latest spec, as the YAML it was written in.",
        mime_type="application/yaml",
    )
    async def experiment_spec(experiment: str) -> str:
        try:
            return (await wb().get_experiment(experiment)).spec_yaml
        except PromptLooperError as exc:
            raise ResourceError(describe_error(exc)) from None

    @server.resource(
        "promptlooper://experiments/{experiment}/report",
        name="report",
        description="A Markdown report of the experiment's latest sweep.",
        mime_type="text/markdown",
    )
    async def latest_report(experiment: str) -> str:
        try:
            return await export_text(wb(), experiment, "report")
        except PromptLooperError as exc:
            raise ResourceError(describe_error(exc)) from None

    return server


def _add_sample(server: MCPServer, path: Path) -> None:
    """`path`, a shipped sample, as the resource promptlooper://samples/NAME."""
    if path.suffix == ".yaml":
        about = yaml.safe_load(path.read_text()).get("description", "")
        description = f"Sample experiment (YAML, ready for create_experiment): {about}"
        mime = "application/yaml"
    else:
        description = (
            "A sample experiment's dataset file; experiments sent over MCP read dataset "
            "files only inside the server's data folder, so inline its rows or copy it there."
        )
        mime = "application/jsonl" if path.suffix == ".jsonl" else "text/csv"

    def read() -> str:
        return path.read_text()

    server.resource(
        f"promptlooper://samples/{path.name}",
        name=f"sample-{path.stem}",
        description=description,
        mime_type=mime,
    )(read)


async def export_text(
    workbench: Workbench, experiment: str, fmt: str, *, sweep: str | None = None, top: int = 10
) -> str:
    """An export as a string (best configs and reports are small; runs are not offered here)."""
    out = io.StringIO()
    await workbench.export(experiment, fmt, out, sweep=sweep, top=top)
    return out.getvalue()


def create_mcp_app(
    workbench: Workbench, token: str, *, gate: WorkGate | None = None, host: str = "127.0.0.1"
) -> Starlette:
    """The MCP streamable-HTTP app (endpoint `/mcp`) behind the bearer `token`. For a loopback
    `host` the SDK also checks the Host and Origin headers (DNS-rebinding protection)."""
    server = build_mcp_server(lambda: workbench, gate)
    mcp_app = server.streamable_http_app(host=host)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The session manager's task group lives as long as the app; without it /mcp is a 500.
        async with server.session_manager.run():
            yield

    return Starlette(
        routes=[Mount("/", app=mcp_app)],
        middleware=[Middleware(BearerAuth, token=token, query_token=True)],
        lifespan=lifespan,
    )


def describe_error(exc: PromptLooperError) -> str:
    """The one place MCP turns a PromptLooper error into the text an agent reads."""
    if isinstance(exc, ValidationError):
        return "invalid experiment:\n" + "\n".join(
            f"- {issue.path or '(top level)'} (line {issue.line}): {issue.message}"
            for issue in exc.issues
        )
    prefix = {NotFound: "not found", Conflict: "not possible now", EndpointError: "endpoint error"}
    for kind, label in prefix.items():
        if isinstance(exc, kind):
            return f"{label}: {exc}"
    return str(exc)
