"""Files at rest (DESIGN §9): the home is 0700, its database (with its -wal and -shm files),
key file and exports 0600 from the moment they exist, whatever the umask; a key file is
created atomically, so processes racing on a fresh home end with one key; a broken key file is
a one-line error that says what to do."""

from __future__ import annotations

import base64
import multiprocessing
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.keystore import SecretBox
from promptlooper_tui.store.sqlite import SqliteDatabase

from ..helpers import cli

QUICKSTART = Path(__file__).parents[2] / "sample_experiments" / "quickstart.yaml"
RACERS = 6


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The common umask 022, under which a plain create gives others read access."""
    monkeypatch.delenv("PROMPTLOOPER_SECRET", raising=False)
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_real_commands_leave_a_private_home(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    done = cli(home, "run", str(QUICKSTART), "--json")
    assert done.returncode == 0, done.stderr
    assert mode(home) == 0o700
    assert mode(home.parent) == 0o755  # only the home itself is PromptLooper's to close
    assert mode(home / "promptlooper.db") == 0o600

    added = cli(
        home, "endpoints", "add", "local", "--base-url", "http://127.0.0.1:9/v1",
        "--api-key-stdin", stdin="sk-local-test\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert mode(home / "secret.key") == 0o600

    (home / "exports").mkdir()
    outside = tmp_path / "report.md"
    for target in (home / "report.md", home / "exports" / "best.json", outside):
        fmt = "json" if target.suffix == ".json" else "report"
        exported = cli(home, "export", "quickstart", "--format", fmt, "-o", str(target))
        assert exported.returncode == 0, exported.stderr
    assert mode(home / "report.md") == 0o600
    assert mode(home / "exports" / "best.json") == 0o600
    assert mode(outside) == 0o644  # outside the home, the person's umask decides

    # A loose file in the home is replaced by a private one.
    (home / "report.md").chmod(0o644)
    again = cli(home, "export", "quickstart", "--format", "report", "-o", str(home / "report.md"))
    assert again.returncode == 0, again.stderr
    assert mode(home / "report.md") == 0o600
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]


def test_an_existing_home_keeps_its_mode_with_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    done = cli(home, "cache", "stats")
    assert done.returncode == 0, done.stderr
    assert mode(home) == 0o755
    assert f"chmod 700 {home}" in done.stderr
    assert mode(home / "promptlooper.db") == 0o600


async def test_wal_and_shm_files_are_private_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "home" / "promptlooper.db"
    db = await SqliteDatabase.open(path)
    try:
        await db.execute("INSERT INTO experiments (id, name, created_at) VALUES ('e', 'e', 'now')")
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
    finally:
        await db.close()


async def test_an_existing_databases_files_are_tightened_on_open(tmp_path: Path) -> None:
    path = tmp_path / "home" / "promptlooper.db"
    path.parent.mkdir()
    # Another program keeps the database open in WAL mode, so its -wal and -shm files exist.
    holder = sqlite3.connect(path)
    try:
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("CREATE TABLE kept (x)")
        holder.execute("INSERT INTO kept VALUES (1)")
        holder.commit()
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        for file in files:
            file.chmod(0o644)
        db = await SqliteDatabase.open(path)
        await db.close()
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
        assert holder.execute("SELECT x FROM kept").fetchall() == [(1,)]
    finally:
        holder.close()


def _encrypt_after(barrier: object, key_path: str) -> bytes:
    """In a racing process: wait for the others, then use the key for the first time."""
    barrier.wait()  # type: ignore[attr-defined]
    return SecretBox(Path(key_path)).encrypt("sk-race")


def test_processes_racing_on_a_fresh_home_end_with_one_key(tmp_path: Path) -> None:
    key_path = tmp_path / "home" / "secret.key"
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(RACERS)
    with context.Pool(RACERS) as pool:
        tokens = pool.starmap(_encrypt_after, [(barrier, str(key_path))] * RACERS)
    # Every process encrypted with the key that is now on disk.
    box = SecretBox(key_path)
    assert [box.decrypt(token) for token in tokens] == ["sk-race"] * RACERS
    assert mode(key_path) == 0o600
    assert mode(key_path.parent) == 0o700
    assert [p.name for p in key_path.parent.iterdir()] == ["secret.key"]


def test_threads_racing_on_a_fresh_home_end_with_one_key(tmp_path: Path) -> None:
    key_path = tmp_path / "home" / "secret.key"
    barrier = threading.Barrier(RACERS)
    tokens: list[bytes] = []
    failures: list[BaseException] = []

    def race() -> None:
        try:
            tokens.append(_encrypt_after(barrier, str(key_path)))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    box = SecretBox(key_path)
    assert [box.decrypt(token) for token in tokens] == ["sk-race"] * RACERS


@pytest.mark.parametrize(
    ("contents", "problem"),
    [
        (b"", "is empty"),
        (b"this is not a key!\n", "not a base64 key"),
        (base64.urlsafe_b64encode(b"short") + b"\n", "5 bytes where a key has 32"),
    ],
    ids=["empty", "not-base64", "wrong-length"],
)
def test_a_broken_key_file_is_a_one_line_error(
    tmp_path: Path, contents: bytes, problem: str
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    key_path = home / "secret.key"
    key_path.write_bytes(contents)

    with pytest.raises(BadInput) as caught:
        SecretBox(key_path).encrypt("sk-x")
    message = str(caught.value)
    assert str(key_path) in message and problem in message and "delete it" in message
    assert "\n" not in message

    done = cli(
        home, "endpoints", "add", "local", "--base-url", "http://127.0.0.1:9/v1",
        "--api-key-stdin", stdin="sk-local-test\n",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {message}"
    assert key_path.read_bytes() == contents  # never overwritten: it may be restored


def test_a_loose_key_file_is_tightened(tmp_path: Path) -> None:
    key_path = tmp_path / "home" / "secret.key"
    token = SecretBox(key_path).encrypt("sk-loose")
    key_path.chmod(0o644)
    assert SecretBox(key_path).decrypt(token) == "sk-loose"
    assert mode(key_path) == 0o600
