"""The `workers` table: the `promptlooper worker` processes on the store, each reporting
every few seconds what it works on (`promptlooper workers list` reads it)."""

from __future__ import annotations

from .database import Database, Row, Statement

REGISTER_WORKER = (
    "INSERT INTO workers (owner, name, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at"
)
HEARTBEAT = "UPDATE workers SET seen_at = ?, sweep_id = ?, runs_done = ? WHERE owner = ?"
REMOVE_WORKER = "DELETE FROM workers WHERE owner = ?"
PRUNE_WORKERS = "DELETE FROM workers WHERE seen_at < ?"
LIST_WORKERS = (
    "SELECT w.owner, w.name, w.host, w.pid, w.started_at, w.seen_at, w.sweep_id, "
    "w.runs_done, e.name AS experiment FROM workers w "
    "LEFT JOIN sweeps s ON s.id = w.sweep_id LEFT JOIN experiments e ON e.id = s.experiment_id "
    "ORDER BY w.name, w.owner"
)


def register_worker_statement(
    owner: str, name: str, host: str, pid: int, started_at: str, seen_at: float
) -> Statement:
    return REGISTER_WORKER, (owner, name, host, pid, started_at, seen_at)


def heartbeat_statement(
    owner: str, seen_at: float, sweep_id: str | None, runs_done: int
) -> Statement:
    return HEARTBEAT, (seen_at, sweep_id, runs_done, owner)


def remove_worker_statement(owner: str) -> Statement:
    return REMOVE_WORKER, (owner,)


def prune_workers_statement(older_than: float) -> Statement:
    return PRUNE_WORKERS, (older_than,)


async def list_workers(db: Database) -> list[Row]:
    """Every worker row, with the name of the experiment it works on."""
    return await db.fetchall(LIST_WORKERS)
