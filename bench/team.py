"""Team server (issue 12): what a `promptlooper worker` adds to a sweep, and what PostgreSQL
costs a single process against SQLite.

    python -m bench.team                      # 5,000 runs at concurrency 64, 3 rounds
    python -m bench.team --runs 2000 --rounds 1

On a zero-latency simulated endpoint (its own process), the same sweep of one-stage runs with
two cheap scorers, each time on a fresh store (nothing comes from the cache):

- `sqlite`: one process (this one, through the Workbench) on a SQLite file;
- `postgresql`: the same on a fresh database of a throwaway PostgreSQL cluster
  (`tests.fixtures.pg_cluster.PgCluster`), no worker about: runs come from the plan;
- `postgresql + worker`: the same, with one `promptlooper worker` process started first, so
  the runs become work units that this process and the worker claim.

The rounds alternate the three, so a noisy neighbour hurts each alike; medians are printed
beside the aims: scale-out (`postgresql + worker` over `postgresql`) >= 1.6x the runs/s, and
`postgresql` >= 0.7x of `sqlite`. Beside each, where the CPU went, in ms per run: this process,
the worker, the PostgreSQL server (all its processes), the simulated endpoint; and how many of
the machine's cores were busy during the sweep (every process here, other people's included),
which bounds what a second process can add. For reference, the same comparison on a 50 ms
endpoint at concurrency 16 (2,000 runs, once), where the runs wait on calls rather than CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from promptlooper_tui.garbage_collection import collect_less_often
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.store import work
from promptlooper_tui.store.location import parse_database_url
from promptlooper_tui.workbench import SweepOverrides, open_workbench
from tests.fixtures.pg_cluster import PgCluster

from .common import experiment

SCALE_OUT_AIM = 1.6
POSTGRES_AIM = 0.7
#: How long a started worker may take to report in (the interpreter and the CLI's imports).
WORKER_START_S = 60.0
_TICKS = os.sysconf("SC_CLK_TCK")
LABELS = ("sqlite", "postgresql", "postgresql + worker")
#: The latency-bound pair printed for reference (no aim): a worker doubles the calls in flight.
LATENCY_RUNS, LATENCY_MS, LATENCY_CONCURRENCY = 2000, 50.0, 16


@dataclass
class Measure:
    wall: float
    runs: int
    #: CPU seconds during the sweep: this process, the worker, the PostgreSQL server, the
    #: simulated endpoint; and every core of the machine.
    cpu: dict[str, float]
    machine: float

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.wall

    def cpu_ms_per_run(self, who: str) -> float:
        return self.cpu.get(who, 0.0) * 1000 / self.runs


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent on work since boot (/proc/stat: all
    but idle, iowait and time stolen by the hypervisor)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = stat.readline().split()[1:8]
    return sum(int(n) for n in (user, nice, system, irq, softirq)) / _TICKS


def process_cpu_s(pid: int) -> float:
    """CPU seconds of process `pid` and of its children it has waited for (a PostgreSQL
    server's backends that have exited), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(n) for n in fields[11:15]) / _TICKS


def children_of(parent: int, command_word: str = "") -> list[int]:
    """The running children of process `parent` whose command line holds `command_word`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and command_word in command:
            found.append(int(entry.name))
    return found


def server_processes(cluster: PgCluster) -> Callable[[], list[int]]:
    """The postmaster and the server processes it runs now (backends, background writer...),
    listed anew at each look: a backend opened during the sweep counts whole, one that ended
    is in the postmaster's figure for its waited-for children."""
    assert cluster.directory is not None
    postmaster = int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
    return lambda: [postmaster, *children_of(postmaster)]


def cpu_snapshot(watched: dict[str, Callable[[], list[int]]]) -> dict[str, float]:
    taken = {"this process": time.process_time()}
    for who, pids in watched.items():
        total = 0.0
        for pid in pids():
            try:
                total += process_cpu_s(pid)
            except OSError:
                continue  # ended between listing and reading: its parent's figure has it
        taken[who] = total
    return taken


async def sweep(
    settings: Settings, text: str, concurrency: int, watched: dict[str, Callable[[], list[int]]]
) -> Measure:
    async with open_workbench(settings) as wb:
        imported = await wb.import_text(text)
        sweep_id = await wb.create_sweep(imported.id, SweepOverrides(concurrency=concurrency))
        before, machine = cpu_snapshot(watched), machine_busy_s()
        started = time.perf_counter()
        summary = await wb.run_sweep(sweep_id)
        wall = time.perf_counter() - started
        after, machine = cpu_snapshot(watched), machine_busy_s() - machine
    assert summary.status == "completed", summary.status
    assert summary.calls.cache_hits == 0, "every call went to the endpoint"
    cpu = {who: after[who] - before[who] for who in after}
    return Measure(wall, summary.runs.completed, cpu, machine)


@asynccontextmanager
async def worker(url: str, home: Path) -> AsyncIterator[int]:
    """`promptlooper worker` on `url` until the block ends, once it has reported in; its pid."""
    log = home / "worker.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "promptlooper_tui", "--home", str(home), "worker", "--db", url),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        async with open_workbench(Settings(home, parse_database_url(url))) as wb:
            deadline = time.monotonic() + WORKER_START_S
            while not await work.workers_seen_since(wb.db, time.time() - 30):
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start: {log.read_text()!r}")
                await asyncio.sleep(0.05)
        yield process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def round_of_three(
    cluster: PgCluster, text: str, concurrency: int, scratch: Path
) -> dict[str, Measure]:
    endpoint = children_of(os.getpid(), "simulate-endpoint")
    watched = {"endpoint": lambda: endpoint, "postgresql": server_processes(cluster)}
    home = Path(tempfile.mkdtemp(dir=scratch))
    measures = {"sqlite": await sweep(Settings(home), text, concurrency, watched)}
    for label in LABELS[1:]:
        url = await cluster.create_database(f"bench_{secrets.token_hex(6)}")
        settings = Settings(Path(tempfile.mkdtemp(dir=scratch)), parse_database_url(url))
        if label == "postgresql":
            measures[label] = await sweep(settings, text, concurrency, watched)
            continue
        async with worker(url, settings.home) as pid:
            with_worker = {**watched, "worker": lambda: [pid]}
            measures[label] = await sweep(settings, text, concurrency, with_worker)
    return measures


def show(label: str, measures: list[Measure]) -> float:
    rate = statistics.median(m.runs_per_s for m in measures)
    each = " ".join(f"{m.runs_per_s:5.0f}" for m in measures)
    where = "  ".join(
        f"{who} {statistics.median(m.cpu_ms_per_run(who) for m in measures):4.2f}"
        for who in ("this process", "worker", "postgresql", "endpoint")
    )
    busy = statistics.median(m.machine / m.wall for m in measures)
    print(f"{label:<20} {rate:6.0f} runs/s (rounds: {each})")
    print(f"{'':<20} CPU ms/run: {where}; machine cores busy {busy:4.2f}")
    return rate


async def latency_bound_pair(
    cluster: PgCluster, runs: int, latency_ms: float, concurrency: int, scratch: Path
) -> tuple[Measure, Measure]:
    """The same sweep on a `latency_ms` endpoint by one process, then by one process + one
    worker: where calls wait on the endpoint, a worker adds its own calls in flight."""
    with simulated_endpoint_process("--latency-ms", str(latency_ms)) as base_url:
        text = experiment("team-latency", base_url, configs=runs // 50, items=50, repeats=1)
        watched = {"postgresql": server_processes(cluster)}
        pair = []
        for with_worker in (False, True):
            url = await cluster.create_database(f"bench_{secrets.token_hex(6)}")
            settings = Settings(Path(tempfile.mkdtemp(dir=scratch)), parse_database_url(url))
            if not with_worker:
                pair.append(await sweep(settings, text, concurrency, watched))
                continue
            async with worker(url, settings.home) as pid:
                helped = {**watched, "worker": lambda: [pid]}
                pair.append(await sweep(settings, text, concurrency, helped))
    return pair[0], pair[1]


async def main(runs: int, concurrency: int, rounds: int) -> None:
    collect_less_often()  # as the CLI and the daemon do
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    print(
        f"{runs} runs, zero latency, concurrency {concurrency}, {rounds} rounds; "
        f"{cores} cores, load average {load[0]:.1f} {load[1]:.1f} at start"
    )
    results: dict[str, list[Measure]] = {label: [] for label in LABELS}
    with (
        PgCluster() as cluster,
        simulated_endpoint_process() as base_url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        text = experiment("team", base_url, configs=runs // 50, items=50, repeats=1)
        for _ in range(rounds):
            measured = await round_of_three(cluster, text, concurrency, Path(scratch))
            for label, measure in measured.items():
                results[label].append(measure)
        alone, helped = await latency_bound_pair(
            cluster, LATENCY_RUNS, LATENCY_MS, LATENCY_CONCURRENCY, Path(scratch)
        )
    rates = {label: show(label, measures) for label, measures in results.items()}
    scale_out = rates["postgresql + worker"] / rates["postgresql"]
    postgres = rates["postgresql"] / rates["sqlite"]
    print(
        f"scale-out: one process + one worker / one process = {scale_out:.2f}x "
        f"(aim >= {SCALE_OUT_AIM}x) {'ok' if scale_out >= SCALE_OUT_AIM else 'MISSED'}"
    )
    print(
        f"PostgreSQL / SQLite, one process = {postgres:.2f}x "
        f"(aim >= {POSTGRES_AIM}x) {'ok' if postgres >= POSTGRES_AIM else 'MISSED'}"
    )
    print(
        f"for reference, {LATENCY_RUNS} runs at {LATENCY_MS:g} ms, concurrency "
        f"{LATENCY_CONCURRENCY}: one process {alone.runs_per_s:.0f} runs/s, + one worker "
        f"{helped.runs_per_s:.0f} runs/s = {helped.runs_per_s / alone.runs_per_s:.2f}x "
        f"(each process keeps {LATENCY_CONCURRENCY} calls in flight: at most 2x)"
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.concurrency, options.rounds))
