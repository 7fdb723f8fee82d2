"""The experiment editor: problems listed by line as you type, jump to one, the plan, save a
new version, and launch a sweep that the monitor then shows."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static, TextArea

from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.tui.screens.launch import LaunchScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml, make_experiment
from .conftest import SIZE, AppMaker, open_home, wait_for_screen, wait_until


async def open_editor(pilot: Pilot[None]) -> EditorScreen:
    """The editor on the one experiment, once its text is validated and planned."""
    await open_home(pilot, experiments=1)
    await pilot.press("enter")
    editor = await wait_for_screen(pilot, EditorScreen)
    plan = editor.query_one("#plan", Static)
    await wait_until(pilot, lambda: "configs" in str(plan.render()), "the plan")
    return editor


async def test_problems_show_their_line_and_selecting_one_jumps_there(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot)
        text_area = editor.query_one("#yaml", TextArea)
        broken = text_area.text.replace("strategy: grid", "strategy: sideways")
        line = broken.splitlines().index("  strategy: sideways") + 1
        text_area.load_text(broken)
        text_area.cursor_location = (0, 0)

        problems = editor.query_one("#problems", OptionList)
        await wait_until(
            pilot,
            lambda: (
                problems.option_count and f"L{line}" in str(problems.get_option_at_index(0).prompt)
            ),
            "the problem",
        )
        assert "sweep.strategy" in str(problems.get_option_at_index(0).prompt)
        assert "No plan" in str(editor.query_one("#plan", Static).render())

        problems.focus()
        problems.highlighted = 0
        await pilot.press("enter")
        await wait_until(pilot, lambda: text_area.cursor_location == (line - 1, 0), "the jump")
        assert text_area.has_focus


async def test_save_makes_a_new_version_and_launch_opens_the_monitor(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.import_text(experiment_yaml())

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot)
        text_area = editor.query_one("#yaml", TextArea)
        text_area.load_text(text_area.text.replace("test experiment", "edited in the app"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: editor.sub_title == "support v2", "the saved version")

        await pilot.press("ctrl+r")
        launch = await wait_for_screen(pilot, LaunchScreen)
        concurrency = launch.query_one("#concurrency", Input)
        concurrency.value = "2"
        plan = launch.query_one("#plan", Static)
        await wait_until(pilot, lambda: "12 runs" in str(plan.render()), "the launch plan")
        await pilot.press("ctrl+r")

        monitor = await wait_for_screen(pilot, MonitorScreen)
        assert (await workbench.get_sweep(monitor.sweep_id)).experiment_version == 2
        # The app's own Workbench runs the sweep (the test's is another one on the store).
        await wait_until(
            pilot, lambda: app.workbench.runner(monitor.sweep_id) is None, "the end", seconds=90
        )

    experiment = await workbench.get_experiment("support")
    assert (experiment.version, experiment.description) == (2, "edited in the app")
    summary = await workbench.sweep_summary(monitor.sweep_id)
    assert summary.runs.completed == 12


async def test_a_relative_dataset_file_resolves_against_the_experiment_files_folder(
    workbench: Workbench, make_test_app: AppMaker, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    items = [json.dumps(item) for item in make_experiment()["dataset"]]
    (folder / "items.jsonl").write_text("\n".join(items) + "\n")
    path = folder / "experiment.yaml"
    path.write_text(experiment_yaml(dataset={"file": "items.jsonl"}))
    await workbench.import_file(path)

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot)
        text_area = editor.query_one("#yaml", TextArea)
        text_area.load_text(text_area.text.replace("test experiment", "edited elsewhere"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: editor.sub_title == "support v2", "the saved version")

    experiment = await workbench.get_experiment("support")
    assert experiment.source_file == str(path)
    assert len(experiment.spec["dataset"]) == len(items)
