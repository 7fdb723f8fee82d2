"""The PostgreSQL backend: a team's shared store (DESIGN §10), over asyncpg.

The same interface and the same SQL as SQLite (`dialect.py` translates what differs), the same
group commit (`write_queue.py`): units gathered while a transaction runs are committed in the
next one. Reads go through a small pool, so a slow listing does not hold up the writer.

A new database gets the whole schema at once (`schema_postgres.py`); later migrations run when
a process opens it, one process at a time (an advisory lock), each in its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import asyncpg

from ..domain.errors import StorageError
from .database import Row, Statement
from .dialect import to_postgres
from .location import DatabaseLocation
from .schema import MIGRATIONS as SQLITE_MIGRATIONS
from .schema_postgres import BASELINE, BASELINE_VERSION, IDENTITY_COLUMNS, MIGRATIONS
from .write_queue import Backend, WriteQueue, runs_of_same_sql

log = logging.getLogger(__name__)

#: The schema version this release writes (the same number on both backends).
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)
#: Connections a process keeps: the writer takes one at a time, readers the rest.
_POOL_SIZE = 5
#: How long opening a connection may take.
_CONNECT_TIMEOUT_S = 10.0
#: The advisory lock that makes migrations one process at a time ("PLmigr" as a number).
_MIGRATION_LOCK = 0x504C6D696772
#: Errors that mean the database could not do what was asked.
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresDatabase:
    """Open with `await PostgresDatabase.open(location)`; close with `await db.close()`."""

    dialect = "postgresql"

    def __init__(self, location: DatabaseLocation, pool: asyncpg.Pool, migrated_from: int):
        self.shown = location.shown
        self._url = location.url
        self.schema_version = SCHEMA_VERSION
        self.migrated_from = migrated_from
        self._pool = pool
        self._writes = WriteQueue(
            Backend(transaction=self._transaction, errors=_ERRORS, describe=self._write_error)
        )

    @classmethod
    async def open(cls, location: DatabaseLocation) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                location.url,
                min_size=1,
                max_size=_POOL_SIZE,
                timeout=_CONNECT_TIMEOUT_S,
                statement_cache_size=1024,
                init=_configure,
            )
        except (TimeoutError, *_ERRORS, ValueError) as exc:
            raise StorageError(
                f"cannot connect to the database {location.shown}: {_reason(exc)}"
            ) from None
        try:
            migrated_from = await _migrate(pool, location)
        except BaseException:
            await pool.close()
            raise
        return cls(location, pool, migrated_from)

    async def close(self) -> None:
        await self._writes.close()
        await self._pool.close()

    # -- reads ---------------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            async with self._pool.acquire() as connection:
                query = to_postgres(sql)
                return list(await connection.fetch(query.sql, *query.params(params)))
        except _ERRORS as exc:
            raise StorageError(f"database read failed: {_reason(exc)}") from None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetch_batches(
        self, sql: str, params: Sequence[Any] = (), size: int = 1000
    ) -> AsyncIterator[list[Row]]:
        """Yield rows in batches of `size` without holding the whole result in memory."""
        try:
            async with self._pool.acquire() as connection, connection.transaction(readonly=True):
                query = to_postgres(sql)
                cursor = await connection.cursor(query.sql, *query.params(params))
                while rows := await cursor.fetch(size):
                    yield list(rows)
        except _ERRORS as exc:
            raise StorageError(f"database read failed: {_reason(exc)}") from None

    # -- writes --------------------------------------------------------------------------------

    async def write(self, statements: Iterable[Statement]) -> None:
        await self.submit(statements)

    def submit(self, statements: Iterable[Statement]) -> asyncio.Future[None]:
        return self._writes.submit(statements)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.write([(sql, params)])

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement that changes rows and returns some (`... RETURNING ...`) in a
        transaction of its own."""
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                query = to_postgres(sql)
                return list(await connection.fetch(query.sql, *query.params(params)))
        except _ERRORS as exc:
            raise self._write_error(exc) from None

    async def listen(
        self, channel: str, wake: Callable[[], None], payload: str | None = None
    ) -> Callable[[], Awaitable[None]]:
        """Call `wake()` whenever a transaction notifies `channel` (with `payload`, if given:
        the schema's triggers send the table's name on new events and new work); returns what
        stops listening. The connection is one of its own, outside the pool."""

        def notified(connection: object, pid: int, channel: str, sent: str) -> None:
            if payload is None or sent == payload:
                wake()

        try:
            connection = await asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT_S)
            await connection.add_listener(channel, notified)
        except (TimeoutError, *_ERRORS) as exc:
            raise StorageError(
                f"cannot listen on the database {self.shown}: {_reason(exc)}"
            ) from None
        return connection.close

    async def reset_identities(self) -> None:
        """Number new rows past the ids copied in (`db copy` writes them as they were)."""
        async with self._pool.acquire() as connection:
            for table, column in IDENTITY_COLUMNS:
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                )

    async def _transaction(self, statements: list[Statement]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            for sql, same in runs_of_same_sql(statements):
                query = to_postgres(sql)
                if len(same) == 1:
                    await connection.execute(query.sql, *query.params(same[0][1]))
                else:
                    await connection.executemany(query.sql, [query.params(p) for _, p in same])

    def _write_error(self, error: Exception) -> StorageError:
        return StorageError(f"cannot write the database {self.shown}: {_reason(error)}")


async def _configure(connection: asyncpg.Connection) -> None:
    """Every connection: sums and averages (numeric in PostgreSQL) read as int or float, as
    SQLite gives them."""
    await connection.set_type_codec(
        "numeric", schema="pg_catalog", encoder=str, decoder=_number, format="text"
    )


def _number(text: str) -> int | float:
    return float(text) if any(char in text for char in ".eEN") else int(text)


async def _migrate(pool: asyncpg.Pool, location: DatabaseLocation) -> int:
    """Bring the schema up to date; returns the version it had (0: a new database)."""
    async with pool.acquire() as connection:
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                return await _migrate_locked(connection, location)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        except _ERRORS as exc:
            raise StorageError(
                f"cannot set up the database {location.shown}: {_reason(exc)}"
            ) from None


async def _migrate_locked(connection: asyncpg.Connection, location: DatabaseLocation) -> int:
    await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
    current = await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"the database {location.shown} is from a newer PromptLooper (schema {current}); "
            "upgrade to use it"
        )
    if current == 0:
        async with connection.transaction():
            await connection.execute(BASELINE)
            await connection.execute(
                "INSERT INTO schema_version (version) VALUES ($1)", BASELINE_VERSION
            )
        log.info("database %s created at schema %d", location.shown, BASELINE_VERSION)
    for version in range(max(current, BASELINE_VERSION) + 1, SCHEMA_VERSION + 1):
        async with connection.transaction():
            await connection.execute(MIGRATIONS[version])
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        log.info("database %s migrated to schema %d", location.shown, version)
    return int(current)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {_CONNECT_TIMEOUT_S:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    return str(exc) or type(exc).__name__
