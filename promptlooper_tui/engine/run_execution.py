"""Executing one run: a (config, item, repeat) through every pipeline stage in order, then its
scorers. What it produced is returned for the sweep to store and announce; nothing here writes.

A stage whose template cannot render, or whose call fails for good, fails the run (the stages
after it do not run and no scorer sees it); a scorer that fails leaves its score out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from ..domain.errors import EndpointError, PromptLooperError, TemplateLimitExceeded
from ..domain.experiment import API_PARAMETERS, ExperimentSpec, HumanScorerSpec
from ..domain.tokens import estimate_tokens
from ..store.sweep_progress import ScoreRow, StageRow
from .cache import CachedValue
from .endpoints import EndpointPool, ResolvedEndpoint
from .gateway import LLMGateway, RunLLM, RunMeter
from .scorers import ScoreContext, Scorer, ScorerError, build_scorer
from .search_space import config_key
from .templates import PipelineTemplates

if TYPE_CHECKING:
    from .strategy import Batch
    from .sweep_job import SweepJob

log = logging.getLogger(__name__)

#: What rendering one run's templates may raise: that run fails, the sweep goes on.
_RENDER_ERRORS = (
    TemplateError,
    TemplateLimitExceeded,
    LookupError,
    TypeError,
    ValueError,
    ArithmeticError,
)
#: Tokens assumed for a judge or embedding call beyond the output it reads.
_SCORER_CALL_ESTIMATE = 120
#: Output tokens assumed for a stage without max_tokens when estimating budget use.
_DEFAULT_OUTPUT_ESTIMATE = 512
#: Where a stage row keeps its finish reason (see `StageRow`).
_FINISH_REASON = 9
#: Made once: `json.dumps` with options builds an encoder on every call.
_TEXT_JSON = json.JSONEncoder(ensure_ascii=False)


def run_id_for(sweep_id: str, key: str, item_index: int, repeat: int) -> str:
    """Deterministic, so a resumed sweep recognises the runs it already finished."""
    digest = hashlib.sha256(f"{sweep_id}:{key}:{item_index}:{repeat}".encode()).hexdigest()
    return "run_" + digest[:16]


@dataclass(slots=True)
class PlannedRun:
    """One run a batch still has to do."""

    config: dict[str, Any]
    key: str
    config_id: int
    item_index: int
    repeat: int
    #: A failed run being retried: its old stage results and scores are replaced.
    retry: bool = False


#: The runs a sweep has finished: status by (config key, item_index, repeat).
Finished = dict[tuple[str, int, int], str]


def pending_runs(
    batch: Batch, ids: Mapping[str, int], done: Finished, job: SweepJob
) -> Iterator[PlannedRun]:
    """The runs of `batch` (x the job's repeats) still to do: not completed, and not failed
    unless the job retries failed runs (their old results are then replaced)."""
    for config in batch.configs:
        key = config_key(config)
        for item_index in batch.items:
            for repeat in range(job.settings.repeats):
                status = done.get((key, item_index, repeat))
                if status == "completed" or (status == "failed" and not job.retry_failed):
                    continue
                yield PlannedRun(
                    config, key, ids[key], item_index, repeat, retry=status == "failed"
                )


@dataclass(slots=True)
class ExecutedRun:
    """What one run produced: its outcome, what it used, its stages' rows and its scores."""

    status: str
    error: str | None
    score: float | None
    truncated: bool
    latency_ms: float
    meter: RunMeter
    stages: list[StageRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)


class RunExecutor:
    """Runs the experiment's pipeline and scorers for one planned run at a time."""

    def __init__(
        self,
        spec: ExperimentSpec,
        gateway: LLMGateway,
        pool: EndpointPool,
        endpoint: ResolvedEndpoint,
    ) -> None:
        self._spec = spec
        self._gateway = gateway
        self._pool = pool
        self._endpoint = endpoint
        self._templates = PipelineTemplates(spec)
        self._fixed = spec.fixed_parameters()
        self._items = spec.items
        self._scorers: list[tuple[str, Scorer]] = [
            (spec.scorer_name(i), build_scorer(s))
            for i, s in enumerate(spec.scorers)
            if not isinstance(s, HumanScorerSpec)
        ]

    def prior_estimate(self, planned: PlannedRun) -> int:
        """Tokens the run may use, before any run has been paid for: its first prompt, each
        stage's max_tokens, and a judge call's worth per scorer that spends tokens."""
        params = {**self._fixed, **planned.config}
        item = self._items[planned.item_index]
        pipeline = self._spec.pipeline
        try:
            first = self._templates.render_stage(0, {**params, **pipeline[0].params}, item, {})
        except _RENDER_ERRORS:
            first = []
        prompt = sum(estimate_tokens(m["content"]) for m in first)
        total = output = 0
        for stage in pipeline:
            output = int({**params, **stage.params}.get("max_tokens") or _DEFAULT_OUTPUT_ESTIMATE)
            total += prompt + output
            prompt = output + prompt // 2
        # Judge and embedding calls read the final output (plus a prompt of their own).
        paid_scorers = sum(1 for _, scorer in self._scorers if scorer.spends_tokens)
        return total + paid_scorers * (output + _SCORER_CALL_ESTIMATE)

    async def execute(self, planned: PlannedRun) -> ExecutedRun:
        """Run the stages in order, then the scorers (unless a stage failed)."""
        item = self._items[planned.item_index]
        params = {**self._fixed, **planned.config}
        meter = RunMeter()
        stages: list[StageRow] = []
        outputs: dict[str, str] = {}
        error: str | None = None
        for index, stage in enumerate(self._spec.pipeline):
            stage_params = {**params, **stage.params}
            request = {k: v for k, v in stage_params.items() if k in API_PARAMETERS}
            messages: list[dict[str, str]] = []
            try:
                messages = self._templates.render_stage(index, stage_params, item, outputs)
                _, entry, hit = await self._gateway.chat(
                    self._endpoint, messages, request, planned.repeat, meter
                )
            except _RENDER_ERRORS as exc:
                error = f"stage {stage.name}: template error: {exc}"
            except EndpointError as exc:
                error = f"stage {stage.name}: {exc}"
            if error is not None:
                stages.append(_stage_row(index, stage.name, messages, None, None, False, error))
                break
            text = str(entry.value["text"])
            outputs[stage.name] = text
            stages.append(_stage_row(index, stage.name, messages, text, entry, hit, None))
        truncated = any(stage[_FINISH_REASON] == "length" for stage in stages)
        scores: list[ScoreRow] = []
        if error is None:
            scores = await self._score(item, outputs, params, planned.repeat, meter)
        return ExecutedRun(
            status="failed" if error else "completed",
            error=error,
            score=_weighted(scores),
            truncated=truncated,
            latency_ms=round(meter.latency_ms, 2),
            meter=meter,
            stages=stages,
            scores=scores,
        )

    async def _score(
        self,
        item: Mapping[str, Any],
        outputs: dict[str, str],
        params: dict[str, Any],
        repeat: int,
        meter: RunMeter,
    ) -> list[ScoreRow]:
        final = outputs[self._spec.pipeline[-1].name]
        context = ScoreContext(
            item=item,
            params=params,
            stage_outputs=outputs,
            llm=RunLLM(self._gateway, self._pool, self._endpoint, repeat, meter),
        )
        results: list[ScoreRow] = []
        for name, scorer in self._scorers:
            try:
                value = float(await scorer.score(item.get("input"), final, context))
                results.append((name, min(1.0, max(0.0, value)), scorer.weight, None))
            except (ScorerError, PromptLooperError) as exc:
                results.append((name, None, scorer.weight, str(exc)))
            except Exception as exc:
                log.warning("scorer %s failed", name, exc_info=True)
                results.append((name, None, scorer.weight, f"scorer crashed: {describe(exc)}"))
        return results


def describe(exc: BaseException) -> str:
    """An exception in a few words: its type, and its message if it has one."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _stage_row(
    index: int,
    name: str,
    messages: list[dict[str, str]],
    output: str | None,
    entry: CachedValue | None,
    hit: bool,
    error: str | None,
) -> StageRow:
    messages_json = _TEXT_JSON.encode(messages)
    if entry is None:
        return (index, name, messages_json, output, 0, 0, 0.0, int(hit), error, None, None)
    value = entry.value
    warnings = value.get("warnings")
    return (
        index,
        name,
        messages_json,
        output,
        entry.tokens_in,
        entry.tokens_out,
        float(value.get("latency_ms", 0.0)),
        int(hit),
        error,
        value.get("finish_reason"),
        _TEXT_JSON.encode(warnings) if warnings else None,
    )


def _weighted(scores: list[ScoreRow]) -> float | None:
    """Weighted mean of the scores that were produced; None when no scorer produced one."""
    total = weight_sum = 0.0
    for _, value, weight, _ in scores:
        if value is not None:
            total += value * weight
            weight_sum += weight
    return round(total / weight_sum, 6) if weight_sum else None
