"""The app shell: themes and their persistence, errors as notifications, help, the command
palette, small terminals, and the demo."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from textual.widgets import DataTable

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.tui.screens.endpoint_form import EndpointForm
from promptlooper_tui.tui.screens.endpoints import EndpointsScreen
from promptlooper_tui.tui.screens.help import HelpScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.workbench import Workbench

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
        # Leave only once the monitor has drawn (and its header its title): an app torn down
        # while a screen still mounts fails in Textual's header.
        await wait_until(pilot, lambda: monitor.status is not None, "the monitor's first read")
        await wait_until(pilot, lambda: "Sweep monitor" in screen_text(app), "the header")

        sweep = await app.workbench.get_sweep(monitor.sweep_id)
        assert (sweep.experiment, sweep.status) == ("racing-summaries", "running")


async def test_the_evolve_demo_shows_a_proposer_rewriting_the_prompts(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app(demo=True, demo_latency_ms=5, demo_experiment="evolve.yaml")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await wait_for_screen(pilot, MonitorScreen)
        sweep = await app.workbench.get_sweep(monitor.sweep_id)
        assert (sweep.experiment, sweep.strategy) == ("evolve-release-notes", "evolve")
        # The panel shows the latest generation: any from the first on (the sweep may be past
        # the first by the time the screen is read).
        proposed = re.compile(r"\bgen [1-9]\d*: \d+ accepted")
        await wait_until(pilot, lambda: proposed.search(screen_text(app)), "a generation")


async def test_a_broken_tui_json_is_reported_and_never_overwritten(
    make_test_app: AppMaker, settings: Settings
) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "tui.json"
    path.write_text('{"keymap": {"monitor.pause": "space"')

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        shown = [n for n in notifications(app) if "tui.json" in n]
        assert len(shown) == 1
        assert str(path) in shown[0] and "not valid JSON" in shown[0]
        app.theme = "dusk"  # would be saved, were the file readable
        await pilot.pause()

    assert path.read_text() == '{"keymap": {"monitor.pause": "space"'


async def test_unknown_keymap_ids_are_reported_and_the_file_is_private(
    make_test_app: AppMaker, settings: Settings
) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "tui.json"
    path.write_text('{"keymap": {"bogus.id": "z", "monitor.pause": "space"}}')
    path.chmod(0o644)

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        shown = [n for n in notifications(app) if "keymap" in n.lower()]
        assert len(shown) == 1 and "bogus.id" in shown[0] and "monitor.pause" not in shown[0]
        app.theme = "dusk"
        await pilot.pause()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved == {"theme": "dusk", "keymap": {"bogus.id": "z", "monitor.pause": "space"}}


def test_the_demo_uses_the_home_given_and_otherwise_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptlooper_tui import cli
    from promptlooper_tui.tui import factory

    homes: list[Path] = []

    class Recorder:
        return_code = 0

        def run(self) -> None:
            assert homes[-1].is_dir()  # the app's home exists while it runs

    def make(settings: Settings, **options: object) -> Recorder:
        assert options["demo"] is True
        homes.append(settings.home)
        settings.home.mkdir(parents=True, exist_ok=True)
        return Recorder()

    monkeypatch.setattr(factory, "make_app", make)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PROMPTLOOPER_HOME", raising=False)

    assert cli.main(["--home", str(tmp_path / "mine"), "demo"]) == 0
    assert homes[-1] == tmp_path / "mine"

    assert cli.main(["demo"]) == 0
    assert homes[-1].name.startswith("promptlooper-demo-")
    assert not homes[-1].exists()  # removed when the app ended
    assert not (tmp_path / "xdg").exists()  # the default home was never touched
