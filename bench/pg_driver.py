"""Which async PostgreSQL driver the store should use: asyncpg or psycopg 3, measured.

    .venv/bin/pip install 'psycopg[binary]'   # the loser: no dependency of the project
    python -m bench.pg_driver [--rounds 5]

On a throwaway cluster (tests/fixtures/pg_cluster.py, over TCP on 127.0.0.1), what the store
does, per driver: (a) 2,000 sequential one-row SELECTs by primary key (wall and client CPU per
query), (b) 20 transactions each inserting 500 rows of 8 columns with executemany (rows/s and
client CPU per row), (c) one SELECT of 10,000 rows (wall and client CPU), (d) a LISTEN/NOTIFY
round trip between two connections. Each figure is the median of `--rounds` rounds, the drivers
taking turns within a round. Client CPU (time.process_time) is what the driver costs this
process; on a 2-core machine that also runs the server, it matters most. psycopg runs with its
default tuple rows, its fastest: a row type that reads like sqlite3.Row would cost it more.
Then the differences the store meets: row objects, LISTEN/NOTIFY, and what `sum(bigint)`
(a numeric) comes back as.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import psycopg

from tests.fixtures.pg_cluster import PgCluster

LOOKUPS = 2_000
BATCH_ROWS = 500
BATCHES = 20
FETCH_ROWS = 10_000

SCHEMA = """
CREATE TABLE runs_{driver} (
    id bigint PRIMARY KEY, sweep_id bigint NOT NULL, config text NOT NULL, item integer NOT NULL,
    output text NOT NULL, tokens integer NOT NULL, cost double precision NOT NULL,
    created_at timestamptz NOT NULL
)
"""
COLUMNS = "id, sweep_id, config, item, output, tokens, cost, created_at"


@dataclass
class Figures:
    lookup_us: float = 0.0
    lookup_cpu_us: float = 0.0
    insert_rows_per_s: float = 0.0
    insert_cpu_us_per_row: float = 0.0
    fetch_ms: float = 0.0
    fetch_cpu_ms: float = 0.0
    notify_us: float = 0.0


def _rows(start: int, count: int) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [
        (i, 7, f"config-{i % 16}", i % 300, "an answer of a few words " * 4, 120, 0.00042, now)
        for i in range(start, start + count)
    ]


async def _timed(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


class AsyncpgCase:
    name = "asyncpg"

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        self.listener = await asyncpg.connect(self.url)

    async def close(self) -> None:
        await self.conn.close()
        await self.listener.close()

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def lookups(self, ids: list[int]) -> None:
        query = f"SELECT {COLUMNS} FROM runs_asyncpg WHERE id = $1"
        for i in ids:
            await self.conn.fetchrow(query, i)

    async def insert(self, rows: list[tuple[Any, ...]]) -> None:
        query = f"INSERT INTO runs_asyncpg ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        async with self.conn.transaction():
            await self.conn.executemany(query, rows)

    async def fetch_all(self) -> None:
        rows = await self.conn.fetch(f"SELECT {COLUMNS} FROM runs_asyncpg ORDER BY id")
        assert len(rows) >= FETCH_ROWS

    async def notify_round_trip(self) -> float:
        arrived: asyncio.Queue[str] = asyncio.Queue()

        def on_notify(*args: Any) -> None:
            arrived.put_nowait(args[3])

        await self.listener.add_listener("events", on_notify)
        started = time.perf_counter()
        await self.conn.execute("SELECT pg_notify('events', 'run 1')")
        assert await asyncio.wait_for(arrived.get(), 5) == "run 1"
        elapsed = time.perf_counter() - started
        await self.listener.remove_listener("events", on_notify)
        return elapsed

    async def traits(self) -> dict[str, str]:
        row = await self.conn.fetchrow("SELECT 1::bigint AS id, 'a' AS name")
        assert row is not None
        both = row["id"] == row[0] == 1 and dict(row) == {"id": 1, "name": "a"}
        total = await self.conn.fetchval("SELECT sum(x) FROM (VALUES (1::bigint)) AS t(x)")
        return {
            "row object": f"{type(row).__name__}: row['col'], row[0], dict(row): {both}",
            "sum(bigint)": f"{type(total).__name__} {total!r}",
            "LISTEN/NOTIFY": "connection.add_listener(channel, callback)",
        }


class PsycopgCase:
    name = "psycopg"

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self) -> None:
        self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        self.listener = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        self.cursor = self.conn.cursor()

    async def close(self) -> None:
        await self.conn.close()
        await self.listener.close()

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def lookups(self, ids: list[int]) -> None:
        query = f"SELECT {COLUMNS} FROM runs_psycopg WHERE id = %s"
        for i in ids:
            await self.cursor.execute(query, (i,))
            await self.cursor.fetchone()

    async def insert(self, rows: list[tuple[Any, ...]]) -> None:
        query = f"INSERT INTO runs_psycopg ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        async with self.conn.transaction(), self.conn.cursor() as cursor:
            await cursor.executemany(query, rows)

    async def fetch_all(self) -> None:
        await self.cursor.execute(f"SELECT {COLUMNS} FROM runs_psycopg ORDER BY id")
        assert len(await self.cursor.fetchall()) >= FETCH_ROWS

    async def notify_round_trip(self) -> float:
        await self.listener.execute("LISTEN events")
        started = time.perf_counter()
        await self.conn.execute("SELECT pg_notify('events', 'run 1')")
        async for notice in self.listener.notifies(timeout=5, stop_after=1):
            assert notice.payload == "run 1"
        elapsed = time.perf_counter() - started
        await self.listener.execute("UNLISTEN events")
        return elapsed

    async def traits(self) -> dict[str, str]:
        cursor = await self.conn.execute("SELECT 1::bigint AS id, 'a' AS name")
        row = await cursor.fetchone()
        cursor = await self.conn.execute("SELECT sum(x) FROM (VALUES (1::bigint)) AS t(x)")
        (total,) = await cursor.fetchone() or (None,)
        return {
            "row object": f"{type(row).__name__} by default (row[0] only); dict_row: row['col'] "
            "only; both needs a row factory of our own",
            "sum(bigint)": f"{type(total).__name__} {total!r}",
            "LISTEN/NOTIFY": "LISTEN, then async for n in connection.notifies() (its own task)",
        }


async def _round(case: AsyncpgCase | PsycopgCase, first_id: int) -> Figures:
    figures = Figures()
    ids = list(range(1, FETCH_ROWS + 1))[:: FETCH_ROWS // LOOKUPS]
    wall, cpu = await _timed(lambda: case.lookups(ids))
    figures.lookup_us, figures.lookup_cpu_us = wall / len(ids) * 1e6, cpu / len(ids) * 1e6
    walls, cpus = 0.0, 0.0
    for batch in range(BATCHES):
        rows = _rows(first_id + batch * BATCH_ROWS, BATCH_ROWS)
        wall, cpu = await _timed(lambda rows=rows: case.insert(rows))
        walls, cpus = walls + wall, cpus + cpu
    figures.insert_rows_per_s = BATCHES * BATCH_ROWS / walls
    figures.insert_cpu_us_per_row = cpus / (BATCHES * BATCH_ROWS) * 1e6
    wall, cpu = await _timed(case.fetch_all)
    figures.fetch_ms, figures.fetch_cpu_ms = wall * 1e3, cpu * 1e3
    trips = [await case.notify_round_trip() for _ in range(50)]
    figures.notify_us = statistics.median(trips) * 1e6
    return figures


def _median(rounds: list[Figures]) -> Figures:
    fields = Figures.__dataclass_fields__
    return Figures(**{f: statistics.median(getattr(r, f) for r in rounds) for f in fields})


async def _bench(url: str, rounds: int) -> None:
    cases = [AsyncpgCase(url), PsycopgCase(url)]
    for case in cases:
        await case.open()
        await case.execute(SCHEMA.format(driver=case.name))
        await case.insert(_rows(1, FETCH_ROWS))
    results: dict[str, list[Figures]] = {case.name: [] for case in cases}
    for number in range(rounds):
        for case in cases:
            first_id = FETCH_ROWS + 1 + number * BATCHES * BATCH_ROWS
            results[case.name].append(await _round(case, first_id))
    traits = {case.name: await case.traits() for case in cases}
    for case in cases:
        await case.close()
    _report({name: _median(figures) for name, figures in results.items()}, traits, rounds)


def _report(figures: dict[str, Figures], traits: dict[str, dict[str, str]], rounds: int) -> None:
    lines = [
        (f"(a) SELECT by key, {LOOKUPS:,} sequential: µs each", "lookup_us", ".0f"),
        ("(d)   client CPU µs per SELECT", "lookup_cpu_us", ".0f"),
        (
            f"(b) INSERT {BATCH_ROWS} rows × {BATCHES} transactions: rows/s",
            "insert_rows_per_s",
            ",.0f",
        ),
        ("(d)   client CPU µs per inserted row", "insert_cpu_us_per_row", ".1f"),
        (f"(c) fetch {FETCH_ROWS:,} rows: ms", "fetch_ms", ".1f"),
        ("    client CPU ms for the fetch", "fetch_cpu_ms", ".1f"),
        ("    NOTIFY → listener round trip: µs", "notify_us", ".0f"),
    ]
    names = list(figures)
    print(f"medians of {rounds} rounds, TCP on 127.0.0.1")
    print(f"{'':58}" + "".join(f"{name:>12}" for name in names))
    for label, field, spec in lines:
        values = "".join(f"{format(getattr(figures[n], field), spec):>12}" for n in names)
        print(f"{label:58}{values}")
    for name in names:
        print(f"\n{name}:")
        for key, value in traits[name].items():
            print(f"  {key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with PgCluster() as cluster:
        url = asyncio.run(cluster.create_database("bench_drivers"))
        asyncio.run(_bench(url, options.rounds))


if __name__ == "__main__":
    main()
