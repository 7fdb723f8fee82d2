"""Startup: how long a user waits before PromptLooper answers.

    python -m bench.startup [--repeat 7]

Times, as the median of several fresh processes: `promptlooper --help`, `promptlooper validate`
of the quick-start sample (aim <= 0.4 s each: heavy modules are imported lazily), and the
terminal app's first frame (the process start to the app's first screen being ready, headless).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_experiments" / "quickstart.yaml"


def timed_command(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def first_frame_seconds(home: str) -> float:
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
        [sys.executable, "-c", script, home], check=True, capture_output=True, text=True
    ).stdout
    return float(output.strip().splitlines()[-1]) - started


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="processes per figure (median)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "promptlooper_tui"]
    with tempfile.TemporaryDirectory() as home:
        figures = [
            ("promptlooper --help", lambda: timed_command([*cli, "--help"]), 0.4),
            (
                "promptlooper validate quickstart.yaml",
                lambda: timed_command([*cli, "--home", home, "validate", str(SAMPLE)]),
                0.4,
            ),
            ("terminal app first frame", lambda: first_frame_seconds(home), None),
        ]
        baseline = median_of(args.repeat, lambda: timed_command([sys.executable, "-c", "pass"]))
        print(f"{'python -c pass (the floor)':<40} {baseline * 1000:6.0f} ms")
        for name, measure, aim in figures:
            seconds = median_of(args.repeat, measure)
            bound = f"(aim <= {aim * 1000:.0f} ms)" if aim else ""
            print(f"{name:<40} {seconds * 1000:6.0f} ms  {bound}")


if __name__ == "__main__":
    main()
