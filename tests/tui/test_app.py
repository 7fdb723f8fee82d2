"""The app shell: themes and their persistence, errors as notifications, help, the command
palette, small terminals, and the demo."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from promptlooper_tui.service import Workbench
from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.tui.screens.endpoint_form import EndpointForm
from promptlooper_tui.tui.screens.endpoints import EndpointsScreen
from promptlooper_tui.tui.screens.help import HelpScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen

from ..conftest import experiment_yaml
from .conftest import (
    SIZE,
    AppMaker,
    notifications,
    open_home,
    screen_text,
    wait_for_screen,
    wait_until,
)


async def test_the_chosen_theme_is_remembered_across_restarts(make_test_app: AppMaker) -> None:
    first = make_test_app()
    async with first.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        assert first.theme == "promptlooper"
        first.theme = "dusk"
        await pilot.pause()

    second = make_test_app()
    async with second.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        assert second.theme == "dusk"


async def test_user_themes_load_and_bad_files_are_reported_in_one_notification(
    make_test_app: AppMaker, tmp_path: Path
) -> None:
    themes = tmp_path / "my-themes"
    themes.mkdir()
    (themes / "ocean.yaml").write_text("name: ocean\nprimary: '#3377cc'\ndark: true\n")
    (themes / "typo.yaml").write_text("name: typo\nprimray: '#3377cc'\n")
    (themes / "broken.yaml").write_text("name: [unclosed\n")

    app = make_test_app(user_theme_dir=themes)
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        assert "ocean" in app.available_themes
        shown = [n for n in notifications(app) if "theme file" in n]
        assert len(shown) == 1
        assert "typo.yaml" in shown[0] and "broken.yaml" in shown[0]
        assert "ocean.yaml" not in shown[0]


async def test_a_failed_operation_becomes_a_notification(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=1)
        await pilot.press("m")  # the monitor of an experiment that has no sweep yet
        await wait_until(pilot, lambda: notifications(app), "a notification")

        assert "has no sweeps yet" in notifications(app)[-1]
        assert app.is_running


async def test_help_lists_the_keys_of_the_screen_underneath(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        await wait_for_screen(pilot, EndpointsScreen)
        await pilot.press("f1")
        help_screen = await wait_for_screen(pilot, HelpScreen)

        ids = {str(row[2]) for row in map(help_screen.query_one(DataTable).get_row_at, range(6))}
        assert {"endpoints.add", "endpoints.test", "endpoints.remove"} <= ids
        await pilot.press("escape")
        await wait_for_screen(pilot, EndpointsScreen)


async def test_the_command_palette_opens_an_experiment(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=1)
        await pilot.press("ctrl+p")
        await pilot.press(*"experiment: open support")
        await wait_until(pilot, lambda: "Edit support v1" in screen_text(app), "the command")
        await pilot.press("enter")

        await wait_for_screen(pilot, EditorScreen)


async def test_every_screen_survives_a_small_terminal(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=1)
        await pilot.resize_terminal(80, 24)
        for keys, screen in (
            (["f1"], HelpScreen),
            (["escape", "enter"], EditorScreen),
            (["f3"], EndpointsScreen),
            (["a"], EndpointForm),
        ):
            await pilot.press(*keys)
            await wait_for_screen(pilot, screen)
            await pilot.resize_terminal(60, 16)
            await pilot.pause()
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
        assert "Add an OpenAI-compatible endpoint" in screen_text(app)
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert app.is_running


async def test_the_demo_opens_a_running_sweep_in_the_monitor(make_test_app: AppMaker) -> None:
    app = make_test_app(demo=True, demo_latency_ms=20)
    async with app.run_test(size=SIZE) as pilot:
        monitor = await wait_for_screen(pilot, MonitorScreen)

        sweep = await app.workbench.get_sweep(monitor.sweep_id)
        assert (sweep.experiment, sweep.status) == ("racing-summaries", "running")
