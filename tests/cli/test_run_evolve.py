"""`promptlooper run FILE --strategy evolve` as a user types it, on a file that names no
proposer: the flags supply it, `--json` carries the train and held-out scores, and without a
proposer the run is refused in one line, exit 2, with nothing stored."""

from __future__ import annotations

from pathlib import Path

import yaml

from promptlooper_tui.domain.experiment import SweepSettings
from promptlooper_tui.engine.evolve import default_max_runs
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT

from ..helpers import cli, cli_json


def racing_file_sweep() -> dict[str, object]:
    return {"strategy": "racing", "seed": 3, "items_per_round": 2}


def racing_file(folder: Path) -> Path:
    """The fixture's experiment as a racing sweep: evolve is asked for on the command line."""
    doc = {**EVOLVE_EXPERIMENT, "sweep": racing_file_sweep()}
    path = folder / "notes.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_run_with_strategy_evolve_and_a_proposer_from_the_flags(tmp_path: Path) -> None:
    home, path = tmp_path / "home", racing_file(tmp_path)
    refused = cli(home, "run", str(path), "--strategy", "evolve")
    assert refused.returncode == 2
    assert "needs a proposer" in refused.stderr and "--proposer MODEL" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "(none)" in cli(home, "sweeps", "list").stdout

    flags = ["--strategy", "evolve", "--proposer", "large-model", "--generations", "1"]
    plan = cli_json(home, "run", str(path), *flags, "--proposals", "2", "--dry-run")
    assert plan["proposer_calls"] == 1 and plan["expected_runs"] is None
    # No --max-runs: evolve's default budget holds the worst case, 3 generations of 4
    # proposals and the 3 prompts on 12 items (180 runs) to probing every generation's
    # proposals on 2 blocks of 2 items beside 4 finalists' 4 held-out items: 16 + 4 x 4 x 4.
    wide = cli_json(home, "run", str(path), *flags[:4], "--generations", "3", "--dry-run")
    settings = SweepSettings.model_validate(
        {**racing_file_sweep(), "strategy": "evolve", "proposer": {"model": "large-model"}}
    )
    assert wide["runs"] == default_max_runs(3, 12, settings) == 80
    # A budget holds the worst case too (the progress bar counts against it).
    held = cli_json(home, "run", str(path), *flags, "--max-runs", "70", "--dry-run")
    assert held["runs"] == 70 and held["calls"] == 71

    done = cli_json(home, "run", str(path), *flags, "--proposals", "2", "--holdout", "0.25")
    assert done["status"] == "completed"
    assert done["calls"]["requested"] == done["runs"]["completed"] + 1  # the proposer's call
    board = done["leaderboard"]
    winner = board[0]
    assert winner["holdout_score"] is not None and winner["holdout_n"] == 3  # 12 items x 0.25
    assert all(entry["train_n"] for entry in board)
    shown = cli(home, "leaderboard", EVOLVE_EXPERIMENT["name"], "--sweep", done["sweep_id"])
    assert "train" in shown.stdout and "held-out" in shown.stdout
