"""What the Workbench returns: plain pydantic records every front-end serialises the same way."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SweepState = Literal[
    "running", "paused", "stopped", "completed", "budget_exhausted", "failed", "interrupted"
]
#: States from which `resume` can finish a sweep.
RESUMABLE = frozenset({"paused", "stopped", "budget_exhausted", "interrupted", "failed"})


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class EndpointRecord(Record):
    """A stored endpoint. `base_url` is as it may be shown: a password in it reads ***.

    The limits bound one request: its body size (MiB), its total time and its longest
    silence (seconds); `rate_limit_wait_s` is how long a call waits on 429s before giving up.
    """

    name: str
    base_url: str
    api_key_env: str | None = None
    has_api_key: bool = False
    pricing: dict[str, tuple[float, float]] = Field(default_factory=dict)
    created_at: str = ""
    max_response_mb: float = 8.0
    deadline_s: float = 300.0
    idle_timeout_s: float = 60.0
    rate_limit_wait_s: float = 600.0


class ConnectionResult(Record):
    name: str
    ok: bool
    latency_ms: float | None
    models: list[str]
    error: str | None


class ExperimentRecord(Record):
    id: str
    name: str
    version: int
    description: str = ""
    created_at: str
    versions: int = 1
    latest_sweep_id: str | None = None
    latest_sweep_status: str | None = None
    best_score: float | None = None
    runs: int = 0
    tokens: int = 0


class ExperimentDetail(ExperimentRecord):
    spec_yaml: str
    spec: dict[str, Any]
    #: The file this version was imported from (absolute), if any: relative dataset files
    #: in its text resolve against its folder.
    source_file: str | None = None


class ImportResult(Record):
    id: str
    name: str
    version: int
    created: bool


class LeaderboardEntry(Record):
    rank: int
    config: dict[str, Any]
    score: float
    ci_low: float
    ci_high: float
    n: int
    tied_with_leader: bool
    p_value: float | None = None
    tokens: int = 0
    cost: float = 0.0
    p50_latency_ms: float | None = None
    dropped: bool = False


class RunCounts(Record):
    total: int
    completed: int
    failed: int
    cached: int


class CallCounts(Record):
    requested: int
    cache_hits: int


class TokenCounts(Record):
    input: int
    output: int


class RateLimitCounts(Record):
    """What an endpoint's rate limits are doing to a sweep: the 429 answers it has met (over
    all its resumes), and right now the calls waiting before they try again and how long until
    the last of them does (seconds)."""

    responses_429: int = 0
    waiting_s: float = 0.0
    waiting_calls: int = 0


class SweepSummary(Record):
    """The `run --json` object (DESIGN.md section 3)."""

    sweep_id: str
    experiment: str
    experiment_version: int
    status: str
    runs: RunCounts
    calls: CallCounts
    tokens: TokenCounts
    cost: float
    leaderboard: list[LeaderboardEntry]
    rate_limits: RateLimitCounts = Field(default_factory=RateLimitCounts)


class SweepRecord(Record):
    id: str
    experiment_id: str
    experiment: str
    experiment_version: int
    strategy: str
    status: str
    resumable: bool
    error: str | None = None
    runs_completed: int = 0
    runs_failed: int = 0
    planned_runs: int = 0
    tokens: int = 0
    cost: float = 0.0
    created_at: str
    finished_at: str | None = None


class RunRecord(Record):
    id: str
    sweep_id: str
    experiment_id: str
    config: dict[str, Any]
    item_index: int
    repeat: int
    status: str
    score: float | None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    calls: int = 0
    cached_calls: int = 0
    finished_at: str
    #: A stage's answer ended at max_tokens (finish_reason "length"): the output is cut.
    truncated: bool = False


class StageRecord(Record):
    index: int
    name: str
    messages: list[dict[str, str]]
    output: str | None
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cached: bool
    error: str | None = None
    #: Why the model stopped, as the endpoint said ("stop", "length", ...); None if unknown.
    finish_reason: str | None = None
    #: What the endpoint sent that was ignored (e.g. a negative token count).
    warnings: list[str] = Field(default_factory=list)


class ScoreRecord(Record):
    scorer: str
    kind: Literal["auto", "human"]
    value: float | None
    weight: float
    error: str | None = None
    note: str | None = None
    created_at: str


class RunDetail(RunRecord):
    item: dict[str, Any]
    stages: list[StageRecord]
    scores: list[ScoreRecord]


class RunPage(Record):
    items: list[RunRecord]
    total: int


class SweepPlan(Record):
    """The `--dry-run` plan: what a sweep would do, spending nothing."""

    configs: int
    runs: int
    calls: int
    cached_calls: int
    estimated_tokens: int
    estimated_cost: float
    #: Runs, calls, tokens and cost are the most the sweep may do: racing drops configs as
    #: it goes, guided proposes them from the scores so far. Tokens always assume each call
    #: writes its max_tokens.
    upper_bound: bool = False


class CacheStats(Record):
    hits: int
    misses: int
    hit_rate: float
    entries: int
    bytes: int


class WebhookRecord(Record):
    """A registered webhook; `events` empty means every event type. The secret never leaves."""

    id: str
    url: str
    events: list[str]
    has_secret: bool
    created_at: str


class DeliveryRecord(Record):
    """One delivery attempt of one event to one webhook."""

    id: int
    webhook_id: str
    event_seq: int
    event_type: str
    attempt: int
    status_code: int | None
    latency_ms: float
    error: str | None
    delivered: bool
    created_at: str
