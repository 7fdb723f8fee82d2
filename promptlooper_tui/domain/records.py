"""What the Workbench returns: plain pydantic records every front-end serialises the same way."""

from __future__ import annotations

import math
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
    #: The leader's score on the experiment's leaderboard (its latest version, every sweep).
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


class RaceDecision(Record):
    """Where a config stands in a race: `alive` (still running, or ran to the end),
    `eliminated` (the leader was confidently better) or `equivalent` (confidently within the
    sweep's `min_effect` of the leader), decided after `at_n` shared items against the leader
    `against` (its config), with the test's p-value (corrected for the race's comparisons).
    evolve also stops a proposal `behind` the leader's mean on the same items once it has run
    a few (no claim of significance; p uncorrected)."""

    state: Literal["alive", "eliminated", "equivalent", "behind"]
    at_n: int | None = None
    p: float | None = None
    against: dict[str, Any] | None = None


class LeaderboardEntry(Record):
    rank: int
    config: dict[str, Any]
    score: float
    ci_low: float
    ci_high: float
    n: int
    #: Not distinguishable from the leader; true for the leader itself (kept for scripts
    #: written before `leader`).
    tied_with_leader: bool
    #: This is rank 1.
    leader: bool = False
    p_value: float | None = None
    tokens: int = 0
    #: None when a model it used has no price (see the board's `unpriced_models`).
    cost: float | None = 0.0
    p50_latency_ms: float | None = None
    dropped: bool = False
    #: In a racing sweep (ranked alone): where the config stands in the race; else None.
    decision: RaceDecision | None = None
    #: Ranked runs whose answer was cut at max_tokens.
    truncated: int = 0
    #: In an evolve sweep (ranked alone): the mean on the training items (what the proposer
    #: saw) and on the held-out ones (what the winner is judged on; None where the config did
    #: not run them), each with its item count.
    train_score: float | None = None
    train_n: int | None = None
    holdout_score: float | None = None
    holdout_n: int | None = None


class ScorerFailures(Record):
    """How often one automatic scorer failed: on `failed` of the `runs` it had to score."""

    failed: int
    runs: int


class RankedScope(Record):
    """What a leaderboard ranked: the experiment version, how many of its sweeps (or the one
    `sweep` asked for), and how many distinct (config, item, repeat) observations."""

    version: int
    sweeps: int
    runs: int
    sweep: str | None = None

    def describe(self) -> str:
        """`v3, 3 sweeps, 612 runs` (or `v3, sweep sw_..., 612 runs`)."""
        sweeps = (
            f"sweep {self.sweep}"
            if self.sweep
            else f"{self.sweeps} sweep{'' if self.sweeps == 1 else 's'}"
        )
        return f"v{self.version}, {sweeps}, {self.runs} run{'' if self.runs == 1 else 's'}"


class Leaderboard(Record):
    """A ranking and what it stands on: the scope (`ranked`), the configs it ranked in all
    (`configs`; `entries` holds the first `top`), the scorers its scores include, the
    automatic scorers that failed on some of its runs, and the models without a price."""

    entries: list[LeaderboardEntry]
    ranked: RankedScope
    configs: int = 0
    scorers: list[str] = Field(default_factory=list)
    scorer_failures: dict[str, ScorerFailures] = Field(default_factory=dict)
    unpriced_models: list[str] = Field(default_factory=list)


class RunCounts(Record):
    """A sweep's runs. `total` is its planned total; for strategies that plan as they go
    (racing, guided, evolve) until the sweep completes it is the current plan, an estimate
    (`total_is_estimate`)."""

    total: int
    completed: int
    failed: int
    cached: int
    total_is_estimate: bool = False


class CallCounts(Record):
    """LLM calls (stages, judges, embeddings), cache hits included."""

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

    def describe(self) -> str:
        """How many 429s came and, while calls wait, for how long more, as the CLI and the app
        show it; "" before the first 429."""
        if not self.responses_429:
            return ""
        text = f"{self.responses_429:,} × 429"
        if self.waiting_calls:
            left = math.ceil(self.waiting_s)
            wait = f"{left} s" if left < 120 else f"{left // 60} min {left % 60:02d} s"
            calls = f" ({self.waiting_calls} calls)" if self.waiting_calls > 1 else ""
            text += f", waiting {wait}{calls}"
        return text


class SweepSummary(Record):
    """The `run --json` object (DESIGN.md section 3)."""

    sweep_id: str
    experiment: str
    experiment_version: int
    status: str
    runs: RunCounts
    calls: CallCounts
    tokens: TokenCounts
    #: None when some model has no price (listed in `unpriced_models`): never a false 0.
    cost: float | None
    leaderboard: list[LeaderboardEntry]
    #: The calls of this invocation alone (`calls` counts the whole sweep, over resumes).
    calls_this_run: CallCounts | None = None
    unpriced_models: list[str] = Field(default_factory=list)
    scorer_failures: dict[str, ScorerFailures] = Field(default_factory=dict)
    #: The most frequent run error, when every finished run failed.
    most_common_error: str | None = None
    #: Configs on the sweep's leaderboard in all (`leaderboard` holds the first `top`).
    leaderboard_configs: int = 0
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
    #: The same planned total as the status object's `runs.total`.
    runs_total: int = 0
    total_is_estimate: bool = False
    tokens: int = 0
    cost: float | None = 0.0
    created_at: str
    finished_at: str | None = None


class ProposalRecord(Record):
    """A template evolve's proposer wrote: `accepted` (it runs as prompt `name`) or
    `rejected` (`reason`), with its parents (prompt names) and the proposer's rationale."""

    generation: int
    name: str | None
    template: str
    parents: list[str]
    rationale: str
    status: Literal["accepted", "rejected"]
    reason: str | None = None


class GenerationRecord(Record):
    """One generation's proposer call: its model, tokens (whether from the cache), why its
    answer could not be read (None when it could), and what it proposed."""

    generation: int
    model: str
    tokens: int
    cached: bool
    error: str | None = None
    created_at: str
    proposals: list[ProposalRecord]


class Evolution(Record):
    """An evolve sweep's lineage: the parameter it rewrites the prompts of, the experiment's
    own prompts (generation 0), the held-out items, and each generation since."""

    sweep_id: str
    parameter: str
    prompts: dict[str, str]
    holdout_items: list[int]
    generations: list[GenerationRecord]

    def template(self, name: str) -> str | None:
        """The template of prompt `name`, the experiment's own or a proposal's."""
        if name in self.prompts:
            return self.prompts[name]
        for generation in self.generations:
            for proposal in generation.proposals:
                if proposal.name == name:
                    return proposal.template
        return None

    def proposal(self, name: str) -> ProposalRecord | None:
        for generation in self.generations:
            for proposal in generation.proposals:
                if proposal.name == name:
                    return proposal
        return None


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
    #: When a later rating by the same person replaced this one (it no longer counts).
    superseded_at: str | None = None


class RunDetail(RunRecord):
    item: dict[str, Any]
    stages: list[StageRecord]
    #: The scores that count, one per scorer (a person's latest rating).
    scores: list[ScoreRecord]
    #: Earlier ratings replaced by a later one of the same person, oldest first.
    superseded_scores: list[ScoreRecord] = Field(default_factory=list)


class RunPage(Record):
    items: list[RunRecord]
    total: int
    next: str | None = Field(
        None,
        description="a cursor for the page after this one (pass it as `after`); null on the "
        "last page",
    )


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
    #: The runs and calls the sweep can be expected to make: for a race, a forecast
    #: (`engine.race_forecast`: None when too large to simulate); for the others, `runs`
    #: and `calls` (guided runs `samples` configs on every item).
    expected_runs: int | None = None
    expected_calls: int | None = None
    #: evolve: the proposer's calls (one a generation), included in `calls`, and the
    #: tokens assumed for them, included in `estimated_tokens`.
    proposer_calls: int = 0
    proposer_tokens: int = 0


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


class WorkerRecord(Record):
    """A `promptlooper worker` process on the store, as its last heartbeat left it."""

    #: Who it is to the other processes: host:pid:nonce.
    owner: str
    name: str
    host: str
    pid: int
    started_at: str
    #: Its last heartbeat (epoch seconds, its own clock) and how long ago that was.
    seen_at: float
    seen_ago_s: float
    #: Not seen for so long that it must have died without leaving (its work returns to the
    #: pool as its leases run out).
    gone: bool
    #: What it works on now (None: idle), and the runs it has finished since it started.
    sweep_id: str | None
    experiment: str | None
    runs_done: int
