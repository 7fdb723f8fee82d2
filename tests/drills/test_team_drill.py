"""The team-server drill (issue 12, DESIGN §10): on PostgreSQL, a daemon, three `promptlooper
worker` processes and a `promptlooper run` that starts a 3,000-run sweep at 100 ms a call; the
starter and one worker are SIGKILLed mid-sweep. The sweep completes, every run exactly once,
the endpoint is paid twice for no more than the killed processes had in flight, and an app
instance on the same database saw the runs of the other processes land live.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from promptlooper_tui.domain.events import Event
from promptlooper_tui.engine.sweep_job import worker_count
from promptlooper_tui.engine.work_leases import LEASE_S
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.store import work
from promptlooper_tui.store.location import parse_database_url
from promptlooper_tui.tui.factory import make_app

from ..conftest import make_experiment
from ..helpers import free_port, until

PROMPTLOOPER = str(Path(sys.executable).with_name("promptlooper"))
LATENCY_MS = 100
#: 2 models x 15 temperatures x 100 items, one call each: 3,000 runs whose requests all differ,
#: so the endpoint's log tells each run's call apart.
MODELS = ["small-model", "large-model"]
TEMPERATURES = [round(i / 15, 3) for i in range(15)]
ITEMS = 100
RUNS = len(MODELS) * len(TEMPERATURES) * ITEMS
CONCURRENCY = 16
#: Runs stored before the kill: the sweep is well under way, and far from done.
KILL_AFTER_RUNS = 300
#: Starting a process (the interpreter and the CLI's imports) on a loaded 2-core machine.
START_S = 60.0
#: The sweep's end after the kill: the killed processes' units and coordination come back only
#: when their lease runs out (LEASE_S), then the rest of the runs (at most 2,700 calls of 100 ms
#: over two workers at 16 each, ~9 s unloaded); four times that for a machine shared with the
#: rest of the suite.
FINISH_S = 4 * (LEASE_S + RUNS * LATENCY_MS / 1000 / (2 * CONCURRENCY))


def _experiment(base_url: str) -> str:
    spec = make_experiment(
        name="team-drill",
        endpoint={"base_url": base_url},
        parameters={"model": MODELS, "temperature": TEMPERATURES, "max_tokens": 60},
        dataset=[
            {
                "input": {"question": f"How do I reset password {i}?", "article": "Settings."},
                "keywords": ["Settings"],
            }
            for i in range(ITEMS)
        ],
        sweep={"max_concurrency": CONCURRENCY},
    )
    return yaml.safe_dump(spec, sort_keys=False)


@contextlib.asynccontextmanager
async def _processes(
    home: Path, env: dict[str, str], logs: Path
) -> AsyncIterator[Callable[..., Awaitable[asyncio.subprocess.Process]]]:
    """`start(name, *args)` starts `promptlooper --home HOME ARGS` with `env`, its output in
    `logs/NAME.log`; whatever is still running at the end is killed."""
    started: list[asyncio.subprocess.Process] = []

    async def start(name: str, *args: str) -> asyncio.subprocess.Process:
        with (logs / f"{name}.log").open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *(PROMPTLOOPER, "--home", str(home), *args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
            )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_team_sweep_outlives_its_starter_and_a_worker(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, db=parse_database_url(pg_url))
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "PROMPTLOOPER_DB": pg_url,
        "PROMPTLOOPER_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    experiment = tmp_path / "team.yaml"
    port = free_port()
    with simulated_endpoint_process("--latency-ms", str(LATENCY_MS)) as base_url:
        experiment.write_text(_experiment(base_url))
        app = make_app(settings, user_theme_dir=tmp_path / "user-themes")
        async with app.run_test(size=(100, 30)), _processes(home, env, tmp_path) as start:
            # Nothing announces the app's Workbench: looked for every 50 ms.
            started = asyncio.Event()
            await until(
                _is_set(lambda: app._workbench), "the app's workbench", START_S, started, 0.05
            )
            wb = app.workbench
            seen: list[tuple[float, Event]] = []
            #: Set as events land here: the waits below look again then.
            landed = asyncio.Event()

            # Noted as the bus publishes them (a filter that keeps none): when they landed here.
            def note(event: Event) -> bool:
                if event.type in ("run.completed", "sweep.completed"):
                    seen.append((time.monotonic(), event))
                    landed.set()
                return False

            with wb.bus.subscribe(accept=note):
                serve = ("serve", "--port", str(port), "--mcp-port", str(free_port()))
                daemon = await start("serve", *serve)
                workers = [
                    await start(f"worker-{n}", "worker", "--name", f"w{n}") for n in range(3)
                ]

                async def workers_in() -> bool:
                    return await work.workers_seen_since(wb.db, time.time() - 30) == 3

                await until(workers_in, "three workers to report in", START_S, landed)
                starter = await start("run", "run", str(experiment), "--json")
                await until(_is_set(lambda: seen), "the first relayed run", START_S, landed)
                sweep_id = seen[0][1].sweep_id
                assert sweep_id is not None

                everyone = {p.pid for p in (starter, *workers)}

                async def under_way() -> bool:
                    stored = (await wb.get_sweep(sweep_id)).runs_completed
                    return stored >= KILL_AFTER_RUNS and _pids(seen) >= everyone

                await until(
                    under_way, f"{KILL_AFTER_RUNS} runs, some of each process", START_S, landed
                )
                started_at = await _first_call_time(base_url)
                killed = [starter, workers[0]]
                for process in killed:
                    process.send_signal(signal.SIGKILL)
                killed_at, killed_wall = time.monotonic(), time.time()
                calls_at_kill = (await _sim_get(base_url, "stats"))["requests"]
                runs_at_kill = (await wb.get_sweep(sweep_id)).runs_completed
                for process in killed:
                    await process.wait()

                async def completed() -> bool:
                    return (await wb.get_sweep(sweep_id)).status == "completed"

                await until(completed, "the sweep to complete", FINISH_S, landed)
                await until(
                    _is_set(lambda: [e for _, e in seen if e.type == "sweep.completed"]),
                    "the app to hear that the sweep completed",
                    START_S,
                    landed,
                )

            # Every run exactly once.
            row = await wb.db.fetchone(
                "SELECT count(*) AS n, count(DISTINCT (config_id, item_index, repeat)) AS d, "
                "count(*) FILTER (WHERE status = 'completed') AS ok FROM runs WHERE sweep_id = ?",
                (sweep_id,),
            )
            assert row is not None
            assert (row["n"], row["d"], row["ok"]) == (RUNS, RUNS, RUNS)

            # Paid twice: every run's request differs from the others', so each one asked more
            # than once was paid again. The bound is one lease window's worth of the
            # killed processes' calls: LEASE_S times the rate at which they made calls, measured
            # as their share (2 of the 4 processes) of all calls made up to the kill. Their runs
            # in flight are all the design lets be paid twice (each of their workers has at most
            # one call whose answer is not saved), a far tighter bound, checked too.
            requests = await _sim_get(base_url, "requests")
            assert len({r["fingerprint"] for r in requests}) == RUNS
            paid_twice = len(requests) - RUNS
            share = len(killed) / (1 + len(workers))
            killed_rate = calls_at_kill * share / (killed_wall - started_at)
            in_flight = len(killed) * worker_count(CONCURRENCY)
            window = LEASE_S * killed_rate
            assert paid_twice <= window, f"{paid_twice} paid twice, one lease window {window:.0f}"
            assert paid_twice <= in_flight, f"{paid_twice} paid twice, {in_flight} in flight"

            # The app heard the runs of the other processes as they landed (of each of them
            # before the kill, see `under_way`; of the two left after it), and the sweep's end
            # from the worker that took it over; none of them is this process's.
            assert all(e.origin is not None for _, e in seen)
            after_kill = [e for at, e in seen if at > killed_at and e.type == "run.completed"]
            assert len(after_kill) >= (RUNS - runs_at_kill) // 2
            ender = next(e for _, e in seen if e.type == "sweep.completed").origin
            assert ender is not None
            assert int(ender.split(":")[1]) in {w.pid for w in workers[1:]}

            # The daemon on the same database reports it finished.
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ) as client:
                status = (await client.get(f"/api/sweeps/{sweep_id}")).json()
            assert status["status"] == "completed"
            assert daemon.returncode is None

            # The workers left standing leave cleanly on SIGTERM.
            for worker in workers[1:]:
                worker.send_signal(signal.SIGTERM)
            for worker in workers[1:]:
                assert await asyncio.wait_for(worker.wait(), START_S) == 0


def _pids(seen: list[tuple[float, Event]]) -> set[int]:
    """The processes whose events these are (an origin is "host:pid:nonce")."""
    return {int(e.origin.split(":")[1]) for _, e in seen if e.origin is not None}


def _is_set(value: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(value())

    return check


async def _sim_get(base_url: str, what: str) -> Any:
    root = base_url.removesuffix("/v1")
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(f"{root}/_sim/{what}")).json()


async def _first_call_time(base_url: str) -> float:
    return float((await _sim_get(base_url, "requests"))[0]["started"])
