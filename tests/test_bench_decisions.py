"""bench.decisions end to end at its smallest (one space, 2 seeds, 12 items), so the proof of
issue 13 cannot rot: its spaces load, its true means are the grid's leaderboard, and the
table's figures are consistent with the sweeps they count."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.decision_spaces import SPACES, DecisionSpace
from bench.decisions import (
    CALLS_AIM,
    config_id,
    measure_space,
    table_lines,
    true_means,
)
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import RunningSimulator
from promptlooper_tui.workbench import open_workbench

ITEMS = 12
SEEDS = 2


@pytest.mark.parametrize("space", SPACES, ids=lambda space: space.name)
async def test_every_space_is_a_valid_experiment_of_24_configs(
    space: DecisionSpace, sim: RunningSimulator, tmp_path: Path
) -> None:
    async with open_workbench(Settings(tmp_path)) as wb:
        loaded = await wb.validate_text(space.experiment(sim.base_url, ITEMS))
        plan = await wb.plan_spec(loaded.spec)
    assert len(loaded.spec.items) == ITEMS
    assert (plan.configs, plan.runs) == (24, 24 * ITEMS)


async def test_true_means_are_the_grid_sweeps_leaderboard(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    space = SPACES[0]
    async with open_workbench(Settings(tmp_path)) as wb:
        experiment = (await wb.import_text(space.experiment(sim.base_url, ITEMS))).id
        truth = await true_means(wb, experiment)
        board = await wb.ranking(experiment, top=None)
    assert truth.items == ITEMS
    assert truth.grid_calls == truth.configs * ITEMS == board.ranked.runs
    board_means = {config_id(entry.config): entry.score for entry in board.entries}
    assert truth.means == pytest.approx(board_means, abs=5e-5)  # the board shows 4 decimals
    assert truth.ranked[0] == max(truth.means.items(), key=lambda entry: entry[1])
    assert truth.best_sd >= 0 and truth.pair_sd >= 0


async def test_the_table_counts_what_the_sweeps_did(sim: RunningSimulator) -> None:
    space = next(space for space in SPACES if space.name == "inside")  # the range: off-grid risk
    truth, min_effect, rows = await measure_space(sim.base_url, space, ITEMS, SEEDS)
    assert min_effect == 0.02
    assert [row.strategy for row in rows] == ["racing", "racing30", "guided", "guided30", "random"]
    _, racing30, _, guided30, baseline = rows
    for row in rows:
        assert [trial.seed for trial in row.trials] == list(range(SEEDS))
        assert all(trial.winner in truth.means for trial in row.trials)
        assert all(0 < trial.calls <= truth.grid_calls for trial in row.trials)
        assert 0 <= row.exactly_best(truth) <= row.correct(truth, min_effect) <= 1
        assert all(0 < share <= 1 for share in row.call_shares(truth))
    for budgeted in (racing30, guided30):
        assert all(trial.calls <= CALLS_AIM * truth.grid_calls for trial in budgeted.trials)
    for guided, drawn in zip(guided30.trials, baseline.trials, strict=True):
        assert drawn.calls == max(1, round(guided.calls / ITEMS)) * ITEMS
    lines, _ = table_lines([(space.name, truth, min_effect, rows)])
    assert len(lines) == 1 + len(rows)
