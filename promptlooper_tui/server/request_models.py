"""The API's request bodies and queries as strict pydantic models: unknown fields, NaN or
infinite numbers and `true`/`false` where a number belongs are refused, and numbers stay
within what the store can hold."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..domain.experiment import SweepSettings
from ..workbench import SweepOverrides
from ..workbench.run_cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH
from .request_bounds import MAX_SQL_INT


class _Strict(BaseModel):
    """Request models reject unknown fields (a typo must never be silently ignored), NaN or
    infinite numbers, and `true`/`false` where a number belongs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field is not None:
                    annotation = field.annotation
                    if annotation is not bool and bool not in typing.get_args(annotation):
                        raise ValueError(f"{name} must be a number, not {str(value).lower()}")
        return data


class EndpointBody(_Strict):
    name: str = Field(min_length=1)
    base_url: str = Field(description="e.g. http://127.0.0.1:8080/v1")
    api_key_env: str | None = Field(None, description="read the key from this variable")
    api_key: str | None = Field(None, description="stored encrypted; never returned")
    pricing: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="model (or *) -> [input, output] per million tokens"
    )
    max_response_mb: float | None = Field(
        None, description="largest answer body accepted, in MiB (default 8)"
    )
    deadline_s: float | None = Field(
        None, description="seconds one request may take, connect to last byte (default 300)"
    )
    idle_timeout_s: float | None = Field(
        None, description="seconds an answer may stay silent (default 60)"
    )
    rate_limit_wait_s: float | None = Field(
        None, description="seconds a call may wait on HTTP 429 answers (default 600)"
    )


class ExperimentBody(_Strict):
    yaml: str = Field(description="the experiment file's text")


class ExperimentQuery(_Strict):
    version: int | None = Field(None, ge=1, le=MAX_SQL_INT)


class SweepListQuery(_Strict):
    experiment: str | None = None


class SummaryQuery(_Strict):
    top: int = Field(10, ge=1, le=1000)


class ResumeBody(_Strict):
    retry_failed: bool = Field(False, strict=True)
    max_tokens: int | None = Field(None, ge=1, le=MAX_SQL_INT, description="a new token budget")


class RunQuery(_Strict):
    experiment: str | None = None
    sweep: str | None = None
    status: Literal["completed", "failed"] | None = None
    min_score: float | None = Field(None, ge=0, le=1)
    max_score: float | None = Field(None, ge=0, le=1)
    limit: int = Field(50, ge=1, le=10_000)
    after: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        pattern=CURSOR_PATTERN,
        description="the `next` of the previous page, as it came: the page after it, at the "
        "same cost at any depth; made for these filters only",
    )
    offset: int = Field(
        0,
        ge=0,
        le=MAX_SQL_INT,
        description="runs skipped after `after` (or from the newest); a deep offset costs more "
        "than a cursor",
    )


_Strategy = SweepSettings.model_fields["strategy"].annotation


class SweepBody(SweepOverrides, _Strict):
    """The sweep overrides as the API takes them: the strategy is one of the known names, and
    numbers stay within what the store can hold."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="SweepOverrides")

    strategy: _Strategy | None = None  # type: ignore[valid-type]
    samples: int | None = Field(None, ge=1, le=MAX_SQL_INT)
    repeats: int | None = Field(None, ge=1, le=1000, description="as the experiment's sweep:")
    max_tokens: int | None = Field(None, ge=1, le=MAX_SQL_INT)
    max_runs: int | None = Field(
        None,
        ge=1,
        le=MAX_SQL_INT,
        description="racing, guided and evolve: the most runs the sweep makes",
    )
    seed: int | None = Field(None, ge=-MAX_SQL_INT, le=MAX_SQL_INT)
    generations: int | None = Field(None, ge=1, le=50, description="evolve: rounds of proposals")
    proposals: int | None = Field(
        None, ge=1, le=20, description="evolve: new prompt templates per generation"
    )
    holdout: float | None = Field(
        None, ge=0, le=0.8, description="evolve: share of the items the proposer never sees"
    )
    proposer_model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="evolve: the model writing the templates (the file's proposer endpoint "
        "and params are kept)",
    )
    # `true`/`false` only: a lax 0 or "no" would be a silent guess at what was meant.
    no_cache: bool = Field(False, strict=True)


class ScoreBody(_Strict):
    value: float = Field(ge=0, le=1)
    scorer: str = Field("human", min_length=1)
    note: str | None = None


class LeaderboardQuery(_Strict):
    top: int = Field(10, ge=1, le=1000)
    sweep: str | None = Field(
        None, description="rank this sweep alone (default: every sweep of the latest version)"
    )


class ExportQuery(_Strict):
    sweep: str | None = Field(
        None, description="rank this sweep alone (default: every sweep of the latest version)"
    )
    top: int = Field(10, ge=1, le=1000, description="leaderboard rows in a report")


class WebhookBody(_Strict):
    url: str
    events: list[str] | None = Field(None, description="event types; none or empty: all")
    secret: str | None = Field(None, description="signs deliveries; stored encrypted")


class DeliveriesQuery(_Strict):
    limit: int = Field(50, ge=1, le=10_000)
