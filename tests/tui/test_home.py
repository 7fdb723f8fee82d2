"""The experiments list: what it shows, and duplicate / delete (with its question)."""

from __future__ import annotations

from textual.widgets import DataTable

from promptlooper_tui.tui.screens.confirm import ConfirmScreen
from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml
from .conftest import SIZE, AppMaker, open_home, screen_text, wait_for_screen, wait_until


async def test_lists_experiments_with_their_latest_results(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    summary = await workbench.run_sweep(await workbench.create_sweep(imported.id))
    await workbench.import_text(experiment_yaml(name="untried"))

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        home = await open_home(pilot, experiments=2)
        table = home.query_one("#experiments", DataTable)
        support = [str(cell) for cell in table.get_row(imported.id)]

        assert support[:3] == ["support", "v1", "completed"]
        assert support[3] == f"{summary.leaderboard[0].score:.3f}"
        assert support[4] == f"{summary.runs.total}"
        text = screen_text(app)
        assert "untried" in text
        assert f"latest sweep {summary.sweep_id}" in text


async def test_enter_opens_the_experiment_in_the_editor(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=1)
        await pilot.press("enter")

        editor = await wait_for_screen(pilot, EditorScreen)
        await wait_until(pilot, lambda: "name: support" in editor.query_one("#yaml").text, "text")


async def test_delete_asks_first_and_keeps_the_experiment_on_cancel(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())
    await workbench.import_text(experiment_yaml(name="other"))

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=2)
        await pilot.press("x")
        question = await wait_for_screen(pilot, ConfirmScreen)
        assert "Delete experiment other" in screen_text(app)
        await pilot.press("enter")  # the focused button of a dangerous question is Cancel
        await open_home(pilot, experiments=2)
        assert not question.is_attached

        await pilot.press("x")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await open_home(pilot, experiments=1)

    assert [e.name for e in await workbench.list_experiments()] == ["support"]


async def test_duplicate_adds_a_copy(workbench: Workbench, make_test_app: AppMaker) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=1)
        await pilot.press("d")
        await open_home(pilot, experiments=2)

    assert [e.name for e in await workbench.list_experiments()] == ["support", "support-copy"]
