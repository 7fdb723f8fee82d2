"""The daemon's HTTP JSON API under `/api` (DESIGN.md section 7) and the websocket feed `/ws`.

Every handler is one Workbench call: parse (done by the router from the declared models), call,
return. Errors map to statuses in `routing.error_response`; the OpenAPI document at
`/api/openapi.json` is generated from this route table.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Collection
from typing import IO, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from .. import __version__
from ..domain.records import (
    CacheStats,
    ConnectionResult,
    DeliveryRecord,
    EndpointRecord,
    Evolution,
    ExperimentDetail,
    ExperimentRecord,
    ImportResult,
    RunDetail,
    RunPage,
    SweepPlan,
    SweepRecord,
    SweepSummary,
    WebhookRecord,
    WorkerRecord,
)
from ..workbench import Workbench
from ..workbench.evolve_apply import EvolvedExperiment
from .auth import BearerAuth, HostGuard
from .gate import WorkGate
from .models import (
    BestConfigDocument,
    CacheCleared,
    Health,
    Leaderboard,
    SweepStarted,
    ValidationReport,
)
from .read_cache import ReadCache
from .request_models import (
    DeliveriesQuery,
    EndpointBody,
    ExperimentBody,
    ExperimentQuery,
    ExportQuery,
    LeaderboardQuery,
    ResumeBody,
    RunQuery,
    ScoreBody,
    SummaryQuery,
    SweepBody,
    SweepListQuery,
    WebhookBody,
)
from .routing import ApiRouter, http_error
from .ws import EventFeed

router = ApiRouter("/api")

#: Export formats (as `promptlooper export --format`) and the media type each is served as.
EXPORT_MEDIA_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "env": "text/plain",
    "report": "text/markdown",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}
ExportFormat = Literal["json", "yaml", "env", "report", "csv", "jsonl"]
_EXPORT_SUFFIX = {"report": "md", "env": "env"}
#: An export is built in memory up to this size, then in a temporary file (bounded memory).
_SPOOL_BYTES = 1024 * 1024
_CHUNK_CHARS = 64 * 1024


# -- health --------------------------------------------------------------------------------------


@router.get("/health", response=Health, public=True)
async def health(wb: Workbench) -> Health:
    """Liveness and version; needs no token."""
    return Health(ok=True, version=__version__)


# -- endpoints -----------------------------------------------------------------------------------


@router.get("/endpoints", response=list[EndpointRecord])
async def list_endpoints(wb: Workbench) -> list[EndpointRecord]:
    """Stored OpenAI-compatible endpoints (keys never included)."""
    return await wb.list_endpoints()


@router.post("/endpoints", body=EndpointBody, response=EndpointRecord, status=201)
async def add_endpoint(wb: Workbench, *, body: EndpointBody) -> EndpointRecord:
    """Add or replace an endpoint; an API key is stored encrypted."""
    return await wb.add_endpoint(
        body.name,
        body.base_url,
        api_key=body.api_key,
        api_key_env=body.api_key_env,
        pricing=body.pricing,
        max_response_mb=body.max_response_mb,
        deadline_s=body.deadline_s,
        idle_timeout_s=body.idle_timeout_s,
        rate_limit_wait_s=body.rate_limit_wait_s,
    )


@router.post("/endpoints/{name}/test", response=ConnectionResult)
async def test_endpoint(wb: Workbench, *, name: str) -> ConnectionResult:
    """Connect and list models (spends no tokens); `ok` says whether it worked."""
    return await wb.test_endpoint(name)


@router.delete("/endpoints/{name}")
async def remove_endpoint(wb: Workbench, *, name: str) -> None:
    """Remove a stored endpoint."""
    await wb.remove_endpoint(name)


# -- experiments ---------------------------------------------------------------------------------


@router.get("/experiments", response=list[ExperimentRecord], cached=True)
async def list_experiments(wb: Workbench) -> list[ExperimentRecord]:
    """Every experiment with its latest version, latest sweep and best score."""
    return await wb.list_experiments()


@router.post("/experiments", body=ExperimentBody, response=ImportResult, status=201)
async def create_experiment(wb: Workbench, *, body: ExperimentBody) -> ImportResult:
    """Store an experiment from YAML text; a known name with changed content is a new version.

    An invalid experiment is a 422 whose details give each problem's path, line and message.
    """
    return await wb.import_text(body.yaml, source="<request>")


@router.post("/experiments/validate", body=ExperimentBody, response=ValidationReport)
async def validate_experiment(wb: Workbench, *, body: ExperimentBody) -> ValidationReport:
    """Check experiment YAML without storing it (422 with every problem when invalid)."""
    return ValidationReport.of(await wb.validate_text(body.yaml, source="<request>"))


@router.get("/experiments/{experiment}", query=ExperimentQuery, response=ExperimentDetail)
async def get_experiment(
    wb: Workbench, *, experiment: str, query: ExperimentQuery
) -> ExperimentDetail:
    """One experiment (by id or name): its spec and YAML, latest version unless `version`."""
    return await wb.get_experiment(experiment, version=query.version)


@router.post("/experiments/{experiment}/plan", body=SweepBody, response=SweepPlan)
async def plan_sweep(wb: Workbench, *, experiment: str, body: SweepBody) -> SweepPlan:
    """The dry-run plan (configs, runs, calls, cached calls, estimated tokens and cost).

    Spends nothing.
    """
    return await wb.plan(experiment, body)


@router.post("/experiments/{experiment}/sweeps", body=SweepBody, response=SweepStarted, status=202)
async def start_sweep(wb: Workbench, *, experiment: str, body: SweepBody) -> SweepStarted:
    """Start a sweep of the latest version in the background; spends tokens.

    Answers at once with the sweep id; poll `GET /api/sweeps/{id}` or follow `/ws`.
    """
    sweep_id = await wb.create_sweep(experiment, body)
    await wb.start_sweep(sweep_id)
    return SweepStarted(sweep_id=sweep_id)


@router.get(
    "/experiments/{experiment}/leaderboard",
    query=LeaderboardQuery,
    response=Leaderboard,
    cached=True,
)
async def leaderboard(wb: Workbench, *, experiment: str, query: LeaderboardQuery) -> Leaderboard:
    """Ranked configs, as in `run --json`, of every distinct (config, item, repeat) run of the
    experiment's latest version over all its sweeps (or of the one `sweep`). `ranked` says
    what was ranked, `configs` how many in all; `scorers` the scorers the scores include,
    `scorer_failures` how often one failed, `unpriced_models` the models without a price
    (their configs' `cost` is null)."""
    return await wb.ranking(experiment, top=query.top, sweep=query.sweep)


@router.get(
    "/experiments/{experiment}/export/{fmt}",
    query=ExportQuery,
    response=BestConfigDocument,
    media_types=tuple(EXPORT_MEDIA_TYPES.values()),
)
async def export(
    wb: Workbench, *, experiment: str, fmt: ExportFormat, query: ExportQuery
) -> StreamingResponse:
    """Export the best config (json, yaml, env) of every sweep of the experiment's latest
    version (or of `sweep`), or a sweep's runs (report, csv, jsonl; default its latest).

    `report` is Markdown, `csv` and `jsonl` list every run. The export is complete before the
    answer starts, so a failure is a JSON error, never a truncated file.
    """
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by _stream
        max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8", newline=""
    )
    try:
        await wb.export(experiment, fmt, spool, sweep=query.sweep, top=query.top)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    filename = re.sub(r"[^\w.-]", "_", experiment) + "." + _EXPORT_SUFFIX.get(fmt, fmt)
    return StreamingResponse(
        _stream(spool),
        media_type=EXPORT_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _stream(spool: IO[str]) -> AsyncIterator[bytes]:
    with spool:
        while chunk := spool.read(_CHUNK_CHARS):
            yield chunk.encode()


# -- sweeps --------------------------------------------------------------------------------------


@router.get("/sweeps", query=SweepListQuery, response=list[SweepRecord], cached=True)
async def list_sweeps(wb: Workbench, *, query: SweepListQuery) -> list[SweepRecord]:
    """Sweeps, newest first; interrupted ones are `resumable`."""
    return await wb.list_sweeps(query.experiment)


@router.get("/sweeps/{sweep}", query=SummaryQuery, response=SweepSummary, cached=True)
async def sweep_status(wb: Workbench, *, sweep: str, query: SummaryQuery) -> SweepSummary:
    """The status object: the `run --json` summary (totals, calls, tokens, leaderboard)."""
    return await wb.sweep_summary(sweep, top=query.top)


@router.get("/sweeps/{sweep}/evolution", response=Evolution, cached=True)
async def sweep_evolution(wb: Workbench, *, sweep: str) -> Evolution:
    """An evolve sweep's lineage: what each generation proposed, and why.

    The prompt parameter it rewrites, the experiment's own prompts (generation 0), the
    held-out items, and each generation's proposer call (model, tokens, whether cached, why
    its answer could not be read) with its proposals: template, parents, the proposer's
    rationale, and `accepted` under a prompt name or `rejected` with the reason. A sweep of
    another strategy is a 400.
    """
    return await wb.evolution(sweep)


@router.post("/sweeps/{sweep}/pause", response=SweepSummary)
async def pause_sweep(wb: Workbench, *, sweep: str) -> SweepSummary:
    """Pause a sweep running in the daemon (runs in flight finish)."""
    await wb.pause_sweep(sweep)
    return await wb.sweep_summary(sweep)


@router.post("/sweeps/{sweep}/resume", body=ResumeBody, response=SweepSummary, status=202)
async def resume_sweep(wb: Workbench, *, sweep: str, body: ResumeBody) -> SweepSummary:
    """Resume a paused sweep, or restart an interrupted/stopped one in the background.

    Spends tokens; completed runs are never repeated.
    """
    await wb.resume_sweep(sweep, retry_failed=body.retry_failed, max_tokens=body.max_tokens)
    return await wb.sweep_summary(sweep)


@router.post("/sweeps/{sweep}/stop", response=SweepSummary)
async def stop_sweep(wb: Workbench, *, sweep: str) -> SweepSummary:
    """Stop a running sweep (runs in flight are cancelled); it stays resumable."""
    await wb.stop_sweep(sweep)
    return await wb.sweep_summary(sweep)


@router.post("/sweeps/{sweep}/evolve-apply", response=EvolvedExperiment)
async def evolve_apply(wb: Workbench, *, sweep: str) -> EvolvedExperiment:
    """Store an evolve sweep's winner, when it is a prompt the sweep wrote, as a new version of
    the experiment: the version's YAML with the prompt added first under `prompts:` and first
    among the prompt parameter's values (comments kept; the winner's other parameter values
    are not copied). Writes no file: `text` is the new version's YAML. When the winner is one
    of the experiment's own prompts, `applied` is false and nothing is stored.

    400 for a sweep of another strategy or without a winner; 409 while it runs.
    """
    return await wb.apply_evolution(sweep)


# -- runs ----------------------------------------------------------------------------------------


@router.get("/runs", query=RunQuery, response=RunPage, cached=True)
async def list_runs(wb: Workbench, *, query: RunQuery) -> RunPage:
    """Runs, newest first, filtered by experiment, sweep, status and score range; paginated.

    A page's `next` (null on the last page) passed back as `after` gives the page after it, at
    the same cost at any depth; `offset` alone also pages, at a cost that grows with depth.
    """
    return await wb.list_runs(**query.model_dump())


@router.get("/runs/{run_id}", response=RunDetail)
async def get_run(wb: Workbench, *, run_id: str) -> RunDetail:
    """One run: its config, item, every stage (messages, output, tokens) and every score."""
    return await wb.get_run(run_id)


@router.post("/runs/{run_id}/scores", body=ScoreBody, response=RunDetail, status=201)
async def score_run(wb: Workbench, *, run_id: str, body: ScoreBody) -> RunDetail:
    """Add a human score in [0, 1]; the run's score and the leaderboard include it."""
    return await wb.add_score(run_id, body.value, scorer=body.scorer, note=body.note)


# -- cache ---------------------------------------------------------------------------------------


@router.get("/cache/stats", response=CacheStats)
async def cache_stats(wb: Workbench) -> CacheStats:
    """Cache hits, misses, hit rate, entries and bytes."""
    return await wb.cache_stats()


@router.delete("/cache", response=CacheCleared, status=200)
async def clear_cache(wb: Workbench) -> CacheCleared:
    """Delete every cached LLM answer (later sweeps pay for their calls again)."""
    return CacheCleared(removed=await wb.cache_clear())


# -- workers -------------------------------------------------------------------------------------


@router.get("/workers", response=list[WorkerRecord])
async def list_workers(wb: Workbench) -> list[WorkerRecord]:
    """The `promptlooper worker` processes on the store: what each works on, its runs done,
    when it was last seen, and whether it is gone (silent for 30 s: it died without leaving)."""
    return await wb.list_workers()


# -- webhooks ------------------------------------------------------------------------------------


@router.get("/webhooks", response=list[WebhookRecord])
async def list_webhooks(wb: Workbench) -> list[WebhookRecord]:
    """Registered webhooks (secrets never included)."""
    return await wb.list_webhooks()


@router.post("/webhooks", body=WebhookBody, response=WebhookRecord, status=201)
async def add_webhook(wb: Workbench, *, body: WebhookBody) -> WebhookRecord:
    """Register a URL to receive events (signed with `secret` when given)."""
    return await wb.add_webhook(body.url, body.events, body.secret)


@router.delete("/webhooks/{webhook_id}")
async def remove_webhook(wb: Workbench, *, webhook_id: str) -> None:
    """Remove a webhook and its delivery log."""
    await wb.remove_webhook(webhook_id)


@router.get(
    "/webhooks/{webhook_id}/deliveries", query=DeliveriesQuery, response=list[DeliveryRecord]
)
async def webhook_deliveries(
    wb: Workbench, *, webhook_id: str, query: DeliveriesQuery
) -> list[DeliveryRecord]:
    """A webhook's latest delivery attempts, newest first."""
    return await wb.webhook_deliveries(webhook_id, limit=query.limit)


# -- the app -------------------------------------------------------------------------------------


def create_api(
    workbench: Workbench,
    token: str,
    *,
    gate: WorkGate | None = None,
    feed: EventFeed | None = None,
    allowed_hosts: Collection[str] = (),
) -> Starlette:
    """The API app: `/api/...` routes, `/api/openapi.json`, and the `/ws` event feed, all but
    `/api/health` behind the bearer `token`. `gate` (closed at shutdown) refuses changes with
    503; `feed` is exposed so the daemon can close subscribers on shutdown.

    Every request, `/api/health` included, must name in its Host header a loopback name or
    one of `allowed_hosts` (any port), else 421: a web page cannot reach the API through a
    DNS name rebound to this machine."""
    gate = gate or WorkGate()
    feed = feed or EventFeed(workbench)
    cache = ReadCache(workbench.bus, gate)
    document = router.openapi(title="PromptLooper API", version=__version__)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    routes = [
        *router.routes(workbench, gate, cache),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        WebSocketRoute("/ws", feed.endpoint),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(HostGuard, allowed=allowed_hosts),
            Middleware(BearerAuth, token=token, public=router.public_paths),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.feed = feed
    app.state.gate = gate
    return app
