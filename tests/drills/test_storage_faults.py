"""Drills: the database cannot be written (read-only file, read-only home, no home, full disk).

`promptlooper run` must say so in one line naming the path, exit 1 (the command and its input
were fine; the machine let it down, as when an endpoint is unreachable) without a traceback,
and leave the database uncorrupted with earlier results intact.

Root ignores file permissions, so as root the CLI runs with CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH dropped (`setpriv`): it then meets permissions as any user does. The full
disk is a real one: a small tmpfs, which needs root to mount (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ..conftest import make_experiment
from ..helpers import cli, cli_json, printed_command

FIRST_RUNS = 2 * 2 * 3  # BASE_EXPERIMENT: 2 models x 2 temperatures x 3 items


def confined_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`promptlooper --home HOME ARGS...` as a process that file permissions apply to."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions would not apply")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "promptlooper_tui", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_counts(db: Path) -> dict[str, int]:
    """Runs per sweep status, after checking the file is a sound database."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT s.status, count(r.id) FROM sweeps s LEFT JOIN runs r ON r.sweep_id = s.id "
            "GROUP BY s.id ORDER BY s.created_at"
        ).fetchall()
    return {f"{index}:{status}": count for index, (status, count) in enumerate(rows)}


def assert_clear_failure(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    path = tmp_path / "support.yaml"
    path.write_text(yaml.safe_dump(make_experiment()))
    return path


@pytest.fixture
def home(tmp_path: Path, experiment: Path) -> Path:
    """A home holding one completed sweep."""
    home = tmp_path / "home"
    done = cli(home, "run", str(experiment), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"]["completed"] == FIRST_RUNS
    return home


def test_a_read_only_database_file(home: Path, experiment: Path) -> None:
    db = home / "promptlooper.db"
    db.chmod(0o444)
    try:
        done = confined_cli(home, "run", str(experiment), "--no-cache")
        listed = confined_cli(home, "sweeps", "list", "--json")
    finally:
        db.chmod(0o644)

    assert_clear_failure(done, str(db), "readonly")
    # Reading a read-only database still works.
    assert listed.returncode == 0, listed.stderr
    assert [s["status"] for s in json.loads(listed.stdout)] == ["completed"]
    assert run_counts(db) == {"0:completed": FIRST_RUNS}


def test_a_read_only_home_directory(home: Path, experiment: Path) -> None:
    home.chmod(0o555)
    try:
        done = confined_cli(home, "run", str(experiment), "--no-cache")
    finally:
        home.chmod(0o755)

    assert_clear_failure(
        done, str(home / "promptlooper.db"), f"the directory {home} is not writable"
    )
    assert run_counts(home / "promptlooper.db") == {"0:completed": FIRST_RUNS}


def test_a_home_that_cannot_be_created(tmp_path: Path, experiment: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o555)
    try:
        done = confined_cli(parent / "home", "run", str(experiment))
    finally:
        parent.chmod(0o755)

    assert_clear_failure(done, f"cannot create the directory {parent / 'home'}", "denied")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs root to mount a tmpfs to fill: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` up to `leave` free bytes; returns the filler file."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_disk_that_fills_up_mid_sweep(small_disk: Path, experiment: Path) -> None:
    home = small_disk / "home"
    first = cli(home, "run", str(experiment), "--json")
    assert first.returncode == 0, first.stderr
    db = home / "promptlooper.db"
    filler = fill(small_disk, leave=128 * 1024)

    done = cli(home, "run", str(experiment), "--no-cache", "--repeats", "40")

    # The sweep fails as a whole (it cannot save its runs), saying why and how to resume.
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [reason] = [line for line in done.stderr.splitlines() if "disk is full" in line]
    assert str(db) in reason
    # The same summary and hint as any other stop: the sweep's status and counts, then a
    # resume command for this home.
    assert "Sweep sw_" in done.stdout and "runs:" in done.stdout
    assert printed_command(done.stderr).startswith(f"promptlooper --home {home} resume sw_")
    counts = run_counts(db)
    assert counts["0:completed"] == FIRST_RUNS
    assert len(counts) == 2, "the second sweep should be recorded, to be resumed"

    filler.unlink()
    [second] = [s for s in cli_json(home, "sweeps", "list") if s["status"] != "completed"]
    assert second["resumable"], second
    resumed = cli(home, "resume", second["id"], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["runs"]["completed"] == FIRST_RUNS * 40
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = conn.execute(
            "SELECT count(*), count(DISTINCT config_id || ':' || item_index || ':' || repeat) "
            "FROM runs WHERE sweep_id = ?",
            (second["id"],),
        ).fetchone()
    assert keys == (FIRST_RUNS * 40, FIRST_RUNS * 40)
