"""Crash drill: SIGKILL `promptlooper run` at random moments of a 1,000-run sweep, `resume` after
each kill, and check that nothing was lost and nothing paid for twice.

    python -m bench.drills                      # 10 kills during a 1,000-run, 2-stage sweep
    python -m bench.drills --kills 3 --seed 7   # fewer kills, other moments

The simulated endpoint runs in its own process (5 ms latency) so it outlives every kill and
logs every request. Checked at the end: every run exactly once, `PRAGMA integrity_check` ok
after each kill and at the end, the sweep completed, and no call whose answer had been sent
well before a kill (GRACE seconds) was requested again. A call in flight at the kill may be
sent again (its answer never reached the cache); that is at most one per worker per kill.
Prints one row per kill and a summary; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from promptlooper_tui.engine.sweep_job import worker_count
from promptlooper_tui.simulated.server import simulated_endpoint_process

NAME = "crash-drill"
TEMPERATURES = 20
ITEMS = 50
RUNS = TEMPERATURES * ITEMS
CONCURRENCY = 8
#: Calls a kill may cost again: one per worker (in flight, or answered but not yet saved).
WORKERS = worker_count(CONCURRENCY)
#: An answer sent this long before a kill has had ample time to be committed to the cache.
GRACE = 1.0
#: A new process sends nothing this soon after it is spawned (the interpreter alone takes longer
#: to start), so a request the simulator logs before then comes from an earlier process: one
#: the killed process wrote just before its kill can be read by the simulator just after it.
QUIET_START = 0.1


@dataclass
class Kill:
    number: int
    command: str
    target: int  # completed runs to wait for before the kill
    runs_at_kill: int
    alive_s: float
    at: float  # wall-clock time of the kill (time.time(), as the simulator logs)
    integrity: str
    spawned: float  # wall-clock time the killed process was started
    repeats: int = 0  # calls requested again after this kill


def spec(base_url: str) -> dict[str, Any]:
    """Two stages, so kills land between a run's calls too.

    Some polish calls are identical (same draft, same temperature): they share one cache entry
    and one request, so a call is told by its body's fingerprint, not by its run.
    """
    return {
        "name": NAME,
        "endpoint": {"base_url": base_url},
        "parameters": {
            "model": "large-model",
            "temperature": [round(i / TEMPERATURES, 3) for i in range(TEMPERATURES)],
            "max_tokens": 40,
        },
        "pipeline": [
            {"name": "draft", "user": "Answer briefly: {{ item.input.question }}"},
            {"name": "polish", "user": "Polish this reply: {{ stages.draft.output }}"},
        ],
        "dataset": [
            {"input": {"question": f"How do I reset password number {i} in Settings?"}}
            for i in range(ITEMS)
        ],
        "scorers": [{"type": "format", "format": "length", "min_tokens": 1, "max_tokens": 60}],
        "sweep": {"max_concurrency": CONCURRENCY},
    }


def promptlooper(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "promptlooper_tui", "--home", str(home), *args]


def completed_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def integrity(db: Path) -> str:
    with sqlite3.connect(db, timeout=30) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def kill_at(home: Path, args: list[str], target: int, number: int, jitter: float) -> Kill:
    """Start `promptlooper ARGS`, SIGKILL it once `target` runs are stored (+ jitter s)."""
    db = home / "promptlooper.db"
    started = time.monotonic()
    spawned = time.time()
    process = subprocess.Popen(
        promptlooper(home, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while completed_runs(db) < target:
        if process.poll() is not None:
            raise SystemExit(f"`{' '.join(args)}` ended (exit {process.returncode}) before kill")
        time.sleep(0.005)
    time.sleep(jitter)
    process.send_signal(signal.SIGKILL)
    at = time.time()
    process.wait()
    return Kill(
        number,
        args[0],
        target,
        completed_runs(db),
        time.monotonic() - started,
        at,
        integrity(db),
        spawned,
    )


def attribute_repeats(
    requests: list[dict[str, Any]], kills: list[Kill], final_spawned: float
) -> tuple[list[str], float]:
    """Count repeated calls per kill. Returns the repeats that break the rule (late ones) and
    the longest time from a repeated call's first answer to the kill (0 if none was answered).

    A request belongs to the last process spawned at least QUIET_START before the simulator
    logged it: process k ends with kill k (0-based); the one after the last kill is the final
    resume, spawned at `final_spawned`.
    """
    later_spawns = [kill.spawned for kill in kills[1:]] + [final_spawned]

    def process(request: dict[str, Any]) -> int:
        return sum(spawned + QUIET_START <= request["started"] for spawned in later_spawns)

    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r["seq"]):
        by_call[request["fingerprint"]].append(request)
    late = []
    longest = 0.0
    for fingerprint, sent in by_call.items():
        for earlier, again in itertools.pairwise(sent):
            if process(again) == process(earlier):
                late.append(f"{fingerprint[:12]} sent twice by one process")
                continue
            kill = kills[process(again) - 1]
            kill.repeats += 1
            if earlier["finished"] is None:
                continue
            answered = kill.at - earlier["finished"]
            longest = max(longest, answered)
            if answered > GRACE:
                late.append(
                    f"{fingerprint[:12]} answered {answered:.1f} s before kill {kill.number}"
                )
    return late, longest


def drill(kills: int, seed: int) -> bool:
    dice = random.Random(seed)
    targets = sorted(dice.sample(range(20, RUNS - 20), kills))
    with (
        simulated_endpoint_process("--latency-ms", "5") as base_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        home = Path(tmp) / "home"
        experiment = Path(tmp) / "drill.yaml"
        experiment.write_text(yaml.safe_dump(spec(base_url)))
        db = home / "promptlooper.db"
        started = time.monotonic()
        done: list[Kill] = []
        for number, target in enumerate(targets, start=1):
            args = ["run", str(experiment)] if number == 1 else ["resume", NAME]
            done.append(kill_at(home, args, target, number, jitter=dice.uniform(0, 0.03)))
        final_spawned = time.time()
        final = subprocess.run(
            promptlooper(home, "resume", NAME, "--json"), capture_output=True, text=True
        )
        elapsed = time.monotonic() - started
        requests = httpx.get(base_url.removesuffix("/v1") + "/_sim/requests").json()
        with sqlite3.connect(db) as conn:
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT config_id || ':' || item_index || ':' || repeat) "
                "FROM runs WHERE status = 'completed'"
            ).fetchone()
        end_integrity = integrity(db)

    late, longest = attribute_repeats(requests, done, final_spawned)
    print(
        f"{'kill':>4}  {'command':<7} {'target':>6} {'runs':>5} {'alive s':>7} "
        f"{'repeats':>7}  integrity"
    )
    for kill in done:
        print(
            f"{kill.number:>4}  {kill.command:<7} {kill.target:>6} {kill.runs_at_kill:>5} "
            f"{kill.alive_s:>7.2f} {kill.repeats:>7}  {kill.integrity}"
        )
    summary = json.loads(final.stdout) if final.returncode == 0 else {}
    calls = len({request["fingerprint"] for request in requests})
    repeats = len(requests) - calls
    print(
        f"\nfinal resume: exit {final.returncode}, status {summary.get('status')}; "
        f"runs {total} stored, {distinct} distinct (of {RUNS}); integrity {end_integrity}\n"
        f"server: {len(requests)} chat requests for {calls} distinct calls; {repeats} repeated "
        f"(at most {WORKERS} per kill allowed, one per worker); "
        f"{len(late)} repeated after their answer was sent > {GRACE:g} s before a kill "
        f"(longest answer-to-kill gap of a repeated call: {longest * 1000:.0f} ms)\n"
        f"wall time {elapsed:.1f} s"
    )
    for line in late:
        print("  late repeat:", line)
    checks = {
        "final resume completed": summary.get("status") == "completed",
        "every run exactly once": total == distinct == RUNS,
        "integrity after every kill": all(kill.integrity == "ok" for kill in done),
        "integrity at the end": end_integrity == "ok",
        "repeats bounded by the workers": all(kill.repeats <= WORKERS for kill in done),
        "no late repeats": not late,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if final.returncode != 0:
        print(final.stderr)
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(0 if drill(args.kills, args.seed) else 1)


if __name__ == "__main__":
    main()
