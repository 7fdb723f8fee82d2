"""What an evolve sweep keeps beyond its runs: the items it holds out, each generation's
proposer call, and every proposed template with its lineage (schema 11)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database, Statement
from .sweep_progress import ADD_RUN_USAGE

SET_HOLDOUT = "UPDATE sweeps SET holdout = ? WHERE id = ?"
HOLDOUT = "SELECT holdout FROM sweeps WHERE id = ?"
ADD_GENERATION = (
    "INSERT INTO evolve_generations (sweep_id, generation, model, tokens_in, tokens_out, "
    "paid_tokens, cached, error, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
ADD_PROPOSAL = (
    "INSERT INTO prompt_proposals (sweep_id, generation, position, name, template, parents, "
    "rationale, status, reason) VALUES (?,?,?,?,?,?,?,?,?)"
)
GENERATIONS = (
    "SELECT generation, model, tokens_in, tokens_out, paid_tokens, cached, error, created_at "
    "FROM evolve_generations WHERE sweep_id = ? ORDER BY generation"
)
PROPOSALS = (
    "SELECT generation, position, name, template, parents, rationale, status, reason "
    "FROM prompt_proposals WHERE sweep_id = ? ORDER BY generation, position"
)
# A config's lowest-scored runs on the given items, with the last stage's output.
LOWEST_RUNS = (
    "SELECT r.id, r.item_index, r.score, (SELECT s.output FROM stage_results s "
    "WHERE s.run_id = r.id ORDER BY s.stage_index DESC LIMIT 1) AS output "
    "FROM runs r JOIN configs c ON c.id = r.config_id "
    "WHERE r.sweep_id = ? AND c.sweep_id = ? AND c.key = ? AND r.status = 'completed' "
    "AND r.score IS NOT NULL AND r.item_index IN ({marks}) "
    "ORDER BY r.score, r.item_index, r.repeat LIMIT ?"
)
RUN_SCORES = (
    "SELECT run_id, scorer, value, error FROM scores WHERE kind = 'auto' "
    "AND run_id IN ({marks}) ORDER BY id"
)


@dataclass(frozen=True)
class Proposal:
    """One template a proposer wrote: accepted (runs under `name`) or rejected (`reason`)."""

    generation: int
    position: int
    template: str
    parents: tuple[str, ...]
    rationale: str
    name: str | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.name is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "name": self.name,
            "template": self.template,
            "parents": list(self.parents),
            "rationale": self.rationale,
            "status": "accepted" if self.accepted else "rejected",
            "reason": self.reason,
        }


@dataclass(frozen=True)
class GenerationCall:
    """What one generation's proposer call cost, and why its answer could not be read."""

    generation: int
    model: str
    tokens_in: int
    tokens_out: int
    paid_in: int
    paid_out: int
    cost: float
    cached: bool
    error: str | None = None


@dataclass(frozen=True)
class Failure:
    """One of a config's lowest-scored runs, as the proposer is shown it."""

    item_index: int
    score: float
    output: str
    scores: tuple[tuple[str, float | None], ...]


async def set_holdout(db: Database, sweep_id: str, items: Sequence[int]) -> None:
    await db.execute(SET_HOLDOUT, (json.dumps(list(items)), sweep_id))


async def holdout(db: Database, sweep_id: str) -> list[int] | None:
    """The items an evolve sweep holds out; None for any other sweep."""
    row = await db.fetchone(HOLDOUT, (sweep_id,))
    return None if row is None or row["holdout"] is None else list(json.loads(row["holdout"]))


def generation_statements(
    sweep_id: str, call: GenerationCall, proposals: Sequence[Proposal], now: str
) -> list[Statement]:
    """A generation's call and proposals, and its paid tokens added to the sweep's usage (the
    token budget and a resumed sweep count them), in one write."""
    statements: list[Statement] = [
        (
            ADD_GENERATION,
            (
                sweep_id,
                call.generation,
                call.model,
                call.tokens_in,
                call.tokens_out,
                call.paid_in + call.paid_out,
                int(call.cached),
                call.error,
                now,
            ),
        ),
        (
            ADD_RUN_USAGE,
            (call.paid_in, call.paid_out, call.cost, 0, 1, int(call.cached), now, sweep_id),
        ),
    ]
    statements += [
        (
            ADD_PROPOSAL,
            (
                sweep_id,
                p.generation,
                p.position,
                p.name,
                p.template,
                json.dumps(list(p.parents)),
                p.rationale,
                "accepted" if p.accepted else "rejected",
                p.reason,
            ),
        )
        for p in proposals
    ]
    return statements


async def generations(db: Database, sweep_id: str) -> dict[int, dict[str, Any]]:
    """Each generation's proposer call by number: model, tokens, cached, error, created_at."""
    return {row["generation"]: dict(row) for row in await db.fetchall(GENERATIONS, (sweep_id,))}


async def proposals(db: Database, sweep_id: str) -> list[Proposal]:
    """Every proposal of the sweep, by generation and position."""
    return [
        Proposal(
            generation=row["generation"],
            position=row["position"],
            template=row["template"],
            parents=tuple(json.loads(row["parents"])),
            rationale=row["rationale"],
            name=row["name"],
            reason=row["reason"],
        )
        for row in await db.fetchall(PROPOSALS, (sweep_id,))
    ]


async def lowest_runs(
    db: Database, sweep_id: str, key: str, items: Sequence[int], limit: int
) -> list[Failure]:
    """The `limit` lowest-scored completed runs of config `key` among `items`."""
    if not items or limit <= 0:
        return []
    sql = LOWEST_RUNS.format(marks=",".join("?" * len(items)))
    rows = await db.fetchall(sql, (sweep_id, sweep_id, key, *items, limit))
    if not rows:
        return []
    run_ids = [row["id"] for row in rows]
    by_run: dict[str, list[tuple[str, float | None]]] = {run_id: [] for run_id in run_ids}
    marks = ",".join("?" * len(run_ids))
    for row in await db.fetchall(RUN_SCORES.format(marks=marks), tuple(run_ids)):
        by_run[row["run_id"]].append((row["scorer"], row["value"]))
    return [
        Failure(
            row["item_index"], float(row["score"]), row["output"] or "", tuple(by_run[row["id"]])
        )
        for row in rows
    ]
