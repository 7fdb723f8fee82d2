"""The daemon under load: API readers and websocket subscribers while a sweep runs.

    python -m bench.daemon_load                  # 200 API clients, 50 subscribers
    python -m bench.daemon_load --clients 50 --subscribers 10 --runs 600

`promptlooper serve` runs in its own process (as a user runs it) with a sweep against the
simulated endpoint (a third process, with latency). While the sweep runs, `--clients` API
clients each read a page of runs and the leaderboard in a loop, and `--subscribers` websocket
clients follow `/ws` from the start. Prints request latencies (p50/p99), errors, and for each
subscriber whether it got every event in order (contiguous `seq`, no lag notice), with the
bounds it is held to; exits 1 when a bound is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from .common import experiment, free_port, simulator

TOKEN = "bench-daemon-load-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Bounds the run is held to (on a 2-core machine where clients, daemon and simulator share
#: the cores).
P99_BOUND_MS = 1000.0
ERRORS_BOUND = 0


@dataclass
class Latencies:
    """Request latencies (ms) and failures of one kind of request."""

    ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, started: float, response: httpx.Response) -> None:
        self.ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            self.errors.append(f"HTTP {response.status_code}")

    def line(self, name: str) -> str:
        ordered = sorted(self.ms)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
        p50 = statistics.median(ordered) if ordered else 0.0
        return (
            f"{name:<12} {len(ordered):>7} requests  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"errors {len(self.errors)}"
        )

    @property
    def p99(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


@dataclass
class Daemon:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU the daemon process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def daemon(home: Path) -> AsyncIterator[Daemon]:
    """`promptlooper serve` in its own process, once its API answers."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "promptlooper_tui", "serve", "--home", str(home)),
        *("--port", str(port), "--mcp-port", str(free_port())),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PROMPTLOOPER_TOKEN": TOKEN},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/api/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield Daemon(base, process.pid)
    finally:
        process.terminate()
        await process.wait()


async def reader(
    client: httpx.AsyncClient, experiment_name: str, done: asyncio.Event
) -> tuple[Latencies, ...]:
    """One API client: connects (its first request, `/api/health`), then reads a page of runs
    and the leaderboard in turn until the sweep is done."""
    first, runs, board = Latencies(), Latencies(), Latencies()
    async with client:
        started = time.perf_counter()
        first.add(started, await client.get("/api/health"))
        while not done.is_set():
            for path, params, into in (
                ("/api/runs", {"experiment": experiment_name, "limit": 20}, runs),
                (f"/api/experiments/{experiment_name}/leaderboard", {"top": 10}, board),
            ):
                started = time.perf_counter()
                try:
                    into.add(started, await client.get(path, params=params))
                except httpx.HTTPError as exc:
                    into.errors.append(type(exc).__name__)
    return first, runs, board


#: (events received, all of them in order with none skipped, notice types received)
FeedResult = tuple[int, bool, list[str]]


async def subscriber(base: str, ready: asyncio.Barrier) -> FeedResult:
    """Follow `/ws` from the first event until `sweep.completed`."""
    url = base.replace("http://", "ws://") + "/ws?since=0"
    seqs: list[int] = []
    notices: list[str] = []
    async with connect(url, additional_headers=AUTH, max_size=None) as ws:
        await ready.wait()
        async for raw in ws:
            message = json.loads(raw)
            if "seq" not in message:
                notices.append(message["type"])
                continue
            seqs.append(message["seq"])
            if message["type"] == "sweep.completed":
                break
    contiguous = seqs == list(range(1, len(seqs) + 1))
    return len(seqs), contiguous and not notices, notices


def follow_feed(base: str, count: int, ready: EventType, results: Queue[list[FeedResult]]) -> None:
    """A process of `count` subscribers (their JSON parsing must not slow the API clients):
    sets `ready` once all are connected, then puts their results on `results`."""

    async def main() -> list[FeedResult]:
        connected = asyncio.Barrier(count + 1)
        feeds = [asyncio.create_task(subscriber(base, connected)) for _ in range(count)]
        await connected.wait()
        ready.set()
        return list(await asyncio.gather(*feeds))

    results.put(asyncio.run(main()))


async def run(clients: int, subscribers: int, runs: int, latency_ms: float) -> bool:
    items = 50
    configs = max(1, runs // (items * 2))
    with (
        simulator("--latency-ms", str(latency_ms)) as endpoint,
        tempfile.TemporaryDirectory() as home,
    ):
        async with (
            daemon(Path(home)) as served,
            httpx.AsyncClient(base_url=served.base, headers=AUTH, timeout=30) as admin,
        ):
            text = experiment("load", endpoint, configs=configs, items=items, repeats=2)
            (await admin.post("/api/experiments", json={"yaml": text})).raise_for_status()
            spawn = multiprocessing.get_context("spawn")
            ready, feed_results = spawn.Event(), spawn.Queue()
            feeds = spawn.Process(
                target=follow_feed, args=(served.base, subscribers, ready, feed_results)
            )
            feeds.start()
            assert await asyncio.to_thread(ready.wait, 60), "subscribers did not connect"
            started, cpu = time.perf_counter(), served.cpu_seconds()
            sweep = await admin.post("/api/experiments/load/sweeps", json={"concurrency": 16})
            sweep_id = sweep.json()["sweep_id"]
            done = asyncio.Event()
            # Built before any is timed, sharing one TLS context (unused over http, but costly
            # to build 200 times), so the figures are the daemon's, not the clients' set-up.
            tls = ssl.create_default_context()
            readers = [
                asyncio.create_task(reader(client, "load", done))
                for client in [
                    httpx.AsyncClient(base_url=served.base, headers=AUTH, timeout=60, verify=tls)
                    for _ in range(clients)
                ]
            ]
            results: list[FeedResult] = await asyncio.to_thread(feed_results.get, True, 600)
            feeds.join()
            sweep_wall = time.perf_counter() - started
            daemon_cpu = served.cpu_seconds() - cpu
            done.set()
            read = await asyncio.gather(*readers)
            summary = (await admin.get(f"/api/sweeps/{sweep_id}")).json()

    connect_latency, runs_latency, board_latency = Latencies(), Latencies(), Latencies()
    for per_client in read:
        for total_of_kind, of_client in zip(
            (connect_latency, runs_latency, board_latency), per_client, strict=True
        ):
            total_of_kind.ms += of_client.ms
            total_of_kind.errors += of_client.errors
    events = {received for received, _, _ in results}
    complete = sum(in_order for _, in_order, _ in results)
    total = summary["runs"]["completed"]
    print(
        f"sweep        {total} runs ({summary['status']}), c=16, {latency_ms:.0f} ms endpoint "
        f"latency, {sweep_wall:.2f} s under load ({total / sweep_wall:.0f} runs/s), "
        f"daemon CPU {daemon_cpu:.2f} s"
    )
    print(f"API clients  {clients} concurrent, each: runs page (20) then leaderboard, in a loop")
    print(connect_latency.line("  connect"))
    print(runs_latency.line("  runs"))
    print(board_latency.line("  leaderboard"))
    print(
        f"websocket    {subscribers} subscribers, events each: {sorted(events)}; "
        f"complete and in order: {complete}/{subscribers}"
    )
    notices = sorted({notice for _, _, kinds in results for notice in kinds})
    if notices:
        print(f"  notices: {', '.join(notices)}")
    errors = len(connect_latency.errors) + len(runs_latency.errors) + len(board_latency.errors)
    worst = max(runs_latency.p99, board_latency.p99)
    checks = {
        f"p99 of reads <= {P99_BOUND_MS:.0f} ms (worst {worst:.1f})": worst <= P99_BOUND_MS,
        f"errors <= {ERRORS_BOUND} ({errors})": errors <= ERRORS_BOUND,
        f"every subscriber got every event in order ({complete}/{subscribers})": (
            complete == subscribers and len(events) == 1
        ),
        f"sweep completed ({summary['status']})": summary["status"] == "completed",
    }
    for check, ok in checks.items():
        print(f"bound        {'ok  ' if ok else 'MISS'} {check}")
    return all(checks.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent API clients")
    parser.add_argument("--subscribers", type=int, default=50, help="websocket subscribers")
    parser.add_argument("--runs", type=int, default=2000, help="runs in the sweep")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="endpoint latency")
    args = parser.parse_args()
    ok = asyncio.run(run(args.clients, args.subscribers, args.runs, args.latency_ms))
    sys.exit(0 if ok else 1)
