"""`--db URL` / $PROMPTLOOPER_DB, `promptlooper db migrate` and `promptlooper db copy`, run as a
user runs them: real processes against the built-in simulated endpoint. The PostgreSQL ones
(`-k postgres`) use a throwaway cluster (`pg_url`) and skip with a reason where there is none."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from promptlooper_tui.command_line import command_line
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.store.location import parse_database_url

from ..helpers import cli, cli_json, free_port, run_printed

QUICKSTART = Path(__file__).resolve().parents[2] / "sample_experiments" / "quickstart.yaml"

#: What a person reads of a history: the same on a copy as on its source.
READINGS = (
    ("experiments", "list", "--json"),
    ("sweeps", "list", "--json"),
    ("runs", "list", "--limit", "100", "--json"),
    ("leaderboard", "quickstart", "--json"),
    ("export", "quickstart", "--format", "csv"),
    ("export", "quickstart", "--format", "json"),
    ("cache", "stats", "--json"),
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose database holds a finished quickstart sweep; its readings are kept as they
    were (tests copy it and must not change it)."""
    home = tmp_path_factory.mktemp("db-cli") / "home"
    done = cli(home, "run", str(QUICKSTART), "--json")
    assert done.returncode == 0, done.stderr
    return home


def readings(home: Path, *db: str) -> list[Any]:
    """What READINGS print for `home` (or for `--db URL`, given as `db`)."""
    shown = []
    for command in READINGS:
        done = cli(home, *db, *command)
        assert done.returncode == 0, (command, done.stderr)
        text = done.stdout
        if command[-1] == "json" and command[0] == "export":
            answer = json.loads(text)
            answer.pop("exported_at")
            text = json.dumps(answer)
        shown.append(text)
    return shown


def row_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}


def test_db_before_or_after_the_command_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    team = tmp_path / "team.db"
    ran = cli(home, "--db", f"sqlite:///{team}", "run", str(QUICKSTART), "--json")
    assert ran.returncode == 0, ran.stderr
    [experiment] = cli_json(home, "experiments", "list", "--db", f"sqlite:///{team}")
    assert experiment["name"] == "quickstart"
    monkeypatch.setenv("PROMPTLOOPER_DB", str(team))
    page = cli_json(home, "runs", "list")
    assert page["total"] == 32
    # The flag wins over the environment; the home's own file was never made.
    assert cli_json(home, "--db", str(tmp_path / "other.db"), "experiments", "list") == []
    assert not (home / "promptlooper.db").exists()


def test_printed_command_lines_carry_the_db_but_no_password(tmp_path: Path) -> None:
    home = tmp_path / "home"
    team = parse_database_url(str(tmp_path / "team.db"))
    line = command_line(Settings(home, team), "resume", "sw_1")
    assert line == f"promptlooper --home {home} --db {tmp_path / 'team.db'} resume sw_1"
    assert run_printed(line.replace("resume sw_1", "sweeps list --json")).stdout == "[]\n"
    shared = parse_database_url("postgresql://me:hunter2@db.example/team")
    line = command_line(Settings(home, shared), "resume", "sw_1")
    assert "--db 'postgresql://me:***@db.example/team' resume sw_1" in line
    assert command_line(Settings(home), "resume", "sw_1").count("--db") == 0


def test_migrate_a_new_database_then_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = cli_json(home, "db", "migrate", "--db", url)
    assert first["database"] == str(tmp_path / "new.db")
    assert first["schema_from"] == 0 and first["schema_to"] > 0
    again = cli(home, "--db", url, "db", "migrate")
    assert again.returncode == 0, again.stderr
    assert (
        again.stdout == f"{tmp_path / 'new.db'}: schema {first['schema_to']}, already up to date\n"
    )
    assert cli_json(home, "db", "migrate", "--db", url)["schema_from"] == first["schema_to"]
    assert not (home / "promptlooper.db").exists()


def test_copy_to_a_new_sqlite_file_reads_the_same_and_shares_the_cache(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "copy.db"
    other = tmp_path / "other-home"
    copied = cli_json(other, "db", "copy", "--from", str(source / "promptlooper.db"),
                      "--to", f"sqlite:///{target}")  # fmt: skip
    assert copied["rows"]["runs"] == 32 and copied["rows"]["experiments"] == 1
    assert copied["to"] == str(target) and copied["target_schema_from"] == 0
    assert readings(other, "--db", str(target)) == readings(source)
    again = cli_json(other, "--db", str(target), "run", str(QUICKSTART))
    assert again["calls"]["requested"] == again["calls"]["cache_hits"] == 32
    assert again["runs"]["cached"] == 32


def test_a_copy_into_a_database_with_data_is_refused_and_writes_nothing(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "busy.db"
    ran = cli(tmp_path / "home", "--db", str(target), "run", str(QUICKSTART), "--json")
    assert ran.returncode == 0, ran.stderr
    before = row_counts(target)
    refused = cli(tmp_path / "home", "db", "copy", "--from", str(source / "promptlooper.db"),
                  "--to", str(target))  # fmt: skip
    assert refused.returncode == 2
    assert f"{target} already holds data (table experiments has rows)" in refused.stderr
    assert row_counts(target) == before


def test_bad_copy_arguments_are_named(source: Path, tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "db", "copy", "--from", "mysql://u:hunter2@db/x",
               "--to", str(tmp_path / "x.db"))  # fmt: skip
    assert done.returncode == 2 and "--from 'mysql://u:***@db/x': unknown scheme" in done.stderr
    assert "hunter2" not in done.stderr
    missing = cli(tmp_path / "home", "db", "copy", "--from", str(tmp_path / "typo.db"),
                  "--to", str(tmp_path / "x.db"))  # fmt: skip
    assert missing.returncode == 2 and "no database file" in missing.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "x.db").exists()


def test_an_encrypted_api_key_works_on_the_copy_with_the_same_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-" + "4b3a2c1d" * 4
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    monkeypatch.setenv("PROMPTLOOPER_SECRET", "the team's secret")
    with simulated_endpoint_process("--api-key", key) as base_url:
        added = cli(tmp_path / "mine", "--db", str(source), "endpoints", "add", "keyed",
                    "--base-url", base_url, "--api-key-stdin", stdin=key + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        copied = cli(tmp_path / "mine", "db", "copy", "--from", str(source), "--to", str(target))
        assert copied.returncode == 0, copied.stderr
        # Another home (no key file of its own): the secret alone opens the key.
        tested = cli(tmp_path / "theirs", "--db", str(target), "endpoints", "test", "keyed")
        assert tested.returncode == 0, tested.stderr
        assert "small-model" in tested.stdout
        monkeypatch.setenv("PROMPTLOOPER_SECRET", "another secret")
        wrong = cli(tmp_path / "theirs", "--db", str(target), "endpoints", "test", "keyed")
    # Another secret: a clear error, never a garbled key sent.
    assert wrong.returncode == 2 and "cannot be decrypted" in wrong.stderr
    assert key.encode() not in target.read_bytes()
    assert key not in added.stdout + copied.stdout + tested.stdout + wrong.stdout + wrong.stderr


def test_copy_sqlite_to_postgres_and_back(source: Path, tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    migrated = cli_json(home, "--db", pg_url, "db", "migrate")
    assert migrated["schema_from"] == 0
    copied = cli_json(home, "db", "copy", "--from", str(source / "promptlooper.db"),
                      "--to", pg_url)  # fmt: skip
    assert copied["rows"]["runs"] == 32 and copied["target_schema_from"] == migrated["schema_to"]
    assert readings(home, "--db", pg_url) == readings(source)
    # New rows on the team store are numbered past the copied ones.
    again = cli_json(home, "--db", pg_url, "run", str(QUICKSTART))
    assert again["calls"]["requested"] == again["calls"]["cache_hits"] == 32
    back = tmp_path / "back.db"
    returned = cli_json(home, "db", "copy", "--from", pg_url, "--to", str(back))
    assert returned["rows"]["runs"] == 64 and returned["rows"]["sweeps"] == 2
    assert readings(home, "--db", str(back)) == readings(home, "--db", pg_url)
    refused = cli(home, "db", "copy", "--from", str(source / "promptlooper.db"), "--to", pg_url)
    assert refused.returncode == 2 and "already holds data" in refused.stderr


def test_an_unreachable_postgres_server_is_an_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTLOOPER_DB", f"postgresql://me:hunter2@127.0.0.1:{free_port()}/team")
    done = cli(tmp_path / "home", "experiments", "list")
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    assert "hunter2" not in done.stdout + done.stderr and "Traceback" not in done.stderr
