"""`promptlooper export` as a user runs it: a real process, real files, exit codes, clean stdout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from ..conftest import make_experiment
from ..helpers import cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one completed sweep of `support` (12 runs)."""
    root = tmp_path_factory.mktemp("export-cli")
    path = root / "support.yaml"
    path.write_text(yaml.safe_dump(make_experiment()))
    done = cli(root / "home", "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return root / "home"


def test_export_csv_to_a_file(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    done = cli(home, "export", "support", "--format", "csv", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    with target.open(newline="") as out:
        rows = list(csv.DictReader(out))
    assert len(rows) == 12
    assert all(0.0 <= float(row["score.keyword"]) <= 1.0 for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_export_to_stdout_prints_only_the_export(home: Path) -> None:
    done = cli(home, "export", "support", "--format", "json")
    assert done.returncode == 0, done.stderr
    best = json.loads(done.stdout)
    assert best["experiment"] == "support" and best["n"] == 3
    report = cli(home, "export", "support", "--format", "report", "--top", "2")
    assert report.returncode == 0 and report.stdout.startswith("# Sweep report: support")


def test_unknown_format_is_bad_input(home: Path) -> None:
    done = cli(home, "export", "support", "--format", "xml")
    assert done.returncode == 2
    assert "unknown export format 'xml'" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_failed_export_leaves_the_existing_file_untouched(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "best.json"
    target.write_text("keep me\n")
    done = cli(
        home, "export", "support", "--format", "json", "--sweep", "sw_nope", "-o", str(target)
    )
    assert done.returncode == 2, done.stderr
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"], "no temp file left"
