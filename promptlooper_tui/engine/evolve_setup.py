"""What a sweep runner needs for evolve: its prompts as far as proposed, and its proposer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain.experiment import ExperimentSpec, SweepSettings
from ..store import evolve as store
from ..store.database import Database
from .budget import TokenBudget
from .endpoints import EndpointPool
from .evolve import EvolveStrategy
from .evolve_parameter import prompt_parameter
from .evolve_proposer import Proposer
from .gateway import LLMGateway
from .strategies import strategy_for
from .strategy import Strategy
from .sweep_job import SweepJob


async def evolved_spec(
    db: Database, sweep_id: str, spec: ExperimentSpec, settings: SweepSettings
) -> ExperimentSpec:
    """`spec` with the prompts the sweep's proposer wrote so far (accepted ones, by name):
    every process running its runs renders them as the experiment's own."""
    if settings.strategy != "evolve":
        return spec
    accepted = {p.name: p.template for p in await store.proposals(db, sweep_id) if p.name}
    if not accepted:
        return spec
    return spec.model_copy(update={"prompts": {**spec.prompts, **accepted}})


def evolve_parameter(spec: ExperimentSpec, settings: SweepSettings) -> str | None:
    """The parameter an evolve sweep rewrites the prompts of; None for other strategies."""
    return prompt_parameter(spec) if settings.strategy == "evolve" else None


async def sweep_strategy(
    db: Database,
    job: SweepJob,
    pool: EndpointPool,
    gateway: LLMGateway,
    budget: TokenBudget,
    publish: Callable[..., None],
) -> Strategy:
    """The strategy of the sweep `job` runs. An evolve sweep's has its proposer, and its
    held-out items are stored (the leaderboard splits the scores by them)."""
    if job.settings.strategy != "evolve":
        return strategy_for(job.spec, job.settings)
    proposer = await make_proposer(
        db=db,
        sweep_id=job.sweep_id,
        spec=job.spec,
        settings=job.settings,
        pool=pool,
        gateway=gateway,
        budget=budget,
        publish=publish,
    )
    strategy = strategy_for(job.spec, job.settings, proposer)
    assert isinstance(strategy, EvolveStrategy)
    await store.set_holdout(db, job.sweep_id, strategy.held_out)
    return strategy


async def make_proposer(
    *,
    db: Database,
    sweep_id: str,
    spec: ExperimentSpec,
    settings: SweepSettings,
    pool: EndpointPool,
    gateway: LLMGateway,
    budget: TokenBudget,
    publish: Callable[..., None],
) -> Proposer:
    """The sweep's proposer, on the endpoint `sweep.proposer` names (the experiment's own by
    default); each generation it writes is announced as a `sweep.generation` event."""
    assert settings.proposer is not None
    ref = settings.proposer.endpoint if settings.proposer.endpoint is not None else spec.endpoint

    model = settings.proposer.model

    def announce(generation: int, proposals: list[store.Proposal], cached: bool) -> None:
        publish(
            "sweep.generation",
            generation=generation,
            model=model,
            cached=cached,
            proposals=_shown(proposals),
        )

    return Proposer(
        db=db,
        sweep_id=sweep_id,
        spec=spec,
        settings=settings,
        parameter=prompt_parameter(spec),
        gateway=gateway,
        endpoint=await pool.resolve(ref),
        budget=budget,
        announce=announce,
    )


def _shown(proposals: list[store.Proposal]) -> list[dict[str, Any]]:
    """What an event says of each proposal: no template text (it can be long), which the API
    and the inspector give."""
    return [
        {
            "name": p.name,
            "parents": list(p.parents),
            "rationale": p.rationale,
            "rejected": p.reason,
        }
        for p in proposals
    ]
