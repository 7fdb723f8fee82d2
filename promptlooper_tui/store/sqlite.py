"""The SQLite backend: WAL, one reader connection, and group commit (`write_queue.py`).

The writer's connection lives on a thread of its own and each transaction runs there whole, in
one hand-over from the event loop: a hand-over per statement (as aiosqlite makes) cost the loop
more CPU than SQLite spent writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ..domain.errors import StorageError
from ..settings import ensure_home, restrict_to_owner
from .database import Statement
from .schema import MIGRATIONS
from .write_queue import Backend, WriteQueue, runs_of_same_sql

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: How long a connection waits for another process's write lock before giving up.
_BUSY_TIMEOUT_MS = 60_000
#: Tries at opening a database that another process is creating at the same moment.
_OPEN_ATTEMPTS = 20


class _WriterThread:
    """The writer's connection and the one thread that uses it."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self.connection: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(connection)` on the writer's thread."""
        connection = self.connection
        assert connection is not None, "the writer's connection is open"
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, connection)

    async def open(self, path: Path) -> None:
        self.connection = await asyncio.get_running_loop().run_in_executor(
            self._thread, _connect_writer, path
        )

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, connection.close)
        self._thread.shutdown(wait=False)


class SqliteDatabase:
    """Open with `await SqliteDatabase.open(path)`; close with `await db.close()`."""

    dialect = "sqlite"

    def __init__(self, path: Path, reader: aiosqlite.Connection, writer: _WriterThread):
        self.path = path
        self.shown = str(path)
        self.schema_version = len(MIGRATIONS)
        self.migrated_from = self.schema_version
        self._reader = reader
        self._writer = writer
        self._writes = WriteQueue(
            Backend(
                transaction=self._transaction,
                errors=(sqlite3.Error,),
                describe=self._write_error,
                # On a full disk, units tried one by one would only spend the last free pages
                # on the smallest of them, leaving none for the write that records the failure.
                fails_all=_disk_full,
            )
        )

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        try:
            ensure_home(path.parent)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory {path.parent}: {exc.strerror}"
            ) from None
        try:
            _create_private(path)
        except OSError as exc:
            raise StorageError(f"cannot create the database {path}: {exc.strerror}") from None
        for attempt in range(1, _OPEN_ATTEMPTS + 1):
            try:
                return await cls._open_once(path)
            except sqlite3.Error as exc:
                # Two processes creating one database: switching a new file to WAL takes a
                # lock SQLite's busy timeout does not wait for, so the loser tries again.
                if "locked" in str(exc) and attempt < _OPEN_ATTEMPTS:
                    await asyncio.sleep(0.05 * attempt)
                    continue
                hint = ""
                if not os.access(path.parent, os.W_OK):
                    # SQLite's own words then blame the database file, which may be fine.
                    hint = f" (the directory {path.parent} is not writable; the database needs it)"
                raise StorageError(f"cannot open the database {path}: {exc}{hint}") from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    @classmethod
    async def _open_once(cls, path: Path) -> SqliteDatabase:
        writer = _WriterThread()
        reader: aiosqlite.Connection | None = None
        try:
            await writer.open(path)
            migrated_from = await writer.run(_migrate)
            reader = await _connect_reader(path)
        except BaseException:
            # Close what did open: each connection owns a thread that would outlive us.
            with contextlib.suppress(sqlite3.Error):
                await writer.close()
            raise
        database = cls(path, reader, writer)
        database.migrated_from = migrated_from
        return database

    async def close(self) -> None:
        await self._writes.close()
        await self._reader.close()
        await self._writer.close()

    # -- reads ---------------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database read failed: {exc}") from None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetch_batches(self, sql: str, params: Sequence[Any] = (), size: int = 1000) -> Any:
        """Yield rows in batches of `size` without holding the whole result in memory."""
        cursor = await self._reader.execute(sql, params)
        try:
            while rows := await cursor.fetchmany(size):
                yield rows
        finally:
            await cursor.close()

    # -- writes --------------------------------------------------------------------------------

    async def write(self, statements: Iterable[Statement]) -> None:
        """Commit `statements` together (all or none); returns once they are durable."""
        await self.submit(statements)

    def submit(self, statements: Iterable[Statement]) -> asyncio.Future[None]:
        """Queue `statements` to be committed together; the future resolves once they are.

        For callers that have other work to do while the commit happens.
        """
        return self._writes.submit(statements)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.write([(sql, params)])

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement that changes rows and returns some (`... RETURNING ...`) in a
        transaction of its own, after the transactions already under way."""
        try:
            return await self._writer.run(lambda db: _returning(db, sql, params))
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None

    async def listen(
        self, channel: str, wake: Callable[[], None], payload: str | None = None
    ) -> None:
        """Nothing: SQLite cannot tell other processes' writes; readers poll."""
        return None

    async def reset_identities(self) -> None:
        """Nothing to do: SQLite numbers new rows past the largest id already there."""

    def _write_error(self, error: Exception) -> StorageError:
        return StorageError(f"cannot write the database {self.path}: {error}")

    async def _transaction(self, statements: list[Statement]) -> None:
        await self._writer.run(lambda connection: _commit(connection, statements))


def _commit(db: sqlite3.Connection, statements: list[Statement]) -> None:
    """Run `statements` in one transaction (on the writer's thread)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, same in runs_of_same_sql(statements):
            if len(same) == 1:
                db.execute(sql, same[0][1])
            else:
                db.executemany(sql, [params for _, params in same])
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _returning(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
    cursor = db.cursor()
    cursor.row_factory = sqlite3.Row
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = cursor.execute(sql, params).fetchall()
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return rows


def _disk_full(error: Exception) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _create_private(path: Path) -> None:
    """Make sure the database file exists with mode 0600 before SQLite opens it.

    SQLite creates a missing database with the umask's mode (often 0644) and gives its -wal and
    -shm files the database's mode; creating it here first keeps all three private from the
    moment they exist. The files of an existing database are tightened to 0600.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        for name in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
            restrict_to_owner(name)
    else:
        os.close(fd)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


#: What every connection sets first.
_PRAGMAS = (
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


def _connect_writer(path: Path) -> sqlite3.Connection:
    """The writer's connection, configured (on the writer's thread, which alone uses it)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        for pragma in _PRAGMAS:
            db.execute(pragma)
    except BaseException:
        db.close()
        raise
    return db


async def _connect_reader(path: Path) -> aiosqlite.Connection:
    """The reader's connection, configured; closed again if configuring it fails."""
    db = await aiosqlite.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        db.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await db.execute(pragma)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's version, all in one transaction;
    returns the version it had (0: a new database)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] if row and row[0] is not None else 0
        if current > len(MIGRATIONS):
            raise StorageError(
                f"the database is from a newer PromptLooper (schema {current}); upgrade to use it"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            for statement in _split(MIGRATIONS[version - 1]):
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            log.info("database migrated to schema %d", version)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(current)


def _split(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
