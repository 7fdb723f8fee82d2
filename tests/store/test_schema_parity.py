"""The two backends build the same schema: SQLite's migrations and PostgreSQL's (written apart,
in each one's types) end at the same version with the same tables, columns and indexes, so
neither can gain a column the store's SQL then misses on the other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from promptlooper_tui.store.connect import open_database
from promptlooper_tui.store.location import DatabaseLocation, parse_database_url
from promptlooper_tui.store.schema import MIGRATIONS

#: Columns PostgreSQL has as real ones where SQLite has the implicit rowid.
ROWID_COLUMNS = {("sweeps", "rowid"), ("experiment_versions", "rowid")}


def sqlite_schema(path: Path) -> tuple[dict[str, set[str]], set[str]]:
    with sqlite3.connect(path) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {t: {row[1] for row in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    return columns, indexes


async def postgres_schema(url: str) -> tuple[dict[str, set[str]], set[str]]:
    conn = await asyncpg.connect(url)
    try:
        columns: dict[str, set[str]] = {}
        for row in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            if (row["table_name"], row["column_name"]) not in ROWID_COLUMNS:
                columns.setdefault(row["table_name"], set()).add(row["column_name"])
        # Indexes named in the schema (not those PostgreSQL makes for keys and UNIQUE).
        indexes = {
            row["indexname"]
            for row in await conn.fetch(
                "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = 'public' "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        }
    finally:
        await conn.close()
    return columns, indexes


async def test_both_backends_build_the_same_tables_columns_and_indexes(
    tmp_path: Path, pg_url: str
) -> None:
    lite = await open_database(DatabaseLocation.sqlite(tmp_path / "x.db"))
    pg = await open_database(parse_database_url(pg_url))
    try:
        assert lite.schema_version == pg.schema_version == len(MIGRATIONS)
        assert (lite.migrated_from, pg.migrated_from) == (0, 0)
    finally:
        await lite.close()
        await pg.close()
    lite_columns, lite_indexes = sqlite_schema(tmp_path / "x.db")
    pg_columns, pg_indexes = await postgres_schema(pg_url)
    assert {"runs", "work_units", "events"} <= lite_columns.keys() and len(lite_indexes) > 10
    assert pg_columns == lite_columns
    assert pg_indexes == lite_indexes


async def test_a_postgresql_store_opened_again_is_left_as_it_is(pg_url: str) -> None:
    location = parse_database_url(pg_url)
    first = await open_database(location)
    await first.close()
    again = await open_database(location)
    await again.close()
    assert again.migrated_from == again.schema_version == len(MIGRATIONS)
