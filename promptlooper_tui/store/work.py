"""Work units: the runs of a sweep's stored batches, claimed by whichever process runs them.

A sweep's coordinator adds a unit for every run of a batch still to do. Any process executing
the sweep (its coordinator, a `promptlooper worker` anywhere) claims units with a lease it
renews while it works; a finished run deletes its unit in the transaction that records it. A
unit whose lease ran out (its process died) is claimable again. On PostgreSQL a claim skips the
units other transactions are claiming at that moment (FOR UPDATE SKIP LOCKED); SQLite runs one
write at a time, so it needs no such clause.

Who coordinates a sweep is a lease too (`sweep_coordinators`): taken when free or expired,
renewed while held, and taken over at once from a process of this host that is gone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .database import Database, Row, Statement

#: A unit for a run not yet done: checked in the insert's own transaction, since another
#: process may record the run (and delete its unit) between a coordinator's look and this.
ADD_UNIT = (
    "INSERT INTO work_units (run_id, sweep_id, batch, config_id, item_index, repeat, retry) "
    "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM runs WHERE id = ? "
    "AND (status = 'completed' OR ? = 0)) ON CONFLICT (run_id) DO NOTHING"
)
_CLAIM = """
UPDATE work_units SET owner = ?, lease_expires = ?
WHERE run_id IN (
    SELECT w.run_id FROM work_units w JOIN sweeps s ON s.id = w.sweep_id
    WHERE w.sweep_id = ? AND s.status = 'running' AND (w.owner IS NULL OR w.lease_expires < ?)
    ORDER BY w.batch, w.item_index, w.run_id LIMIT ?{lock}
)
RETURNING run_id, batch, config_id, item_index, repeat, retry
"""
CLAIM_UNITS = {
    "sqlite": _CLAIM.format(lock=""),
    "postgresql": _CLAIM.format(lock=" FOR UPDATE OF w SKIP LOCKED"),
}
RENEW_UNITS = "UPDATE work_units SET lease_expires = ? WHERE owner = ?"
FINISH_UNIT = "DELETE FROM work_units WHERE run_id = ?"
RELEASE_UNIT = (
    "UPDATE work_units SET owner = NULL, lease_expires = NULL WHERE run_id = ? AND owner = ?"
)
UNITS_LEFT = "SELECT count(*) AS n FROM work_units WHERE sweep_id = ? AND batch <= ?"
#: (Per running sweep, the index on its units stops at the first free one: a scan of every
#: unit at each look grew with the units left.)
CLAIMABLE_SWEEPS = (
    "SELECT s.id AS sweep_id FROM sweeps s WHERE s.status = 'running' AND EXISTS "
    "(SELECT 1 FROM work_units w WHERE w.sweep_id = s.id "
    "AND (w.owner IS NULL OR w.lease_expires < ?))"
)
CLEAR_UNITS = "DELETE FROM work_units WHERE sweep_id = ?"
WORKERS_SEEN_SINCE = "SELECT count(*) AS n FROM workers WHERE seen_at >= ?"
SWEEP_CONFIGS = "SELECT id, key, params FROM configs WHERE sweep_id = ?"

TAKE_COORDINATION = (
    "INSERT INTO sweep_coordinators (sweep_id, owner, host, pid, expires_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sweep_id) DO UPDATE SET owner = excluded.owner, "
    "host = excluded.host, pid = excluded.pid, expires_at = excluded.expires_at "
    "WHERE sweep_coordinators.expires_at < ? OR sweep_coordinators.owner = excluded.owner "
    "RETURNING owner"
)
COORDINATOR = "SELECT owner, host, pid, expires_at FROM sweep_coordinators WHERE sweep_id = ?"
RENEW_COORDINATION = "UPDATE sweep_coordinators SET expires_at = ? WHERE owner = ?"
DROP_COORDINATOR = "DELETE FROM sweep_coordinators WHERE sweep_id = ? AND owner = ?"
ORPHANED_SWEEPS = (
    "SELECT s.id FROM sweeps s LEFT JOIN sweep_coordinators c ON c.sweep_id = s.id "
    "WHERE s.status = 'running' AND (c.owner IS NULL OR c.expires_at < ?) ORDER BY s.created_at"
)


def add_unit_statements(
    sweep_id: str, batch: int, units: Sequence[tuple[str, int, int, int, bool]]
) -> list[Statement]:
    """A unit for each (run_id, config_id, item_index, repeat, retry) not yet there."""
    return [
        (
            ADD_UNIT,
            (
                run_id,
                sweep_id,
                batch,
                config_id,
                item_index,
                repeat,
                int(retry),
                run_id,
                int(retry),
            ),
        )
        for run_id, config_id, item_index, repeat, retry in units
    ]


async def claim_units(
    db: Database, sweep_id: str, owner: str, *, now: float, lease_s: float, limit: int
) -> list[Row]:
    """Up to `limit` unclaimed (or expired) units of a running sweep, now `owner`'s."""
    params: tuple[Any, ...] = (owner, now + lease_s, sweep_id, now, limit)
    return await db.write_returning(CLAIM_UNITS[db.dialect], params)


def renew_units_statement(owner: str, lease_expires: float) -> Statement:
    return RENEW_UNITS, (lease_expires, owner)


def finish_unit_statement(run_id: str) -> Statement:
    return FINISH_UNIT, (run_id,)


def release_unit_statement(run_id: str, owner: str) -> Statement:
    return RELEASE_UNIT, (run_id, owner)


async def units_left(db: Database, sweep_id: str, up_to_batch: int) -> int:
    """Units still to finish in batches up to `up_to_batch`, whoever holds them."""
    row = await db.fetchone(UNITS_LEFT, (sweep_id, up_to_batch))
    return int(row["n"]) if row else 0


async def claimable_sweeps(db: Database, now: float) -> list[str]:
    """Running sweeps with units nobody holds."""
    return [row["sweep_id"] for row in await db.fetchall(CLAIMABLE_SWEEPS, (now,))]


async def workers_seen_since(db: Database, since: float) -> int:
    """How many `promptlooper worker` processes have reported since `since`."""
    row = await db.fetchone(WORKERS_SEEN_SINCE, (since,))
    return int(row["n"]) if row else 0


async def sweep_configs(db: Database, sweep_id: str) -> dict[int, tuple[str, dict[str, Any]]]:
    """Each config of the sweep by id: its key and parameters."""
    rows = await db.fetchall(SWEEP_CONFIGS, (sweep_id,))
    return {row["id"]: (row["key"], json.loads(row["params"])) for row in rows}


def clear_units_statement(sweep_id: str) -> Statement:
    return CLEAR_UNITS, (sweep_id,)


async def take_coordination(
    db: Database, sweep_id: str, owner: str, host: str, pid: int, *, now: float, lease_s: float
) -> bool:
    """Whether `owner` coordinates the sweep now (it was free, expired, or already its own)."""
    rows = await db.write_returning(
        TAKE_COORDINATION, (sweep_id, owner, host, pid, now + lease_s, now)
    )
    return bool(rows) and rows[0]["owner"] == owner


async def coordinator(db: Database, sweep_id: str) -> Row | None:
    return await db.fetchone(COORDINATOR, (sweep_id,))


def renew_coordination_statement(owner: str, expires_at: float) -> Statement:
    return RENEW_COORDINATION, (expires_at, owner)


def drop_coordinator_statement(sweep_id: str, owner: str) -> Statement:
    return DROP_COORDINATOR, (sweep_id, owner)


async def orphaned_sweeps(db: Database, now: float) -> list[str]:
    """Running sweeps nobody coordinates (none ever did here, or the lease ran out)."""
    return [row["id"] for row in await db.fetchall(ORPHANED_SWEEPS, (now,))]
