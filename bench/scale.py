"""Scale: a sweep of N runs, then what a user does with it, at N = 10,000 and 100,000.

    python -m bench.scale                 # 10k and 100k
    python -m bench.scale --sizes 20000   # other sizes

Each size runs in its own process, so its peak RSS is its own. The experiment has 100 configs
that differ only in a parameter no template uses, so every config sends the same requests and
all but the first config's calls come from the cache: the endpoint is barely touched, and the
figures are the engine's and the store's (a cached replay, as the issue allows).

Printed per size: sweep wall time and runs/s, peak RSS during the sweep (aim: flat, at most
10 MB more at 100k than at 10k: nothing the process keeps may grow with the run count), database
size, leaderboard time (aim <= 200 ms at 100k), the time of a `runs list` page (first, middle and
last by offset; and the last of a walk through every page by cursor, which a user paging with
`--after` reaches: aim <= 20 ms at any size), and a streamed CSV export's time and peak RSS
growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from promptlooper_tui.engine.ranking import leaderboard
from promptlooper_tui.garbage_collection import collect_less_often
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.workbench import SweepOverrides, open_workbench

CONFIGS = 100
#: Peak RSS stays flat with the run count: MB a larger size may add to the first size's.
RSS_GROWTH_AIM_MB = 10
#: A page of runs costs the same at any depth: the last one, by cursor.
LAST_PAGE_AIM_MS = 20


def scale_experiment(base_url: str, runs: int) -> str:
    items = runs // CONFIGS
    spec: dict[str, Any] = {
        "name": f"scale-{runs}",
        "endpoint": {"base_url": base_url},
        "parameters": {"model": "large-model", "variant": list(range(CONFIGS)), "max_tokens": 48},
        "pipeline": [{"name": "answer", "user": "Answer briefly: {{ item.input.question }}"}],
        "dataset": [
            {"input": {"question": f"How do I reset password {i} in Settings?"}, "kw": ["Settings"]}
            for i in range(items)
        ],
        "scorers": [
            {"type": "keyword", "required_present_from": "kw"},
            {"type": "format", "format": "length", "min_tokens": 3, "max_tokens": 60},
        ],
        "sweep": {"strategy": "grid"},
    }
    return yaml.safe_dump(spec, sort_keys=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(coro: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await coro
    return result, (time.perf_counter() - started) * 1000


async def measure(runs: int, base_url: str, home: Path, csv_file: TextIO) -> dict[str, float]:
    """Sweep, rank, page and export in `home`; the CSV goes to `csv_file`."""
    async with open_workbench(Settings(home)) as wb:
        imported = await wb.import_text(scale_experiment(base_url, runs))
        sweep_id = await wb.create_sweep(imported.id, SweepOverrides(concurrency=32))
        summary, sweep_ms = await timed(wb.run_sweep(sweep_id))
        assert summary.runs.completed == runs, summary.runs
        rss_after_sweep = peak_rss_mb()
        # A fresh ranking of the experiment (the engine's, bypassing the Workbench's cache),
        # after one to warm SQLite's page cache as a user's second look would.
        scope = await wb._rankings.scope(imported.id)
        await leaderboard(wb.db, scope)
        _, board_ms = await timed(leaderboard(wb.db, scope))
        page_ms = []
        for offset in (0, runs // 2, runs - 50):
            _, ms = await timed(wb.list_runs(experiment=imported.id, limit=50, offset=offset))
            page_ms.append(ms)
        # Every page by cursor, as a user paging with --after to the end; the last is timed.
        page = await wb.list_runs(experiment=imported.id, limit=50)
        walked = len(page.items)
        while page.next is not None:
            page, cursor_ms = await timed(
                wb.list_runs(experiment=imported.id, limit=50, after=page.next)
            )
            walked += len(page.items)
        assert walked == runs, walked
        _, csv_ms = await timed(wb.export(imported.id, "csv", csv_file))
        rss_after_export = peak_rss_mb()
    return {
        "runs": runs,
        "sweep_s": sweep_ms / 1000,
        "runs_per_s": runs / (sweep_ms / 1000),
        "peak_rss_mb": rss_after_sweep,
        "leaderboard_ms": board_ms,
        "page_first_ms": page_ms[0],
        "page_middle_ms": page_ms[1],
        "page_last_ms": page_ms[2],
        "page_cursor_last_ms": cursor_ms,
        "csv_s": csv_ms / 1000,
        "csv_rss_growth_mb": rss_after_export - rss_after_sweep,
    }


def run_child(runs: int, base_url: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--child", str(runs), "--base-url", base_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        collect_less_often()  # as the CLI does
        with tempfile.TemporaryDirectory() as home, open(Path(home) / "runs.csv", "w") as csv_file:
            figures = asyncio.run(measure(args.child, args.base_url, Path(home), csv_file))
            db_files = Path(home).glob("promptlooper.db*")
            figures["db_mb"] = sum(f.stat().st_size for f in db_files) / 2**20
        print(json.dumps(figures))
        return
    with simulated_endpoint_process() as base_url:
        first: dict[str, float] | None = None
        for runs in args.sizes:
            r = run_child(runs, base_url)
            first = first or r
            rss = f"peak RSS {r['peak_rss_mb']:4.0f} MB"
            if r is not first:
                growth = r["peak_rss_mb"] - first["peak_rss_mb"]
                rss += (
                    f" ({growth:+.0f} MB vs {first['runs']:,.0f} runs, aim <= +{RSS_GROWTH_AIM_MB})"
                )
            print(
                f"{r['runs']:>7.0f} runs  sweep {r['sweep_s']:6.1f} s ({r['runs_per_s']:5.0f}/s)  "
                f"{rss}  db {r['db_mb']:6.1f} MB  "
                f"leaderboard {r['leaderboard_ms']:5.0f} ms (aim <= 200)  "
                f"runs page first/mid/last {r['page_first_ms']:4.0f}/{r['page_middle_ms']:4.0f}/"
                f"{r['page_last_ms']:4.0f} ms  "
                f"runs page by cursor, last: {r['page_cursor_last_ms']:.1f} ms "
                f"(aim <= {LAST_PAGE_AIM_MS})  "
                f"csv {r['csv_s']:5.1f} s, RSS +{r['csv_rss_growth_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
