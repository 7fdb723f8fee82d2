"""`promptlooper workers list`: the worker rows the store holds (written here through
store/workers.py, as the `worker` command writes them), what each works on, and which are
gone."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from promptlooper_tui.settings import Settings
from promptlooper_tui.store import workers as stored_workers
from promptlooper_tui.store.connect import open_database
from promptlooper_tui.workbench import open_workbench
from promptlooper_tui.workbench.worker_list import GONE_AFTER_S

from ..helpers import cli


async def register(
    settings: Settings, name: str, *, seen_at: float, sweep_id: str | None = None, runs: int = 0
) -> str:
    """A worker row as the `worker` command leaves it: registered, then a heartbeat."""
    owner = f"build-{name}:{len(name)}:{name}0000"
    db = await open_database(settings.database)
    try:
        await db.write(
            [
                stored_workers.register_worker_statement(
                    owner, name, f"build-{name}", 4000 + len(name), "2026-12-04T10:00:00Z", seen_at
                ),
                stored_workers.heartbeat_statement(owner, seen_at, sweep_id, runs),
            ]
        )
    finally:
        await db.close()
    return owner


def line_of(text: str, name: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return line


async def test_workers_list_shows_each_worker_and_the_gone_ones(
    settings: Settings, write_experiment: Callable[..., Path]
) -> None:
    async with open_workbench(settings) as wb:
        await wb.import_file(write_experiment())
        sweep_id = await wb.create_sweep("support")
    now = time.time()
    await register(settings, "alpha", seen_at=now, sweep_id=sweep_id, runs=17)
    # A machine whose clock runs ahead of ours: just seen, never "in the future".
    await register(settings, "beta", seen_at=now + 3600)
    await register(settings, "gamma", seen_at=now - GONE_AFTER_S - 15, sweep_id=sweep_id, runs=3)

    done = cli(settings.home, "workers", "list")
    assert done.returncode == 0, done.stderr
    alpha, beta, gamma = (line_of(done.stdout, name) for name in ("alpha", "beta", "gamma"))
    assert re.match(rf"alpha +build-alpha +4005 +{sweep_id} \(support\) +17 +\d+ s ago$", alpha)
    assert re.match(r"beta +build-beta +4004 +- +0 +0 s ago$", beta)
    assert re.search(rf"{sweep_id} \(support\) +3 +gone \(.+ ago\)$", gamma)

    listed = cli(settings.home, "workers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    workers = {w["name"]: w for w in json.loads(listed.stdout)}
    assert list(workers) == ["alpha", "beta", "gamma"]
    assert workers["alpha"] | {"seen_ago_s": 0} == {
        "owner": "build-alpha:5:alpha0000",
        "name": "alpha",
        "host": "build-alpha",
        "pid": 4005,
        "started_at": "2026-12-04T10:00:00Z",
        "seen_at": now,
        "seen_ago_s": 0,
        "gone": False,
        "sweep_id": sweep_id,
        "experiment": "support",
        "runs_done": 17,
    }
    assert workers["beta"]["seen_ago_s"] == 0 and workers["beta"]["sweep_id"] is None
    assert workers["gamma"]["gone"] is True and workers["gamma"]["seen_ago_s"] > GONE_AFTER_S


async def test_a_worker_that_leaves_or_is_pruned_is_no_longer_listed(settings: Settings) -> None:
    now = time.time()
    leaving = await register(settings, "leaving", seen_at=now)
    await register(settings, "staying", seen_at=now)
    await register(settings, "dead", seen_at=now - 3600)
    db = await open_database(settings.database)
    try:
        await db.write(
            [
                stored_workers.remove_worker_statement(leaving),
                stored_workers.prune_workers_statement(older_than=now - 600),
            ]
        )
    finally:
        await db.close()
    listed = cli(settings.home, "workers", "list", "--json")
    assert [w["name"] for w in json.loads(listed.stdout)] == ["staying"]


def test_no_workers_reads_none(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "workers", "list")
    assert done.returncode == 0 and done.stdout.splitlines() == ["(none)"]
    listed = cli(tmp_path / "home", "workers", "list", "--json")
    assert json.loads(listed.stdout) == []
