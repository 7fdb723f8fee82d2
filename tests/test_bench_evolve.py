"""bench.evolve end to end at its smallest (one seed, one generation, 20 fresh items), so the
proof of issue 14 cannot rot: the sample loads and evolves, the budgeted run keeps to twice
racing's calls, and the table is drawn from what the sweeps did."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import evolve as bench
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import RunningSimulator
from promptlooper_tui.workbench import open_workbench


def test_fresh_items_follow_the_datasets_pattern_and_are_seeded() -> None:
    items = bench.fresh_items(30)
    assert items == bench.fresh_items(30)
    assert len({item["input"]["change"] for item in items}) > 20
    for item in items:
        assert all(keyword in item["input"]["change"] for keyword in item["keywords"])


async def test_one_seed_of_the_sample(
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(bench, "FRESH", 20)
    doc = bench.load_experiment("evolve.yaml", sim.base_url, {"generations": 1, "proposals": 2})
    async with open_workbench(Settings(tmp_path)) as wb:
        trial = await bench.run_seed(wb, doc, "evolve", seed=0)
    assert trial.racing_calls == 3 * 60  # three prompts the race cannot tell apart: every item
    budgeted = trial.evolved["evolve@2x"]
    assert trial.racing_calls < budgeted.calls <= 2 * trial.racing_calls
    for evolved in trial.evolved.values():
        assert len(evolved.curve) == len(evolved.held_curve) == 2  # hand-written, generation 1
        assert 0 <= evolved.hand_held <= 1
        assert 0 <= evolved.fresh <= 1 and evolved.held is not None
    met = bench.report("evolve.yaml", [trial])
    table = capsys.readouterr().out
    assert f"{trial.racing_calls:>7} {budgeted.calls:>9}" in table
    assert met == (budgeted.fresh > trial.hand_fresh)
