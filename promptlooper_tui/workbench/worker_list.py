"""Who is working on the store: the `promptlooper worker` processes as their heartbeats left
them (`promptlooper workers list`, `GET /api/workers`, the MCP tool `list_workers`)."""

from __future__ import annotations

import time

from ..domain.records import WorkerRecord
from ..store import workers as stored_workers
from ..store.database import Database

#: A worker not seen for this long has died without leaving: it reports every 5 s
#: (`worker.HEARTBEAT_S`), so this is six missed heartbeats, enough to ride out a busy
#: machine or a slow store without calling a live worker gone.
GONE_AFTER_S = 30.0


async def list_workers(db: Database) -> list[WorkerRecord]:
    """Every worker row, by name; gone ones included (a worker's row goes when it leaves)."""
    now = time.time()
    records = []
    for row in await stored_workers.list_workers(db):
        # Another machine's clock may run ahead of ours: never "seen in the future".
        ago = max(0.0, now - row["seen_at"])
        records.append(
            WorkerRecord(
                owner=row["owner"],
                name=row["name"],
                host=row["host"],
                pid=row["pid"],
                started_at=row["started_at"],
                seen_at=row["seen_at"],
                seen_ago_s=round(ago, 1),
                gone=ago > GONE_AFTER_S,
                sweep_id=row["sweep_id"],
                experiment=row["experiment"],
                runs_done=row["runs_done"],
            )
        )
    return records
