"""Copying a history between databases (store/copy.py): every table is either carried or left
behind on purpose, rows keep their ids and order, and what must not be copied is refused."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from promptlooper_tui.domain.errors import Conflict, NotFound
from promptlooper_tui.keystore import SecretBox
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import RunningSimulator
from promptlooper_tui.store.connect import open_database
from promptlooper_tui.store.copy import COPIED_TABLES, SKIPPED_TABLES, copy_database
from promptlooper_tui.store.database import Database
from promptlooper_tui.store.location import DatabaseLocation
from promptlooper_tui.team_secret import copier_check
from promptlooper_tui.workbench import open_workbench

#: The sources are SQLite homes (the PostgreSQL copies are in tests/cli/test_db_cli.py).
pytestmark = pytest.mark.sqlite_only("copies SQLite files")


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the SQLite file at `path`, in rowid order where it has one."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        names = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_")
        ]
        return {name: db.execute(f"SELECT * FROM {name}").fetchall() for name in names}


async def test_every_table_is_copied_or_left_behind_on_purpose(tmp_path: Path) -> None:
    db = await open_database(DatabaseLocation.sqlite(tmp_path / "fresh.db"))
    await db.close()
    copied = [table.name for table in COPIED_TABLES]
    assert len(set(copied)) == len(copied) and not set(copied) & set(SKIPPED_TABLES)
    # A table added to the schema must be added to one of the two lists.
    assert set(_tables(tmp_path / "fresh.db")) == set(copied) | set(SKIPPED_TABLES)


def copier(history: Path) -> Callable[[Database], Awaitable[str | None]]:
    """The secret check of the home whose database is `history`: the copier's."""
    return copier_check(SecretBox(history.parent / "secret.key"))


@pytest.fixture
async def history(
    settings: Settings, sim: RunningSimulator, write_experiment: Callable[..., Path]
) -> Path:
    """A home's database with a finished sweep, a human score, a webhook with a secret and an
    endpoint with an API key (both encrypted)."""
    async with open_workbench(settings) as wb:
        await wb.add_endpoint("local", sim.base_url, api_key="sk-copied")
        await wb.import_file(write_experiment())
        await wb.run_sweep(await wb.create_sweep("support"))
        [run, *_] = (await wb.list_runs()).items
        await wb.add_score(run.id, 0.9, note="good")
        await wb.add_webhook("http://127.0.0.1:9/hook", ["sweep.completed"], secret="s3")
    return settings.db_path


async def test_a_copy_holds_the_same_rows_with_their_ids(history: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    report = await copy_database(
        DatabaseLocation.sqlite(history), DatabaseLocation.sqlite(target), copier(history)
    )
    source_rows, target_rows = _tables(history), _tables(target)
    for table in COPIED_TABLES:
        # Row for row in rowid order: ids, bytes and the order listings tie-break on.
        assert target_rows[table.name] == source_rows[table.name], table.name
        assert report.rows[table.name] == len(source_rows[table.name])
    assert report.rows["runs"] == 12 and report.rows["cache_counters"] == 1
    assert target_rows["cache_claims"] == []
    assert report.target_migrated_from == 0 and report.schema_version > 0


async def test_the_copy_goes_on_where_the_source_left_off(
    history: Path, tmp_path: Path, sim: RunningSimulator
) -> None:
    target = tmp_path / "copy.db"
    await copy_database(
        DatabaseLocation.sqlite(history), DatabaseLocation.sqlite(target), copier(history)
    )
    async with open_workbench(Settings(tmp_path / "other", DatabaseLocation.sqlite(target))) as wb:
        [run, *_] = (await wb.list_runs()).items
        await wb.add_score(run.id, 0.1, scorer="second opinion")
        [sweep] = await wb.list_sweeps()
        assert sweep.status == "completed"
    assert len(_tables(target)["scores"]) == len(_tables(history)["scores"]) + 1


async def test_a_running_sweep_is_not_copied(history: Path, tmp_path: Path) -> None:
    source = tmp_path / "busy.db"
    shutil.copy(history, source)
    with contextlib.closing(sqlite3.connect(source)) as db, db:
        [(sweep_id,)] = db.execute("SELECT id FROM sweeps").fetchall()
        db.execute("UPDATE sweeps SET status = 'running'")
    target = tmp_path / "copy.db"
    with pytest.raises(Conflict, match=f"running sweeps: {sweep_id} \\(support\\)") as refused:
        await copy_database(
            DatabaseLocation.sqlite(source), DatabaseLocation.sqlite(target), copier(history)
        )
    assert "finish" in str(refused.value)
    assert not target.exists()


async def test_a_target_with_data_is_refused_untouched(history: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    shutil.copy(history, target)
    before = _tables(target)
    with pytest.raises(Conflict, match=f"{target} already holds data \\(table \\w+ has rows\\)"):
        await copy_database(
            DatabaseLocation.sqlite(history), DatabaseLocation.sqlite(target), copier(history)
        )
    assert _tables(target) == before


async def test_cache_counters_alone_are_data(history: Path, tmp_path: Path) -> None:
    target = tmp_path / "counted.db"
    db = await open_database(DatabaseLocation.sqlite(target))
    await db.execute("UPDATE cache_counters SET hits = 3")
    await db.close()
    with pytest.raises(Conflict, match="table cache_counters has rows"):
        await copy_database(
            DatabaseLocation.sqlite(history), DatabaseLocation.sqlite(target), copier(history)
        )


async def test_one_database_is_not_copied_onto_itself_nor_a_missing_one(
    history: Path, tmp_path: Path
) -> None:
    with pytest.raises(Conflict, match="both name"):
        await copy_database(
            DatabaseLocation.sqlite(history), DatabaseLocation.sqlite(history), copier(history)
        )
    missing = tmp_path / "typo.db"
    with pytest.raises(NotFound, match="no database file"):
        await copy_database(
            DatabaseLocation.sqlite(missing), DatabaseLocation.sqlite(tmp_path), copier(history)
        )
    assert not missing.exists()
