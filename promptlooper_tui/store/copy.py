"""Copying a whole history from one database into another (`promptlooper db copy`): a personal
SQLite file into a team's PostgreSQL store, or back. Written against the `Database` interface
alone, so either backend can be either side.

The target must hold no data; it is migrated first, then filled table by table, parents before
children, in units of a few hundred rows. Rows keep their ids (generated ones included) and
their bytes (API keys stay encrypted with the secret they were encrypted with); the target
gets the check value of that secret (`team_secret.py`), which must be the copier's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..domain.errors import Conflict, NotFound, PromptLooperError, StorageError
from .connect import open_database
from .database import Database, Row, Statement
from .location import DatabaseLocation
from .meta import replace_check_statement

#: Rows read and written together.
_UNIT_ROWS = 500


@dataclass(frozen=True)
class CopiedTable:
    name: str
    #: The order its rows are read in: its primary key, or the order they were made in where
    #: listings tie-break on it. On a SQLite source, a table with a rowid is read in rowid
    #: order instead: the order its rows were written, which listings tie-break on there.
    order: str
    rowid: bool = True
    #: What makes a row data (the schema itself creates rows that are not).
    holds_data: str = ""
    #: The schema creates its rows: the copy replaces them rather than adding to them.
    seeded: bool = False


#: What a copy carries, parents before children (foreign keys are checked as rows arrive).
COPIED_TABLES = (
    CopiedTable("endpoints", "name"),
    CopiedTable("experiments", "id"),
    CopiedTable("experiment_versions", "created_at, experiment_id, version"),
    CopiedTable("sweeps", "created_at, id"),
    CopiedTable("sweep_batches", "sweep_id, number", rowid=False),
    CopiedTable("configs", "id"),
    CopiedTable("runs", "id"),
    CopiedTable("stage_results", "run_id, stage_index", rowid=False),
    CopiedTable("scores", "id"),
    CopiedTable("cache", "key", rowid=False),
    CopiedTable("cache_counters", "id", holds_data="hits <> 0 OR misses <> 0", seeded=True),
    CopiedTable("webhooks", "id"),
    CopiedTable("webhook_deliveries", "id"),
    CopiedTable("work_units", "run_id", rowid=False),
    CopiedTable("evolve_generations", "sweep_id, generation", rowid=False),
    CopiedTable("prompt_proposals", "sweep_id, generation, position", rowid=False),
)

#: What a copy leaves behind on purpose, and why.
SKIPPED_TABLES = {
    "cache_claims": "claims of LLM calls in flight: they belong to the source's live processes",
    "schema_version": "each database keeps its own, written by its migrations",
    "events": "a relay of live events between the source's processes, read within seconds",
    "sweep_coordinators": "which live process coordinates which sweep, on the source",
    "workers": "the worker processes on the source",
    "store_meta": "the target's check value is written for the copier's secret",
}


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    #: The schema version both databases are at.
    schema_version: int
    #: The target's schema version before the copy migrated it (0: it was new).
    target_migrated_from: int
    #: Rows copied, by table, in the order they were copied.
    rows: dict[str, int]


async def copy_database(
    source: DatabaseLocation,
    target: DatabaseLocation,
    secret_check: Callable[[Database], Awaitable[str | None]],
) -> CopyReport:
    """Copy every table of `source` into `target`, which must hold no data. `secret_check`:
    what the copier's secret makes of the source's API keys and webhook secrets, the check
    value the target must carry (None: the source holds none); it raises where that secret
    does not open them (`team_secret.copier_check`).

    Conflict (bad input) when both name one database, when a sweep is running in the source,
    or when the target holds data; StorageError when a write fails part way, saying that the
    target holds part of the copy."""
    if source.url == target.url:
        raise Conflict(f"--from and --to both name {source.shown}: copy to another database")
    if source.path is not None and not source.path.is_file():
        raise NotFound(f"--from: there is no database file {source.shown}")
    from_db = await open_database(source)
    try:
        await _refuse_running_sweeps(from_db)
        check = await secret_check(from_db)
        to_db = await open_database(target)
        try:
            await _refuse_data(to_db)
            if check is not None:
                # First: a copied key is never on the target without its check value.
                await to_db.write([replace_check_statement(check)])
            rows: dict[str, int] = {}
            for table in COPIED_TABLES:
                rowid = source.kind == "sqlite" and table.rowid
                order = "rowid" if rowid else table.order
                rows[table.name] = await _copy_table(from_db, to_db, table, order)
            await to_db.reset_identities()
            return CopyReport(
                source=from_db.shown,
                target=to_db.shown,
                schema_version=to_db.schema_version,
                target_migrated_from=to_db.migrated_from,
                rows=rows,
            )
        finally:
            await to_db.close()
    finally:
        await from_db.close()


async def _refuse_running_sweeps(source: Database) -> None:
    running = await source.fetchall(
        "SELECT s.id, e.name FROM sweeps s JOIN experiments e ON e.id = s.experiment_id "
        "WHERE s.status = 'running' ORDER BY s.created_at"
    )
    if running:
        named = ", ".join(f"{row['id']} ({row['name']})" for row in running)
        raise Conflict(
            f"{source.shown} has running sweeps: {named}. Stop them or let them finish "
            "before copying (a sweep whose process is gone: resume it to the end, or copy "
            "from a database no process uses)"
        )


async def _refuse_data(target: Database) -> None:
    for table in COPIED_TABLES:
        where = f" WHERE {table.holds_data}" if table.holds_data else ""
        if await target.fetchone(f"SELECT 1 FROM {table.name}{where} LIMIT 1") is not None:
            raise Conflict(
                f"{target.shown} already holds data (table {table.name} has rows): copy into "
                "a new, empty database; nothing was written"
            )


async def _copy_table(source: Database, target: Database, table: CopiedTable, order: str) -> int:
    copied = 0
    written: asyncio.Future[None] | None = None
    try:
        async for batch in source.fetch_batches(
            f"SELECT * FROM {table.name} ORDER BY {order}", size=_UNIT_ROWS
        ):
            unit = _inserts(table.name, batch)
            if table.seeded and copied == 0:
                unit.insert(0, (f"DELETE FROM {table.name}", ()))
            # Read the next rows while these are written; at most one unit waits.
            if written is not None:
                await written
            written = target.submit(unit)
            copied += len(batch)
        if written is not None:
            await written
    except PromptLooperError as exc:
        raise StorageError(
            f"copying table {table.name} into {target.shown} failed: {exc}. The target now "
            "holds part of the copy: empty it (or take a new database) before trying again"
        ) from None
    return copied


def _inserts(table: str, rows: Sequence[Row]) -> list[Statement]:
    columns = list(rows[0].keys())
    # Quoted: a column may be named as a word one of the backends reserves.
    names = ", ".join(f'"{name}"' for name in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    return [(sql, tuple(row[name] for name in columns)) for row in rows]
