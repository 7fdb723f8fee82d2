"""Argument types the tools share; their descriptions are what an agent reads in the input
schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..request_bounds import MAX_SQL_INT

ExperimentRef = Annotated[str, Field(description="experiment id or name")]
SweepRef = Annotated[
    str, Field(description="sweep id, or an experiment id/name for its latest sweep")
]
Strategy = Annotated[
    Literal["grid", "random", "guided", "racing", "evolve"] | None,
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
MinEffect = Annotated[
    float | None,
    Field(
        ge=0, lt=1, description="racing and guided: a score difference too small to matter (0.02)"
    ),
]
MaxRuns = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_SQL_INT,
        description="racing, guided and evolve: the most runs the sweep makes",
    ),
]
Generations = Annotated[
    int | None, Field(ge=1, le=50, description="evolve: rounds of proposals (default 3)")
]
Proposals = Annotated[
    int | None,
    Field(ge=1, le=20, description="evolve: new prompt templates per generation (default 4)"),
]
Holdout = Annotated[
    float | None,
    Field(
        ge=0,
        le=0.8,
        description="evolve: share of the items the proposer never sees; the winner is judged "
        "on them (default 0.3)",
    ),
]
ProposerModel = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="evolve: the model that writes the prompt templates (required by evolve "
        "when the experiment's sweep: has no proposer)",
    ),
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
