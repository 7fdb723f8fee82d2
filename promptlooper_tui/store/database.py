"""The store's one interface, whichever backend holds the data: SQLite (a file of one's own,
`sqlite.py`) or PostgreSQL (a team's shared server, `postgres.py`).

The modules beside this one hold the SQL, written once for both backends; the engine and the
Workbench see only a `Database`: reads that return rows, and writes as *units*, lists of
statements committed together (all or none).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

#: One SQL statement (with `?` placeholders) and its parameters.
Statement = tuple[str, Sequence[Any]]


class Row(Protocol):
    """A result row: by column name (`row["id"]`) or position (`row[0]`)."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> Any: ...


class Database(Protocol):
    #: Which SQL the backend speaks, for the few queries spelled out per backend.
    dialect: str
    #: Where the data lives, as it may be shown (a password in a URL is replaced by ***).
    shown: str
    #: The schema version the database is at, and the one it had when opened (0: new).
    schema_version: int
    migrated_from: int

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def fetch_batches(
        self, sql: str, params: Sequence[Any] = (), size: int = 1000
    ) -> AsyncIterator[list[Row]]:
        """The rows in batches of `size`, without holding the whole result in memory."""
        ...

    async def write(self, statements: Iterable[Statement]) -> None:
        """Commit `statements` together (all or none); returns once they are durable."""
        ...

    def submit(self, statements: Iterable[Statement]) -> asyncio.Future[None]:
        """Queue `statements` to be committed together; the future resolves once they are."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement that changes rows and returns some (`UPDATE ... RETURNING`), in a
        transaction of its own (claiming work)."""
        ...

    async def listen(
        self, channel: str, wake: Callable[[], None], payload: str | None = None
    ) -> Callable[[], Awaitable[None]] | None:
        """Have `wake()` called when another process notifies `channel` (with `payload`, if
        given: "events" for new events, "work_units" for new work); returns what stops it, or
        None where the backend cannot (SQLite: poll instead)."""
        ...

    async def reset_identities(self) -> None:
        """After rows were copied in with their generated ids: number new rows past them."""
        ...

    async def close(self) -> None: ...
