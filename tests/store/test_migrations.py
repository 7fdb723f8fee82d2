"""Schema migrations: a database written by the first release opens in this one, migrated
forward with its data kept; a failed migration leaves it as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from promptlooper_tui.domain.errors import StorageError
from promptlooper_tui.engine.cache import canonical_json
from promptlooper_tui.engine.loader import load_experiment_text
from promptlooper_tui.settings import Settings
from promptlooper_tui.store import sqlite
from promptlooper_tui.store.schema import MIGRATIONS
from promptlooper_tui.store.sqlite import SqliteDatabase
from promptlooper_tui.workbench import open_workbench

from ..conftest import experiment_yaml

NOW = "2024-05-01T12:00:00+00:00"
SPEC_YAML = experiment_yaml(name="legacy")
SPEC = load_experiment_text(SPEC_YAML).spec
SETTINGS = '{"strategy": "grid", "samples": null, "repeats": 1, "seed": 0, "max_concurrency": 8}'


def create_version_1_database(path: Path) -> None:
    """A database as the first schema left it, with one scored run in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.executescript(
            f"""
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version (version) VALUES (1);
            INSERT INTO endpoints (name, base_url, api_key_env, created_at)
                VALUES ('local', 'http://127.0.0.1:8080/v1', 'LOCAL_KEY', '{NOW}');
            INSERT INTO experiments (id, name, created_at) VALUES ('exp_old', 'legacy', '{NOW}');
            INSERT INTO sweeps (id, experiment_id, experiment_version, settings, status,
                                planned_runs, created_at, updated_at, finished_at)
                VALUES ('sw_old', 'exp_old', 1, '{SETTINGS}', 'completed', 1,
                        '{NOW}', '{NOW}', '{NOW}');
            INSERT INTO configs (id, sweep_id, key, params)
                VALUES (1, 'sw_old', 'k', '{{"model": "small-model"}}');
            INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, status,
                              score, tokens_in, tokens_out, finished_at)
                VALUES ('run_old', 'sw_old', 1, 'exp_old', 0, 0, 'completed', 0.75, 12, 3, '{NOW}');
            """
        )
        conn.execute(
            "INSERT INTO experiment_versions (experiment_id, version, spec_yaml, spec_json, "
            "content_hash, created_at) VALUES ('exp_old', 1, ?, ?, 'hash', ?)",
            (SPEC_YAML, canonical_json(SPEC.model_dump(mode="json", by_alias=True)), NOW),
        )


def schema_of(path: Path) -> tuple[list[int], set[str]]:
    """(every recorded schema version, names of every table and index)."""
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    return sorted(versions), names


async def test_a_version_1_database_is_migrated_on_open_with_its_data_kept(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "home")
    create_version_1_database(settings.db_path)

    async with open_workbench(settings) as wb:
        [experiment] = await wb.list_experiments()
        [endpoint] = await wb.list_endpoints()
        [sweep] = await wb.list_sweeps()
        [entry] = await wb.leaderboard("legacy")
        run = await wb.get_run("run_old")
        # The migrated tables work: webhooks came with schema 2.
        webhook = await wb.add_webhook("http://127.0.0.1:9/hook")

    assert (experiment.id, experiment.name) == ("exp_old", "legacy")
    assert (endpoint.name, endpoint.base_url) == ("local", "http://127.0.0.1:8080/v1")
    assert (sweep.id, sweep.status) == ("sw_old", "completed")
    assert (entry.config, entry.score, entry.n) == ({"model": "small-model"}, 0.75, 1)
    assert run.score == 0.75
    versions, names = schema_of(settings.db_path)
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert {"webhooks", "webhook_deliveries", "runs_for_ranking"} <= names
    assert "runs_by_sweep_status" not in names  # schema 3 replaced it
    assert webhook.url == "http://127.0.0.1:9/hook"


async def test_opening_an_up_to_date_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "current.db"
    for _ in range(2):
        await (await SqliteDatabase.open(path)).close()
    versions, _ = schema_of(path)
    assert versions == list(range(1, len(MIGRATIONS) + 1))


async def test_a_failing_migration_leaves_the_database_at_its_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    create_version_1_database(path)
    broken = "CREATE TABLE half_done (id INTEGER); INSERT INTO no_such_table VALUES (1)"
    monkeypatch.setattr(sqlite, "MIGRATIONS", [*MIGRATIONS, broken])

    with pytest.raises(StorageError, match="no_such_table"):
        await SqliteDatabase.open(path)

    versions, names = schema_of(path)
    assert versions == [1]
    assert "half_done" not in names and "webhooks" not in names
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT score FROM runs").fetchall() == [(0.75,)]


async def test_a_database_from_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    await (await SqliteDatabase.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))

    with pytest.raises(StorageError, match="newer PromptLooper"):
        await SqliteDatabase.open(path)
