"""The run recorder keeps what waits for the writer bounded: a writer that falls behind slows
the workers instead of filling memory with finished runs, and every run is still announced
once, after its commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from promptlooper_tui.engine import run_recorder
from promptlooper_tui.engine.concurrency import RateLimitMeter
from promptlooper_tui.engine.gateway import RunMeter
from promptlooper_tui.engine.run_execution import ExecutedRun, PlannedRun
from promptlooper_tui.engine.run_recorder import RunRecorder
from promptlooper_tui.engine.sweep_rate_limits import SweepRateLimits
from promptlooper_tui.store.database import Statement
from promptlooper_tui.store.work import finish_unit_statement


class StalledWriter:
    """A database whose commits happen only when the test says so, oldest first."""

    def __init__(self) -> None:
        self.units: list[asyncio.Future[None]] = []
        self.committed = 0

    def submit(self, statements: Iterable[Statement]) -> asyncio.Future[None]:
        list(statements)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.units.append(future)
        return future

    def commit(self, count: int) -> None:
        for future in self.units[self.committed : self.committed + count]:
            future.set_result(None)
        self.committed += count


def finished(index: int) -> tuple[str, PlannedRun, ExecutedRun, Statement]:
    planned = PlannedRun({"t": 0}, "key", 1, index, 0)
    run = ExecutedRun("completed", None, 1.0, False, 1.0, RunMeter(calls=1, cached_calls=1))
    return f"run_{index}", planned, run, finish_unit_statement(f"run_{index}")


async def test_workers_wait_for_a_writer_that_fell_behind_and_every_run_is_announced() -> None:
    writer = StalledWriter()
    announced: list[str | None] = []

    def publish(type: str, run_id: str | None = None, **data: Any) -> None:
        if type.startswith("run."):
            announced.append(run_id)

    limits = SweepRateLimits(RateLimitMeter(), publish)
    recorder = RunRecorder(writer, "sw", "ex", limits, publish, lambda reason: None)  # type: ignore[arg-type]
    limit = run_recorder._MAX_UNCOMMITTED
    for index in range(limit):
        recorder.record(*finished(index))
        await recorder.keep_up()  # room left: returns at once
    recorder.record(*finished(limit))
    waiting = asyncio.create_task(recorder.keep_up())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done(), "one run more than the bound waits for the writer"
    writer.commit(1)
    await asyncio.wait_for(waiting, 5)
    writer.commit(limit)
    await asyncio.wait_for(recorder.settle(), 5)
    assert announced == [f"run_{index}" for index in range(limit + 1)]
