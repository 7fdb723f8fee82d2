"""A dry-run plan says what it knows: racing's runs are all known up front (so a fully cached
race plans as fully cached) and adaptive strategies' figures are marked as upper bounds."""

from __future__ import annotations

from promptlooper_tui.workbench import SweepOverrides, Workbench
from tests.conftest import experiment_yaml


async def test_a_race_over_a_cached_grid_plans_every_call_as_cached(workbench: Workbench) -> None:
    imported = await workbench.import_text(experiment_yaml())
    grid = await workbench.plan(imported.id)
    assert (grid.cached_calls, grid.upper_bound) == (0, False)
    await workbench.run_sweep(await workbench.create_sweep(imported.id))

    race = await workbench.plan(imported.id, SweepOverrides(strategy="racing"))
    assert race.upper_bound
    assert race.runs == grid.runs
    assert race.cached_calls == race.calls == grid.calls

    guided = await workbench.plan(imported.id, SweepOverrides(strategy="guided", samples=2))
    assert guided.upper_bound


async def test_pausing_an_ended_sweep_says_so_in_plain_words(workbench: Workbench) -> None:
    import pytest

    from promptlooper_tui.domain.errors import Conflict

    imported = await workbench.import_text(experiment_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)
    with pytest.raises(Conflict) as caught:
        await workbench.pause_sweep(sweep_id)
    assert str(caught.value) == f"sweep {sweep_id} of 'support' has ended (completed)"


def test_a_dry_run_stores_nothing(tmp_path: object, write_experiment: object) -> None:
    from pathlib import Path

    from tests.helpers import cli

    home = Path(str(tmp_path)) / "home"
    path = write_experiment()  # type: ignore[operator]
    done = cli(home, "run", str(path), "--dry-run")
    assert done.returncode == 0, done.stderr
    listed = cli(home, "experiments", "list", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed.stdout
