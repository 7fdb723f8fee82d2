"""The throwaway PostgreSQL of the tests: a cluster starts and stops, each test gets an empty
database of its own, and `.ci/run`'s start/stop commands round-trip."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.fixtures.pg_cluster import (
    PgCluster,
    PostgresUnavailable,
    create_database,
    drop_database,
    scratch_root,
    server_binaries,
)

ROOT = Path(__file__).resolve().parents[2]
#: A disposable cluster's settings: durability off, room for many test workers.
DISPOSABLE = ("fsync", "synchronous_commit", "full_page_writes", "max_connections")


async def _settings(url: str, *names: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [await connection.fetchval(f"SHOW {name}") for name in names]
    finally:
        await connection.close()


@pytest.mark.parametrize("turn", ["first", "second"])
async def test_each_test_gets_an_empty_database_of_its_own(pg_url: str, turn: str) -> None:
    name = urlsplit(pg_url).path.lstrip("/")
    assert name.startswith("t_")
    connection = await asyncpg.connect(pg_url)
    try:
        assert await connection.fetchval("SELECT current_database()") == name
        tables = (
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        assert await connection.fetchval(tables) == 0
        # Left behind on purpose: had the other turn been given this database, it would be here.
        await connection.execute("CREATE TABLE left_behind (turn text)")
        await connection.execute("INSERT INTO left_behind VALUES ($1)", turn)
    finally:
        await connection.close()


def test_a_synchronous_test_gets_a_database_url_too(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://") and "/t_" in pg_url


async def test_a_dropped_database_is_gone_even_while_someone_is_connected(pg_server: str) -> None:
    name = f"t_dropped_{secrets.token_hex(4)}"
    still_open = await asyncpg.connect(await create_database(pg_server, name))
    await drop_database(pg_server, name)
    assert not await _alive(still_open)
    still_open.terminate()
    admin = await asyncpg.connect(pg_server)
    try:
        gone = "SELECT count(*) FROM pg_database WHERE datname = $1"
        assert await admin.fetchval(gone, name) == 0
    finally:
        await admin.close()


async def _alive(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    return True


def test_a_cluster_serves_tcp_and_its_socket_then_stop_removes_it(pg_binaries: Path) -> None:
    with PgCluster() as cluster:
        assert cluster.directory is not None
        directory = cluster.directory
        assert asyncio.run(_settings(cluster.url, *DISPOSABLE)) == ["off"] * 3 + ["200"]
        assert asyncio.run(_settings(cluster.url, "listen_addresses")) == ["127.0.0.1"]
        url = asyncio.run(cluster.create_database("t_own"))
        assert url == f"postgresql://postgres@127.0.0.1:{cluster.port}/t_own"
        by_socket = f"postgresql://postgres@/t_own?host={directory / 'run'}&port={cluster.port}"
        assert asyncio.run(_settings(by_socket, "port")) == [str(cluster.port)]
    assert not directory.exists()
    with pytest.raises(OSError):
        asyncio.run(asyncpg.connect(cluster.url, timeout=5))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.fixtures.pg_cluster", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_ci_commands_start_a_cluster_and_stop_it(pg_binaries: Path) -> None:
    # Not tmp_path: as root the cluster runs as the postgres user, who cannot enter pytest's
    # private temp folders. `stop` removes the folder.
    directory = Path(tempfile.mkdtemp(prefix="pg-cli-", dir=scratch_root()))
    started = _cli("start", str(directory))
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/postgres")
    try:
        assert asyncio.run(_settings(url, *DISPOSABLE)) == ["off"] * 3 + ["200"]
    finally:
        stopped = _cli("stop", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not directory.exists()
    with pytest.raises(OSError):
        asyncio.run(asyncpg.connect(url, timeout=5))


def test_stop_of_a_folder_without_a_cluster_says_so(tmp_path: Path) -> None:
    stopped = _cli("stop", str(tmp_path))
    assert stopped.returncode == 1
    assert stopped.stderr.strip() == f"pg_cluster stop: {tmp_path}: no cluster was started there"


def test_missing_binaries_give_a_one_line_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    with pytest.raises(PostgresUnavailable) as raised:
        server_binaries()
    reason = str(raised.value)
    assert "\n" not in reason and "initdb" in reason and "PG_BIN" in reason
