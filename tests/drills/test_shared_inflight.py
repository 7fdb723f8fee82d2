"""Drill: two `promptlooper run` processes on the same experiment and home at the same time
pay for each LLM call once. A call one process is making is waited for by the other (through
the database's claims on calls in flight), not made twice; both finish with the whole
leaderboard.

The endpoint is the simulated one behind a gate that holds every request until both processes
are provably inside the same stretch of the sweep: the first process holds its concurrency's
worth of calls at the gate, and the second process, with more workers, has every slot busy with
the calls the first has not claimed. Without shared claims the second would also be sending
the first's calls, and the gate would count them twice.

Then the claims one by one, between two caches (two owners) on one database file: a waiter
gets the owner's entry, makes the call itself when the owner fails, and takes over at once a
claim whose owner died on this host or whose lease ran out.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from promptlooper_tui.engine.cache import CachedValue, CallCache
from promptlooper_tui.engine.sweep_job import worker_count
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.store.database import Database
from promptlooper_tui.store.sqlite import SqliteDatabase

from ..conftest import make_experiment
from ..helpers import cli

REPEATS = 3
CALLS = 2 * 2 * 3 * REPEATS  # BASE_EXPERIMENT: 2 models x 2 temperatures x 3 items; 1 call each
FIRST_CONCURRENCY = 2
SECOND_CONCURRENCY = 8
#: Generous bounds that only a broken build reaches; nothing waits for them to pass.
WAIT_S = 90.0


class Gate:
    """Requests recorded as they arrive and held until `open()`; then passed to the upstream."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.bodies: list[str] = []
        self._changed = threading.Condition()
        self._open = threading.Event()

    def arrived(self, body: bytes) -> None:
        with self._changed:
            self.bodies.append(json.dumps(json.loads(body), sort_keys=True))
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            reached = self._changed.wait_for(lambda: len(self.bodies) >= count, timeout=WAIT_S)
        assert reached, f"only {len(self.bodies)} of {count} requests reached the gate"

    def pass_through(self) -> None:
        assert self._open.wait(timeout=WAIT_S), "the gate was never opened"

    def open(self) -> None:
        self._open.set()


@contextmanager
def gated_endpoint(upstream: str) -> Iterator[tuple[str, Gate]]:
    """A proxy in front of `upstream` (a base URL ending in /v1); yields its base URL and gate."""
    gate = Gate(upstream)
    client = httpx.Client(timeout=WAIT_S)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            gate.arrived(body)
            gate.pass_through()
            self._forward("POST", body)

        def do_GET(self) -> None:
            self._forward("GET", None)

        def _forward(self, method: str, body: bytes | None) -> None:
            path = self.path.removeprefix("/v1")
            answer = client.request(
                method,
                gate.upstream + path,
                content=body,
                headers={"content-type": "application/json"},
            )
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "text/plain"))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", gate
    finally:
        gate.open()
        server.shutdown()
        server.server_close()
        client.close()


def start_run(home: Path, experiment: Path, *flags: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "promptlooper_tui", "--home", str(home), "run"]
    return subprocess.Popen(
        [*command, str(experiment), "--json", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_two_runs_of_one_experiment_pay_for_each_call_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    experiment = tmp_path / "shared.yaml"
    spec = make_experiment(
        name="shared",
        endpoint="gated",
        sweep={"repeats": REPEATS, "max_concurrency": FIRST_CONCURRENCY},
    )
    experiment.write_text(yaml.safe_dump(spec))
    # The first process can claim at most its workers' calls, so the second has this many
    # calls to claim for itself, enough to fill its every slot.
    assert worker_count(SECOND_CONCURRENCY) - worker_count(FIRST_CONCURRENCY) >= (
        SECOND_CONCURRENCY
    )

    with (
        simulated_endpoint_process("--latency-ms", "20") as upstream,
        gated_endpoint(upstream) as (
            base_url,
            gate,
        ),
    ):
        added = cli(home, "endpoints", "add", "gated", "--base-url", base_url)
        assert added.returncode == 0, added.stderr
        first = start_run(home, experiment)
        gate.wait_for(FIRST_CONCURRENCY)
        second = start_run(home, experiment, "--concurrency", str(SECOND_CONCURRENCY))
        # Deterministic with shared claims: the first process's calls are all held here, and
        # the second's slots fill with calls the first has not claimed.
        gate.wait_for(FIRST_CONCURRENCY + SECOND_CONCURRENCY)
        gate.open()
        results = [(process, *process.communicate(timeout=WAIT_S)) for process in (first, second)]
        upstream_stats = httpx.get(upstream.removesuffix("/v1") + "/_sim/stats").json()

    summaries = []
    for process, stdout, stderr in results:
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
        summaries.append(json.loads(stdout))
    for summary in summaries:
        assert summary["status"] == "completed", summary
        assert summary["runs"]["completed"] == CALLS, summary
        assert len(summary["leaderboard"]) == 4, summary
    boards = [
        sorted((json.dumps(e["config"], sort_keys=True), e["n"]) for e in s["leaderboard"])
        for s in summaries
    ]
    assert boards[0] == boards[1]

    with sqlite3.connect(home / "promptlooper.db") as conn:
        [distinct_keys] = conn.execute("SELECT count(*) FROM cache").fetchone()
        [claims_left] = conn.execute("SELECT count(*) FROM cache_claims").fetchone()
    assert distinct_keys == CALLS
    assert len(gate.bodies) == distinct_keys, "a call was paid twice"
    # Repeats of a call send the same body (the repeat index is only in the cache key).
    assert set(Counter(gate.bodies).values()) == {REPEATS}
    assert upstream_stats["requests"] == distinct_keys
    paid = [s["calls"]["requested"] - s["calls"]["cache_hits"] for s in summaries]
    assert sum(paid) == CALLS, paid
    # The second process got the first's held calls from the first, as cache hits.
    assert summaries[1]["calls"]["cache_hits"] >= FIRST_CONCURRENCY, summaries[1]
    assert claims_left == 0


# -- the claims themselves, between two caches on one database file (two owners) -------------

KEY = "k" * 64


async def open_pair(tmp_path: Path) -> tuple[Database, Database]:
    path = tmp_path / "home" / "promptlooper.db"
    first = await SqliteDatabase.open(path)
    return first, await SqliteDatabase.open(path)


def answer(text: str) -> CachedValue:
    return CachedValue({"text": text}, 3, 2)


def claims_left(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "home" / "promptlooper.db") as conn:
        return int(conn.execute("SELECT count(*) FROM cache_claims").fetchone()[0])


async def claims_in(db: Database) -> list[tuple[str, str]]:
    return [(row["key"], row["owner"]) for row in await db.fetchall("SELECT * FROM cache_claims")]


async def test_a_waiter_makes_the_call_itself_when_the_owner_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_a, db_b = await open_pair(tmp_path)
    cache_a, cache_b = CallCache(db_a), CallCache(db_b)
    a_calling, a_may_fail, b_waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    wait_for = CallCache._wait_for

    async def noticed_wait(self: CallCache, key: str, fresh_since: str) -> CachedValue | None:
        if self is cache_b:
            b_waiting.set()
        return await wait_for(self, key, fresh_since)

    monkeypatch.setattr(CallCache, "_wait_for", noticed_wait)

    async def failing_call() -> CachedValue:
        a_calling.set()
        await a_may_fail.wait()
        raise RuntimeError("endpoint refused")

    b_calls = 0

    async def b_call() -> CachedValue:
        nonlocal b_calls
        b_calls += 1
        return answer("from b")

    try:
        async with asyncio.timeout(WAIT_S):
            a = asyncio.create_task(cache_a.get_or_call(KEY, "chat", failing_call))
            await a_calling.wait()
            assert [owner for _, owner in await claims_in(db_b)] == [cache_a._claims.owner]
            b = asyncio.create_task(cache_b.get_or_call(KEY, "chat", b_call))
            await b_waiting.wait()
            assert b_calls == 0
            a_may_fail.set()
            with pytest.raises(RuntimeError):
                await a
            assert await b == (answer("from b"), False)
        assert b_calls == 1
        assert await cache_a.get(KEY) == answer("from b")
    finally:
        await db_a.close()
        await db_b.close()
    # Closing commits what was queued: no claim outlives its owner's shutdown.
    assert claims_left(tmp_path) == 0


async def test_a_waiter_gets_the_owners_entry_as_a_hit(tmp_path: Path) -> None:
    db_a, db_b = await open_pair(tmp_path)
    cache_a, cache_b = CallCache(db_a), CallCache(db_b)
    a_calling, a_may_answer = asyncio.Event(), asyncio.Event()

    async def a_call() -> CachedValue:
        a_calling.set()
        await a_may_answer.wait()
        return answer("from a")

    async def b_call() -> CachedValue:
        raise AssertionError("the call was made twice")

    try:
        async with asyncio.timeout(WAIT_S):
            a = asyncio.create_task(cache_a.get_or_call(KEY, "chat", a_call))
            await a_calling.wait()
            b = asyncio.create_task(cache_b.get_or_call(KEY, "chat", b_call))
            a_may_answer.set()
            assert await a == (answer("from a"), False)
            assert await b == (answer("from a"), True)
    finally:
        await db_a.close()
        await db_b.close()
    # Closing commits what was queued: no claim outlives its owner's shutdown.
    assert claims_left(tmp_path) == 0


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", ["dead-owner-on-this-host", "expired-lease-elsewhere"])
async def test_a_stale_claim_is_taken_over_at_once(tmp_path: Path, stale: str) -> None:
    if stale == "dead-owner-on-this-host":
        # Its lease runs for a day: only seeing that its owner is gone frees it.
        host, pid, expires_in = socket.gethostname(), dead_pid(), 86_400.0
    else:
        host, pid, expires_in = "another-host", 1, -1.0
    db_a, db_b = await open_pair(tmp_path)
    await db_a.execute(
        "INSERT INTO cache_claims (key, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)",
        (KEY, f"{host}:{pid}:gone", host, pid, time.time() + expires_in),
    )
    cache = CallCache(db_b)

    async def call() -> CachedValue:
        return answer("fresh")

    try:
        # A live claim would keep this waiting for a day: the bound only catches that.
        async with asyncio.timeout(WAIT_S):
            assert await cache.get_or_call(KEY, "chat", call) == (answer("fresh"), False)
    finally:
        await db_a.close()
        await db_b.close()
    # Closing commits what was queued: no claim outlives its owner's shutdown.
    assert claims_left(tmp_path) == 0
