"""Every run of a sweep, one flat dict per run, streamed: the rows of the csv and jsonl exports.

Runs come from the store in batches (`Database.fetch_batches`); each batch's final outputs and
scores are fetched with one `IN (...)` query each, so memory holds one batch whatever the size
of the sweep.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..store.database import Database
from .source import ExportJob

#: Runs per batch: bounds memory (a batch's outputs are held at once) and stays far below
#: SQLite's limit on `?` parameters in one statement.
BATCH_SIZE = 250

_RUNS = """
SELECT r.id, r.status, c.params, r.item_index, r.repeat, r.score, r.tokens_in, r.tokens_out,
       r.cost, r.latency_ms, r.cached_calls, r.calls, r.error, r.truncated
FROM runs r JOIN configs c ON c.id = r.config_id
WHERE r.sweep_id = ?
ORDER BY r.config_id, r.item_index, r.repeat
"""


async def scorer_names(job: ExportJob) -> list[str]:
    """Names of the sweep's scorers: the experiment's, in its order, then any other that
    scored a run (a person rating under another name), sorted."""
    declared = [job.spec.scorer_name(i) for i in range(len(job.spec.scorers))]
    rows = await job.db.fetchall(
        "SELECT DISTINCT s.scorer FROM scores s JOIN runs r ON r.id = s.run_id "
        "WHERE r.sweep_id = ?",
        (job.sweep.id,),
    )
    return declared + sorted({row["scorer"] for row in rows} - set(declared))


async def run_rows(job: ExportJob, scorers: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
    """Yield one dict per run, ordered by config, item and repeat, with these keys in order:
    run_id, status, config (a dict), item_index, repeat, input (the item's input), output (the
    last stage's, None when it did not run), `score.<name>` for each of `scorers` (None when
    absent; the mean when a person rated a run more than once), score, tokens_in, tokens_out,
    cost, latency_ms, cached_calls, calls, error, truncated (a stage's answer hit max_tokens)."""
    items = job.spec.items
    last_stage = len(job.spec.pipeline) - 1
    batches = job.db.fetch_batches(_RUNS, (job.sweep.id,), BATCH_SIZE)
    # aclosing: a consumer that stops early (a failed write) must still close the cursor.
    async with contextlib.aclosing(batches):
        async for batch in batches:
            ids = [row["id"] for row in batch]
            outputs = await _final_outputs(job.db, ids, last_stage)
            scores = await _scores(job.db, ids)
            for row in batch:
                run_scores = scores.get(row["id"], {})
                yield {
                    "run_id": row["id"],
                    "status": row["status"],
                    "config": json.loads(row["params"]),
                    "item_index": row["item_index"],
                    "repeat": row["repeat"],
                    "input": items[row["item_index"]].get("input"),
                    "output": outputs.get(row["id"]),
                    **{f"score.{name}": run_scores.get(name) for name in scorers},
                    "score": row["score"],
                    "tokens_in": row["tokens_in"],
                    "tokens_out": row["tokens_out"],
                    "cost": row["cost"],
                    "latency_ms": row["latency_ms"],
                    "cached_calls": row["cached_calls"],
                    "calls": row["calls"],
                    "error": row["error"],
                    "truncated": bool(row["truncated"]),
                }


async def _final_outputs(db: Database, ids: list[str], stage: int) -> dict[str, str | None]:
    rows = await db.fetchall(
        f"SELECT run_id, output FROM stage_results WHERE run_id IN ({_marks(ids)}) "
        "AND stage_index = ?",
        (*ids, stage),
    )
    return {row["run_id"]: row["output"] for row in rows}


async def _scores(db: Database, ids: list[str]) -> dict[str, dict[str, float | None]]:
    rows = await db.fetchall(
        f"SELECT run_id, scorer, avg(value) AS value FROM scores WHERE run_id IN ({_marks(ids)}) "
        "GROUP BY run_id, scorer",
        ids,
    )
    scores: dict[str, dict[str, float | None]] = {}
    for row in rows:
        scores.setdefault(row["run_id"], {})[row["scorer"]] = row["value"]
    return scores


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
