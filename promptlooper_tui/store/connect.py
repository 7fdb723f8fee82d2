"""Opening the store: the backend that `--db` names."""

from __future__ import annotations

from .database import Database
from .location import DatabaseLocation


async def open_database(location: DatabaseLocation) -> Database:
    """The database at `location`, its schema brought up to date."""
    if location.kind == "sqlite":
        from .sqlite import SqliteDatabase

        assert location.path is not None
        return await SqliteDatabase.open(location.path)
    from .postgres import PostgresDatabase

    return await PostgresDatabase.open(location)
