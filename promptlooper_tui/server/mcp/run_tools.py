"""Tools for results: runs, human scores, the leaderboard, the best config and the report."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ...domain.records import RunDetail, RunPage
from ...workbench.run_cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH
from ..models import Leaderboard
from ..request_bounds import MAX_SQL_INT
from .arguments import ExperimentRef, OtherSweep, Top
from .registry import LOCAL_WRITE, READ_ONLY, ToolRegistry, export_text


class BestConfig(BaseModel):
    """The winning config as a JSON document (`config`) and as text in the asked format."""

    format: str
    config: dict[str, Any]
    content: str


class SweepReport(BaseModel):
    markdown: str


def add_run_tools(tools: ToolRegistry) -> None:
    wb = tools.wb

    @tools.tool(READ_ONLY)
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
        after: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=MAX_CURSOR_LENGTH,
                pattern=CURSOR_PATTERN,
                description="the `next` of the previous page, with the same filters: the page "
                "after it",
            ),
        ] = None,
        offset: Annotated[
            int,
            Field(
                ge=0,
                le=MAX_SQL_INT,
                description="runs to skip (newest first, after `after` if given); prefer `after`",
            ),
        ] = 0,
    ) -> RunPage:
        """Runs (one config on one dataset item), newest first, filtered and paginated;
        `total` counts every match. For the next page pass `next` back as `after` (it is
        null on the last page)."""
        return await wb().list_runs(
            experiment=experiment,
            sweep=sweep,
            status=status,
            min_score=min_score,
            max_score=max_score,
            limit=limit,
            offset=offset,
            after=after,
        )

    @tools.tool(READ_ONLY)
    async def get_run(
        run_id: Annotated[str, Field(description="run id (from list_runs or a leaderboard)")],
    ) -> RunDetail:
        """One run: its config, dataset item, every stage's messages and output, every score."""
        return await wb().get_run(run_id)

    @tools.tool(LOCAL_WRITE)
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

    @tools.tool(READ_ONLY)
    async def leaderboard(
        experiment: ExperimentRef, top: Top = 10, sweep: OtherSweep = None
    ) -> Leaderboard:
        """Configs ranked by weighted mean score with 95% CI, n, tokens, cost, p50 latency, and
        whether each is statistically tied with the leader; over every distinct (config, item,
        repeat) run of the experiment's latest version in all its sweeps (or one `sweep`).
        `ranked` says what was ranked, `scorers` which scorers the scores include,
        `scorer_failures` how often one failed, `unpriced_models` the models without a price."""
        return await wb().ranking(experiment, top=top, sweep=sweep)

    @tools.tool(READ_ONLY)
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

    @tools.tool(READ_ONLY)
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
