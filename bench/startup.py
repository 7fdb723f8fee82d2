"""Startup: how long a user waits before PromptLooper answers.

    python -m bench.startup [--repeat 7]

Times, as the median of several fresh processes: `promptlooper --help`, `promptlooper validate`
of the quick-start sample (aim <= 0.4 s each: heavy modules are imported lazily), `promptlooper
run` of the quick start when every call is already cached (aim <= 0.35 s: no endpoint is started
and no HTTP client made), `runs list` and `sweeps list` of that finished quick start (reads: no
templates, loader or sweep runner), and the terminal app's first frame (the process start to the
app's first screen being ready, headless). Beside each wall time, the process's CPU time (user +
sys): on a shared machine the wall time also counts waiting for a core, the CPU time does not.

The processes run as an installed copy does, with its modules' bytecode compiled once (kept in
a temporary folder, even where PYTHONDONTWRITEBYTECODE is set): each figure's first process,
which compiles it, is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_experiments" / "quickstart.yaml"
#: The environment of the timed processes: bytecode written to a folder of this run's own.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Timing(NamedTuple):
    wall: float
    #: User + sys seconds of the process; None where only the wall time is known.
    cpu: float | None


def timed_command(argv: list[str]) -> Timing:
    before, started = os.times(), time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=CHILD_ENV)
    wall, after = time.perf_counter() - started, os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Timing(wall, cpu)


def first_frame(home: str) -> Timing:
    """Seconds from starting the interpreter to the app's first screen being ready."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from promptlooper_tui.settings import Settings\n"
        "from promptlooper_tui.tui.factory import make_app\n"
        "app = make_app(Settings(Path(sys.argv[1])))\n"
        "async def pilot(p):\n"
        "    await p.pause()\n"
        "    print(time.perf_counter(), flush=True)\n"
        "    p.app.exit()\n"
        "app.run(headless=True, size=(100, 30), auto_pilot=pilot)\n"
    )
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", script, home],
        check=True,
        capture_output=True,
        text=True,
        env=CHILD_ENV,
    ).stdout
    return Timing(float(output.strip().splitlines()[-1]) - started, None)


def median_of(repeat: int, measure: Callable[[], Timing]) -> Timing:
    measure()  # compiles the bytecode (and for the cached run, fills the cache)
    timings = [measure() for _ in range(repeat)]
    cpus = [t.cpu for t in timings if t.cpu is not None]
    return Timing(
        statistics.median(t.wall for t in timings), statistics.median(cpus) if cpus else None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="processes per figure (median)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "promptlooper_tui"]
    with (
        tempfile.TemporaryDirectory() as home,
        tempfile.TemporaryDirectory() as cached_home,
        tempfile.TemporaryDirectory() as bytecode,
    ):
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = bytecode
        quick_start = [*cli, "--home", cached_home, "run", str(SAMPLE)]

        def reading(group: str) -> list[str]:
            return [*cli, "--home", cached_home, group, "list"]

        figures = [
            ("promptlooper --help", lambda: timed_command([*cli, "--help"]), 0.4),
            (
                "promptlooper validate quickstart.yaml",
                lambda: timed_command([*cli, "--home", home, "validate", str(SAMPLE)]),
                0.4,
            ),
            ("promptlooper run quickstart.yaml, cached", lambda: timed_command(quick_start), 0.35),
            ("promptlooper runs list, after it", lambda: timed_command(reading("runs")), None),
            ("promptlooper sweeps list, after it", lambda: timed_command(reading("sweeps")), None),
            ("terminal app first frame", lambda: first_frame(home), None),
        ]
        floor = median_of(args.repeat, lambda: timed_command([sys.executable, "-c", "pass"]))
        print(f"{'python -c pass (the floor)':<42} {_ms(floor)}")
        for name, measure, aim in figures:
            timing = median_of(args.repeat, measure)
            bound = f"(aim <= {aim * 1000:.0f} ms wall)" if aim else ""
            print(f"{name:<42} {_ms(timing)}  {bound}")


def _ms(timing: Timing) -> str:
    cpu = f"CPU {timing.cpu * 1000:4.0f} ms" if timing.cpu is not None else " " * 11
    return f"wall {timing.wall * 1000:5.0f} ms  {cpu}"


if __name__ == "__main__":
    main()
