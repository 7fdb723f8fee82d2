"""Dry-run plans: what a sweep would do and cost, computed without spending a token.

Runs whose configs are known up front (every grid, random and racing run, the first batch of
guided sweeps) are walked through the cache stage by stage: a cached stage's answer gives the
next stage's exact prompt, so the count of cached calls is exact for them. Later batches of
adaptive strategies are counted as uncached.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..domain.experiment import API_PARAMETERS, ExperimentSpec, HumanScorerSpec, SweepSettings
from ..domain.records import SweepPlan
from ..domain.tokens import estimate_tokens
from .cache import CallCache, cache_key
from .endpoints import ResolvedEndpoint
from .evolve_proposer import DEFAULT_MAX_TOKENS, FAILURES_SHOWN, proposer_request
from .expected_runs import ExpectedRuns
from .guided import GuidedStrategy
from .race_forecast import expected_race_runs
from .racing import RacingStrategy
from .scorers import build_scorer
from .strategies import strategy_for
from .templates import PipelineTemplates

#: Output tokens assumed for a call without max_tokens.
DEFAULT_OUTPUT_TOKENS = 512
#: Tokens assumed for one judge or embedding call beyond the output it reads.
_SCORER_CALL_OVERHEAD = 120
_CHUNK = 2_000


async def plan_sweep(
    spec: ExperimentSpec,
    settings: SweepSettings,
    endpoint: ResolvedEndpoint,
    cache: CallCache,
    *,
    read_cache: bool = True,
) -> SweepPlan:
    items = spec.items
    strategy = strategy_for(spec, settings)
    n_configs, _ = strategy.plan_size()
    runs = ExpectedRuns(settings, len(items), strategy.plan_size()).total
    raced = isinstance(strategy, RacingStrategy | GuidedStrategy)
    scorer_calls = sum(
        1
        for scorer in spec.scorers
        if not isinstance(scorer, HumanScorerSpec) and build_scorer(scorer).spends_tokens
    )
    calls_per_run = len(spec.pipeline) + scorer_calls
    configs, known_items = strategy.known_runs()
    known = [
        (config, item, repeat)
        for config in configs
        for item in known_items
        for repeat in range(settings.repeats)
    ]
    walker = _Walker(spec, endpoint, cache, read_cache)
    cached_calls = tokens = 0
    cost = 0.0
    for start in range(0, len(known), _CHUNK):
        results = await asyncio.gather(
            *(walker.walk(*run) for run in known[start : start + _CHUNK])
        )
        for run_cached, run_tokens, run_cost in results:
            cached_calls += run_cached
            tokens += run_tokens
            cost += run_cost
    if len(known) > runs:
        # A race held to max_runs: which of its known runs it makes is not known; at most
        # `runs` of them, each costing what they cost on average.
        share = runs / len(known)
        tokens, cost = round(tokens * share), cost * share
        cached_calls = min(cached_calls, runs * calls_per_run)
    unknown_runs = max(0, runs - len(known))
    if unknown_runs:
        per_run = walker.uncached_run_tokens()
        tokens += unknown_runs * per_run
        cost += unknown_runs * walker.uncached_run_cost()
    tokens += runs * scorer_calls * (walker.output_estimate() + _SCORER_CALL_OVERHEAD)
    proposer_calls, proposer_tokens = _proposer_use(spec, settings, walker.output_estimate())
    # evolve: what runs after generation 0 depends on what the proposer writes.
    expected: int | None = None if proposer_calls else runs
    if raced:
        # Pure CPU for up to half a second: off the event loop, which keeps serving meanwhile.
        space = spec.parameter_space()
        expected = await asyncio.to_thread(expected_race_runs, space, settings, len(items))
    return SweepPlan(
        configs=n_configs,
        runs=runs,
        calls=runs * calls_per_run + proposer_calls,
        cached_calls=cached_calls,
        estimated_tokens=tokens + proposer_tokens,
        estimated_cost=round(cost, 6),
        upper_bound=strategy.adaptive,
        expected_runs=expected,
        expected_calls=None if expected is None else expected * calls_per_run + proposer_calls,
        proposer_calls=proposer_calls,
        proposer_tokens=proposer_tokens,
    )


def _proposer_use(spec: ExperimentSpec, settings: SweepSettings, output: int) -> tuple[int, int]:
    """evolve: (proposer calls, tokens): one call a generation, its prompt holding `top_k`
    templates and `FAILURES_SHOWN` outputs, its answer `proposals` templates (at most the
    request's max_tokens). Their answers depend on runs not made yet: none is counted cached."""
    if settings.strategy != "evolve":
        return 0, 0
    template = max(estimate_tokens(text) for text in spec.prompts.values())
    prompt = 400 + settings.top_k * template + FAILURES_SHOWN * output
    answer = min(
        int(proposer_request(settings).get("max_tokens") or DEFAULT_MAX_TOKENS),
        settings.proposals * (template + 60),
    )
    return settings.generations, settings.generations * (prompt + answer)


class _Walker:
    """Follows one run's stages through the cache while they are cached."""

    def __init__(
        self, spec: ExperimentSpec, endpoint: ResolvedEndpoint, cache: CallCache, read: bool
    ) -> None:
        self.spec = spec
        self.endpoint = endpoint
        self.cache = cache
        self.read = read
        self.templates = PipelineTemplates(spec)
        self.fixed = spec.fixed_parameters()
        self._uncached_runs = 0
        self._uncached_tokens = 0
        self._uncached_cost = 0.0

    async def walk(
        self, config: dict[str, Any], item_index: int, repeat: int
    ) -> tuple[int, int, float]:
        """(cached calls, estimated tokens, estimated cost) of one run's stages."""
        item = self.spec.items[item_index]
        params = {**self.fixed, **config}
        outputs: dict[str, str] = {}
        cached = tokens = 0
        cost = 0.0
        previous_output = 0
        for index, stage in enumerate(self.spec.pipeline):
            stage_params = {**params, **stage.params}
            request = {k: v for k, v in stage_params.items() if k in API_PARAMETERS}
            output_tokens = int(stage_params.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
            model = str(request.get("model", ""))
            if len(outputs) == index:  # every earlier stage was cached: the prompt is exact
                messages = self.templates.render_stage(index, stage_params, item, outputs)
                prompt_tokens = sum(estimate_tokens(m["content"]) for m in messages)
                key = cache_key(
                    base_url=self.endpoint.cache_identity,
                    model=model,
                    messages=messages,
                    params=request,
                    repeat=repeat,
                )
                hit = await self.cache.get(key) if self.read else None
                if hit is not None:
                    cached += 1
                    outputs[stage.name] = str(hit.value["text"])
                    continue
            else:
                prompt_tokens = previous_output + _SCORER_CALL_OVERHEAD
            tokens += prompt_tokens + output_tokens
            cost += self.endpoint.cost(model, prompt_tokens, output_tokens)
            previous_output = output_tokens
        if cached < len(self.spec.pipeline):
            self._uncached_runs += 1
            self._uncached_tokens += tokens
            self._uncached_cost += cost
        return cached, tokens, cost

    def uncached_run_tokens(self) -> int:
        if self._uncached_runs:
            return round(self._uncached_tokens / self._uncached_runs)
        return len(self.spec.pipeline) * (DEFAULT_OUTPUT_TOKENS + _SCORER_CALL_OVERHEAD)

    def uncached_run_cost(self) -> float:
        return self._uncached_cost / self._uncached_runs if self._uncached_runs else 0.0

    def output_estimate(self) -> int:
        last = self.spec.pipeline[-1]
        value = {**self.fixed, **last.params}.get("max_tokens")
        return int(value) if value else DEFAULT_OUTPUT_TOKENS
