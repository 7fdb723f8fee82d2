"""Where the store lives (`--db URL` / $PROMPTLOOPER_DB): what is read from a URL, what a bad
one is told, and that a password is never shown, in a location or in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptlooper_tui.cli import main
from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.settings import Settings
from promptlooper_tui.store.location import DatabaseLocation, parse_database_url

PASSWORD = "Pa55word-k9"


def test_sqlite_urls_and_paths(tmp_path: Path) -> None:
    assert parse_database_url("sqlite:///srv/x.db").path == Path("/srv/x.db")
    assert parse_database_url("sqlite:////srv/x.db").path == Path("/srv/x.db")
    relative = parse_database_url("team/x.db", base=tmp_path)
    assert relative.kind == "sqlite" and relative.path == tmp_path / "team" / "x.db"
    assert parse_database_url(str(tmp_path / "x.db")).path == tmp_path / "x.db"
    assert parse_database_url("~/x.db").path == Path.home() / "x.db"
    assert parse_database_url("SQLITE:///srv/x.db").kind == "sqlite"


def test_a_relative_path_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    location = parse_database_url("x.db")
    assert location.path == tmp_path / "x.db"
    # Its URL names the same file from any other folder (another process may start there).
    assert parse_database_url(location.url, base=Path("/")).path == tmp_path / "x.db"
    assert DatabaseLocation.sqlite(Path("h/x.db")).url == f"sqlite:///{tmp_path}/h/x.db"


def test_postgres_urls() -> None:
    for url in (
        "postgresql://me@db.example/team",
        "postgres://me@db.example:5433/team",
        "postgresql:///team?host=/run/postgresql",
        "postgresql://[::1]:5432/team",
    ):
        location = parse_database_url(url)
        assert (location.kind, location.url, location.path) == ("postgresql", url, None)
        assert location.shown == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://me:{PASSWORD}@db/team", "postgresql://me:***@db/team"),
        (f"postgresql://me:{PASSWORD}@db:5432/team?sslmode=require",
         "postgresql://me:***@db:5432/team?sslmode=require"),
        # Unencoded @ / ? in a password: no parser splits them as a person meant.
        (f"postgresql://me:{PASSWORD}@x@db/team", "postgresql://me:***@db/team"),
        (f"postgresql://me:12/{PASSWORD}@db/team", "postgresql://me:***@db/team"),
        (f"postgresql://me@db/team?password={PASSWORD}&sslmode=require",
         "postgresql://me@db/team?password=***&sslmode=require"),
    ],
)  # fmt: skip
def test_shown_never_holds_the_password(url: str, shown: str) -> None:
    location = parse_database_url(url)
    assert location.shown == shown
    assert PASSWORD not in repr(location) and PASSWORD not in str(Settings(Path("h"), location))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f"mysql://me:{PASSWORD}@db/team", "unknown scheme 'mysql'"),
        ("sqlite://x.db", "three slashes"),
        ("sqlite:///", "three slashes"),
        (f"postgresql://me:{PASSWORD}@/team", "no host"),
        (f"postgresql://me:{PASSWORD}@db", "no database name"),
        (f"postgresql://me:{PASSWORD}@db/", "no database name"),
        (f"postgresql://me:{PASSWORD}@db:0/team", "port 0"),
        (f"postgresql://me:{PASSWORD}@db:99999/team", "host and port"),
        (f"postgresql://me:{PASSWORD[:4]}/{PASSWORD[4:]}@db/team", "host and port"),
        (f"me:{PASSWORD}@db/team", "not a URL"),
    ],
)
def test_a_bad_url_says_what_is_wrong_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse_database_url(url)
    message = str(raised.value)
    assert message.startswith("--db") and problem in message
    assert PASSWORD not in message and PASSWORD[4:] not in message


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is a directory"):
        parse_database_url(f"sqlite:///{tmp_path}")


def test_the_error_names_the_flag_it_came_from() -> None:
    with pytest.raises(BadInput, match=r"^--to 'mysql://db/x': unknown scheme"):
        parse_database_url("mysql://db/x", flag="--to")


def test_settings_take_the_option_else_the_environment_else_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMPTLOOPER_DB", raising=False)
    home = tmp_path / "home"
    assert Settings.resolve(home).database == DatabaseLocation.sqlite(home / "promptlooper.db")
    monkeypatch.setenv("PROMPTLOOPER_DB", "postgresql://me@db/team")
    assert Settings.resolve(home).database.url == "postgresql://me@db/team"
    assert Settings.resolve(home, "sqlite:///srv/x.db").database.path == Path("/srv/x.db")
    monkeypatch.setenv("PROMPTLOOPER_DB", "")
    assert Settings.resolve(home).db is None
    with pytest.raises(BadInput, match="empty"):
        Settings.resolve(home, "")


COMMANDS = (
    ["runs", "list"],
    ["experiments", "list"],
    ["db", "migrate"],
    ["serve", "--port", "0", "--mcp-port", "0"],
    ["mcp"],
    ["tui"],
    ["demo"],
)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_refuses_a_bad_url_with_exit_2_before_starting(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    bad = f"postgresql://me:{PASSWORD}@/team"
    for argv in (
        ["--home", str(home), "--db", bad, *command],
        ["--home", str(home), *command, "--db", bad],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "no host" in err and "Traceback" not in err and PASSWORD not in err
    if command != ["demo"]:  # the demo has a database of its own unless --db says otherwise
        monkeypatch.setenv("PROMPTLOOPER_DB", f"mysql://me:{PASSWORD}@db/team")
        assert main(["--home", str(home), *command]) == 2
        out, err = capsys.readouterr()
        assert "unknown scheme" in err and PASSWORD not in out + err
    assert not home.exists()  # nothing was started: not even the home was made
