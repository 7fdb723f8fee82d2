"""Every run of a sweep, one flat dict per run, streamed: the rows of the csv and jsonl exports.

Runs come from the store in batches; each batch's final outputs and scores are fetched with
one `IN (...)` query each, so memory holds one batch whatever the size of the sweep.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..store import runs as stored_runs
from ..store import scores as stored_scores
from .source import ExportJob

#: Runs per batch: bounds memory (a batch's outputs are held at once) and stays far below
#: SQLite's limit on `?` parameters in one statement.
BATCH_SIZE = 250


async def scorer_names(job: ExportJob) -> list[str]:
    """Names of the sweep's scorers: the experiment's, in its order, then any other that
    scored a run (a person rating under another name), sorted."""
    declared = [job.spec.scorer_name(i) for i in range(len(job.spec.scorers))]
    used = await stored_scores.scorer_names_of_sweep(job.db, job.sweep.id)
    return declared + sorted(used - set(declared))


async def run_rows(job: ExportJob, scorers: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
    """Yield one dict per run, ordered by config, item and repeat, with these keys in order:
    run_id, status, config (a dict), item_index, repeat, input (the item's input), output (the
    last stage's, None when it did not run), `score.<name>` for each of `scorers` (None when
    absent; the mean when a person rated a run more than once), score, tokens_in, tokens_out,
    cost, latency_ms, cached_calls, calls, error, truncated (a stage's answer hit max_tokens)."""
    items = job.spec.items
    last_stage = len(job.spec.pipeline) - 1
    batches = stored_runs.export_batches(job.db, job.sweep.id, BATCH_SIZE)
    # aclosing: a consumer that stops early (a failed write) must still close the cursor.
    async with contextlib.aclosing(batches):
        async for batch in batches:
            ids = [row["id"] for row in batch]
            outputs = await stored_runs.stage_outputs(job.db, ids, last_stage)
            scores = await stored_scores.scorer_means(job.db, ids)
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
