"""Drill: two `promptlooper run` processes on one home at the same time (from a home that does
not exist yet, so they also race to create the database): both finish with exit 0, neither
shows "database is locked", and every sweep has each of its runs exactly once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..conftest import make_experiment

REPEATS = 10
RUNS_PER_SWEEP = 2 * 2 * 3 * REPEATS  # BASE_EXPERIMENT: 2 models x 2 temperatures x 3 items


def start_run(home: Path, experiment: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            *["-m", "promptlooper_tui", "--home", str(home), "run", str(experiment), "--json"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("same_experiment", [False, True], ids=["different", "same"])
def test_two_runs_at_once_on_one_home(tmp_path: Path, same_experiment: bool) -> None:
    home = tmp_path / "home"
    files = []
    for name in ("alpha", "alpha" if same_experiment else "beta"):
        path = tmp_path / f"{name}-{len(files)}.yaml"
        path.write_text(yaml.safe_dump(make_experiment(name=name, sweep={"repeats": REPEATS})))
        files.append(path)

    processes = [start_run(home, path) for path in files]
    results = [(process, *process.communicate(timeout=120)) for process in processes]

    summaries = []
    for process, stdout, stderr in results:
        assert process.returncode == 0, stderr
        assert "locked" not in stderr and "Traceback" not in stderr, stderr
        summaries.append(json.loads(stdout))
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert [s["runs"]["completed"] for s in summaries] == [RUNS_PER_SWEEP] * 2
    with sqlite3.connect(home / "promptlooper.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_sweep = conn.execute(
            "SELECT sweep_id, count(*), "
            "count(DISTINCT config_id || ':' || item_index || ':' || repeat) "
            "FROM runs GROUP BY sweep_id"
        ).fetchall()
        experiments = conn.execute("SELECT count(*) FROM experiments").fetchone()[0]
    assert sorted(row[0] for row in per_sweep) == sorted(s["sweep_id"] for s in summaries)
    assert all(row[1:] == (RUNS_PER_SWEEP, RUNS_PER_SWEEP) for row in per_sweep), per_sweep
    assert experiments == (1 if same_experiment else 2)
