"""A race at the command line: the table says where each config stands, `run --json` carries
the same decisions, and the dry run gives the expected and the worst-case calls."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_racing_sweeps import ITEMS, race_yaml
from tests.helpers import cli, cli_json


def test_the_table_and_the_json_say_where_each_config_stands(tmp_path: Path) -> None:
    path = tmp_path / "race.yaml"
    path.write_text(race_yaml())
    home = tmp_path / "home"
    summary = cli_json(home, "run", str(path))
    decisions = [entry["decision"] for entry in summary["leaderboard"]]
    assert decisions[0] == {"state": "alive", "at_n": None, "p": None, "against": None}
    for decision in decisions[1:]:
        assert decision["state"] == "eliminated"
        assert 0 < decision["at_n"] < ITEMS and 0 < decision["p"] <= 0.05
        assert decision["against"]["model"] == "large-model"

    done = cli(home, "sweeps", "show", summary["sweep_id"])
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("#"))
    assert "race" in header.split()
    rows = [line for line in done.stdout.splitlines() if " alive " in line or " out at " in line]
    assert len(rows) == 4


def test_a_dry_run_gives_the_expected_and_the_worst_case_calls(tmp_path: Path) -> None:
    path = tmp_path / "race.yaml"
    path.write_text(race_yaml())
    home = tmp_path / "home"
    race = cli_json(home, "run", str(path), "--dry-run")
    assert race["upper_bound"] and race["calls"] == 4 * ITEMS
    assert 0 < race["expected_calls"] < race["calls"]
    again = cli_json(home, "run", str(path), "--dry-run")
    assert again["expected_calls"] == race["expected_calls"]  # seeded: the same forecast

    guided = cli_json(home, "run", str(path), "--dry-run", "--strategy", "guided", "--samples", "2")
    assert guided["calls"] == 2 * ITEMS and 0 < guided["expected_calls"] <= guided["calls"]

    text = cli(home, "run", str(path), "--dry-run").stdout
    expected, worst = text.splitlines()[:2]
    assert expected.startswith("expected:") and f"{race['expected_calls']} LLM calls" in expected
    assert worst.startswith("worst case")
    assert f"LLM calls:        {4 * ITEMS}" in text


def test_max_runs_and_min_effect_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "race.yaml"
    path.write_text(race_yaml())
    home = tmp_path / "home"
    held = cli_json(home, "run", str(path), "--max-runs", "40", "--min-effect", "0.05")
    assert held["runs"]["completed"] <= 40
    assert held["leaderboard"][0]["decision"]["state"] == "alive"

    too_small = cli(home, "run", str(path), "--max-runs", "3")
    assert too_small.returncode == 2
    assert "max_runs is 3, but a race's first round alone takes 16 runs" in too_small.stderr
    assert "Traceback" not in too_small.stderr
    sweeps = cli_json(home, "sweeps", "list")
    assert len(sweeps) == 1  # the refused sweep was never stored

    for bad in ("1", "-0.1", "x"):
        refused = cli(home, "run", str(path), "--min-effect", bad)
        assert refused.returncode == 2 and "--min-effect" in refused.stderr
