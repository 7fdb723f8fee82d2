"""An evolve sweep's lineage, read from the store: what each generation proposed, and why."""

from __future__ import annotations

from ..domain.errors import BadInput
from ..domain.records import Evolution, GenerationRecord, ProposalRecord
from ..engine.evolve_parameter import prompt_parameter
from ..store import evolve as stored_evolve
from ..store.database import Database
from .lookups import load_spec
from .sweeps import Sweeps


async def evolution(db: Database, sweeps: Sweeps, sweep_ref: str) -> Evolution:
    """The lineage of evolve sweep `sweep_ref`; NotFound for an unknown sweep, BadInput for
    one of another strategy."""
    sweep = await sweeps.get_sweep(sweep_ref)
    if sweep.strategy != "evolve":
        raise BadInput(f"sweep {sweep.id} is a {sweep.strategy} sweep, not an evolve sweep")
    spec = await load_spec(db, sweep.experiment_id, sweep.experiment_version)
    calls = await stored_evolve.generations(db, sweep.id)
    proposals = await stored_evolve.proposals(db, sweep.id)
    return Evolution(
        sweep_id=sweep.id,
        parameter=prompt_parameter(spec),
        prompts=dict(spec.prompts),
        holdout_items=await stored_evolve.holdout(db, sweep.id) or [],
        generations=[
            GenerationRecord(
                generation=number,
                model=call["model"],
                tokens=call["tokens_in"] + call["tokens_out"],
                cached=bool(call["cached"]),
                error=call["error"],
                created_at=call["created_at"],
                proposals=[
                    ProposalRecord(**p.as_dict()) for p in proposals if p.generation == number
                ],
            )
            for number, call in calls.items()
        ],
    )
