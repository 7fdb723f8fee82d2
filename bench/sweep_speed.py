"""Engine speed: latency-bound sweeps, engine overhead at zero latency, and cached replay.

    python -m bench.sweep_speed            # all three
    python -m bench.sweep_speed --quick    # smaller sizes

Each scenario runs the real engine (Workbench, SQLite in a temp dir) against the simulated
endpoint in its own process over loopback, and prints its figures with the bound it is held to,
beside the bare HTTP client (`OpenAIClient` alone) making the same calls: on a shared machine
the ratio to that peer, measured in the same run, is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from promptlooper_tui.engine.adapters.openai import OpenAIClient
from promptlooper_tui.garbage_collection import collect_less_often
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.workbench import SweepOverrides, Workbench, open_workbench

from .common import experiment


async def timed_sweep(
    wb: Workbench, text: str, *, concurrency: int
) -> tuple[float, float, int, int]:
    """(wall s, process CPU s, runs completed, calls from cache) of one sweep."""
    imported = await wb.import_text(text)
    sweep_id = await wb.create_sweep(imported.id, SweepOverrides(concurrency=concurrency))
    wall, cpu = time.perf_counter(), time.process_time()
    summary = await wb.run_sweep(sweep_id)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert summary.status == "completed", summary.status
    return wall, cpu, summary.runs.completed, summary.calls.cache_hits


#: Most ratio to the ideal wall time (runs x latency / concurrency), by concurrency.
_LATENCY_AIMS = {16: 1.10, 64: 1.25, 256: 1.15}
#: Most engine CPU per run at zero latency (one stage, two cheap scorers).
_CPU_AIM_MS = 0.6


async def raw_client(base_url: str, calls: int, concurrency: int) -> tuple[float, float]:
    """(wall s, process CPU s) of the same number of calls made by the bare HTTP client."""
    gate = asyncio.Semaphore(concurrency)
    async with OpenAIClient(base_url) as client:

        async def one(index: int) -> None:
            async with gate:
                await client.chat(
                    [{"role": "user", "content": f"How do I reset password number {index}?"}],
                    {"model": "large-model", "max_tokens": 64},
                )

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return time.perf_counter() - wall, time.process_time() - cpu


async def latency_bound(runs: int, concurrency: int, latency_ms: float) -> None:
    with (
        simulated_endpoint_process("--latency-ms", str(latency_ms)) as base,
        tempfile.TemporaryDirectory() as home,
    ):
        async with open_workbench(Settings(Path(home))) as wb:
            text = experiment(
                f"lat-{runs}-{concurrency}", base, configs=runs // 10, items=10, repeats=1
            )
            wall, _, done, _ = await timed_sweep(wb, text, concurrency=concurrency)
        peer, _ = await raw_client(base, done, concurrency)
    ideal = done * latency_ms / 1000 / concurrency
    aim = _LATENCY_AIMS[concurrency]
    print(
        f"latency-bound  {done:>6} runs  c={concurrency:<3} {latency_ms:3.0f} ms  "
        f"wall {wall:6.2f} s  "
        f"ideal {ideal:6.2f} s  ratio {wall / ideal:5.3f} (aim <= {aim})  "
        f"bare client {peer:6.2f} s: engine/bare {wall / peer:5.3f}"
    )


async def overhead_and_replay(runs: int) -> None:
    with simulated_endpoint_process() as base, tempfile.TemporaryDirectory() as home:
        async with open_workbench(Settings(Path(home))) as wb:
            text = experiment("overhead", base, configs=runs // 50, items=50, repeats=1)
            wall, cpu, done, _ = await timed_sweep(wb, text, concurrency=32)
            _, peer_cpu = await raw_client(base, done, 32)
            print(
                f"zero latency   {done:>6} runs  c=32   wall {wall:6.2f} s  "
                f"{done / wall:7.0f} runs/s  "
                f"engine CPU {cpu * 1000 / done:5.2f} ms/run (aim <= {_CPU_AIM_MS})  "
                f"bare client {peer_cpu * 1000 / done:5.2f} ms/call"
            )
            wall, cpu, done, hits = await timed_sweep(wb, text, concurrency=32)
            assert hits == done, "the replay was fully cached"
            print(
                f"cached replay  {done:>6} runs  c=32   wall {wall:6.2f} s  "
                f"{done / wall:7.0f} runs/s  "
                f"engine CPU {cpu * 1000 / done:5.2f} ms/run  (aim >= 3000 runs/s)"
            )


async def main(quick: bool) -> None:
    await latency_bound(600, 16, 50)
    if not quick:
        await latency_bound(5000, 16, 50)
        await latency_bound(600, 64, 50)
    await latency_bound(5000, 64, 50)
    if not quick:
        await latency_bound(20_000, 256, 200)
    await overhead_and_replay(2000 if quick else 5000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    collect_less_often()  # as the CLI does
    asyncio.run(main(parser.parse_args().quick))
