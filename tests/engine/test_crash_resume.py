"""Crash safety: SIGKILL a `promptlooper run` mid-sweep; `resume` finishes it, losing nothing
and repeating no LLM call that had returned (requests counted at the server)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from promptlooper_tui.engine.sweep_job import worker_count
from promptlooper_tui.simulated.server import simulated_endpoint_process

from ..conftest import make_experiment
from ..helpers import cli, cli_json


def _count_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume_runs_everything_exactly_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with simulated_endpoint_process("--latency-ms", "15") as base_url:
        spec = make_experiment(
            name="crashy",
            endpoint={"base_url": base_url},
            pipeline=[
                {"name": "draft", "user": "Answer: {{ item.input.question }}"},
                {"name": "polish", "user": "Polish: {{ stages.draft.output }}"},
            ],
            sweep={"repeats": 20, "max_concurrency": 8},
        )
        path = tmp_path / "crashy.yaml"
        path.write_text(yaml.safe_dump(spec))
        total = 4 * 3 * 20
        process = subprocess.Popen(
            [sys.executable, "-m", "promptlooper_tui", "--home", str(home), "run", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = home / "promptlooper.db"
        deadline = time.monotonic() + 60
        while _count_runs(db) < total // 4:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = _count_runs(db)
        assert done_before < total

        [sweep] = cli_json(home, "sweeps", "list")
        assert sweep["status"] == "interrupted" and sweep["resumable"]

        resumed = cli(home, "resume", "crashy", "--json")
        assert resumed.returncode == 0, resumed.stderr
        summary: dict[str, Any] = __import__("json").loads(resumed.stdout)
        assert summary["status"] == "completed"
        assert summary["runs"]["completed"] == summary["runs"]["total"] == total
        # Calls count the whole sweep; this invocation's are the runs it had left.
        assert summary["calls"]["requested"] == 2 * total
        assert summary["calls_this_run"]["requested"] == 2 * (total - done_before)

        requests = httpx.get(base_url.removesuffix("/v1") + "/_sim/requests").json()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        distinct = conn.execute(
            "SELECT count(DISTINCT config_id || ':' || item_index || ':' || repeat) FROM runs"
        ).fetchone()[0]
        assert distinct == conn.execute("SELECT count(*) FROM runs").fetchone()[0] == total
    # Repeats send identical bodies, so calls are told apart by count, not by fingerprint:
    # every call was requested once, except those in flight or not yet saved when the
    # process died (at most one per worker).
    chat = [r for r in requests if r["path"].endswith("/chat/completions")]
    repeated = len(chat) - 2 * total
    assert 0 <= repeated <= worker_count(8), f"{repeated} calls were made twice"
