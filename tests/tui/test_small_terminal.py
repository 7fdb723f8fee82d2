"""The app at 80x24: what must stay on screen (leaderboard numbers, help and quit, a labelled
score distribution), why a sweep ended, and keys that show only where they can act."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input, Static

from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.tui.screens.confirm import ConfirmScreen
from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.tui.screens.endpoint_form import EndpointForm
from promptlooper_tui.tui.screens.endpoints import EndpointsScreen
from promptlooper_tui.tui.screens.export import ExportScreen
from promptlooper_tui.tui.screens.help import HelpScreen
from promptlooper_tui.tui.screens.home import HomeScreen
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.launch import LaunchScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.screens.runs import RunsScreen
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable
from promptlooper_tui.tui.widgets.run_list import RunList
from promptlooper_tui.tui.widgets.run_table import LatestRuns
from promptlooper_tui.tui.widgets.score_histogram import ScoreHistogram
from promptlooper_tui.workbench import remote_control

from ..conftest import experiment_yaml
from .conftest import AppMaker, notifications, open_home, screen_text, wait_for_screen, wait_until
from .sweep_data import open_over_home, sweep_experiment

SMALL = (80, 24)

#: Parameter values long enough that the config column cannot show them whole at 80 columns.
LONG_CONFIGS = {
    "model": ["small-model", "large-model"],
    "temperature": [0.0, 0.8],
    "prompt_style": ["a-rather-long-prompt-variant-name", "another-long-prompt-variant"],
    "max_tokens": 60,
}


def bottom_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def footer_has_help_and_quit(text: str) -> bool:
    bottom = bottom_line(text)
    return bool(re.search(r"f1 ?Help", bottom) and re.search(r"\^q ?Quit", bottom))


async def test_the_leaderboard_keeps_score_interval_and_tie_when_narrow(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        swept = await sweep_experiment(app.workbench, parameters=LONG_CONFIGS)
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        board = monitor.query_one(LeaderboardTable)
        await wait_until(pilot, lambda: len(board.entries) == 8, "the leaderboard")

        columns = [str(column.key.value) for column in board.ordered_columns]
        assert {"rank", "config", "score", "ci", "n", "tied"} <= set(columns)
        text = screen_text(app)
        assert "95% CI" in text and "vs #1" in text and "leader" in text
        # The config was cut to make room ("…"), not the numbers.
        assert "…" in text

        # Focus on a table adds its keys; help and quit stay in view.
        board.focus()
        await pilot.pause()
        assert footer_has_help_and_quit(screen_text(app))


async def test_every_screen_and_dialog_shows_help_and_quit_at_80x24(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        swept = await sweep_experiment(app.workbench)
        await open_home(pilot, experiments=1)
        seen = []

        async def check(screen: type[object]) -> None:
            await wait_until(pilot, lambda: isinstance(app.screen, screen), screen.__name__)
            await pilot.pause()
            if screen is HelpScreen:  # help is open: its key closes it
                assert re.search(r"esc ?Close.*\^q ?Quit", bottom_line(screen_text(app)))
            else:
                assert footer_has_help_and_quit(screen_text(app)), screen.__name__
            seen.append(screen.__name__)

        await check(HomeScreen)
        await pilot.press("enter")
        await check(EditorScreen)
        await pilot.press("escape")
        await pilot.press("l")
        await check(LaunchScreen)
        await pilot.press("escape")
        await pilot.press("m")
        await check(MonitorScreen)
        await pilot.press("tab")  # the leaderboard, with its own key
        await check(MonitorScreen)
        await pilot.press("a")
        await check(RunsScreen)
        runs = app.screen.query_one(RunList)
        await wait_until(pilot, lambda: runs.row_count == 12, "the runs")
        await pilot.press("enter")
        await check(RunInspectorScreen)
        await pilot.press("escape", "escape", "e")
        await check(ExportScreen)
        await pilot.press("f1")
        await check(HelpScreen)
        await pilot.press("escape", "f3")
        await check(EndpointsScreen)
        await pilot.press("a")
        await check(EndpointForm)
        await pilot.press("escape", "f2", "x")
        await check(ConfirmScreen)
        bottom = bottom_line(screen_text(app))
        assert re.search(r"y ?Yes +n ?No", bottom)  # the dialog's own keys
        await pilot.press("n")
        assert swept.sweep_id
        assert len(seen) == 12


async def test_the_score_distribution_is_labelled_or_summed_up(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        swept = await sweep_experiment(app.workbench)
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        latest = monitor.query_one(LatestRuns)
        await wait_until(pilot, lambda: latest.row_count == 12, "the latest runs")
        histogram = str(monitor.query_one(ScoreHistogram).render())
        # Room for every bin: ten labelled bars, the lowest included.
        assert all(f"{low / 10:.1f}–{(low + 1) / 10:.1f}" in histogram for low in range(10))

        await pilot.resize_terminal(100, 24)
        await pilot.pause()
        summary = str(monitor.query_one(ScoreHistogram).render())
        assert "mean" in summary and "median" in summary and "0.0–0.1" not in summary

        await pilot.resize_terminal(*SMALL)
        await wait_until(pilot, lambda: not monitor.query_one("#scores-panel").display, "narrow")
        line = monitor.query_one("#scores-line", Static)
        assert line.display and str(line.render()).startswith("scores 12 · mean")


async def test_a_failed_sweep_says_why_in_the_monitor(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        await wb.start_simulated_endpoint(SimulatorOptions(fail_rate=1.0))
        swept = await sweep_experiment(wb)
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        await wait_until(pilot, lambda: monitor.reason is not None, "the reason")

        sweep = await wb.get_sweep(swept.sweep_id)
        assert sweep.status == "failed"
        assert monitor.reason.startswith(f"Failed: {sweep.error}")
        assert "Most common run error (" in monitor.reason
        assert "Failed:" in screen_text(app)
        assert "no scored runs yet" in screen_text(app)
        assert "No scores yet" in str(monitor.query_one(ScoreHistogram).render())
        assert "█" not in str(monitor.query_one(ScoreHistogram).render())


async def test_pause_resume_and_stop_show_only_where_they_can_act(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        swept = await sweep_experiment(app.workbench)
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        await wait_until(pilot, lambda: monitor.status == "completed", "the monitor's read")
        await pilot.pause()

        shown = {active.binding.action for active in monitor.active_bindings.values()}
        assert not {"pause", "resume", "stop"} & shown
        bottom = bottom_line(screen_text(app))
        assert "Pause" not in bottom and "Stop" not in bottom
        await pilot.press("p")  # hidden keys do nothing, and say nothing odd
        await pilot.pause()
        assert not [n for n in notifications(app) if "process" in n]


async def test_p_on_a_sweep_running_elsewhere_asks_that_process(
    make_test_app: AppMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    # The process named below runs no sweep: it never answers, so wait for it only briefly.
    monkeypatch.setattr(remote_control, "ANSWER_WAIT_S", 0.2)
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        swept = await sweep_experiment(wb)
        # Owned by a live process that is not running it here (the test's parent).
        await wb.db.execute(
            "UPDATE sweeps SET status = 'running', finished_at = NULL, owner_pid = ? WHERE id = ?",
            (os.getppid(), swept.sweep_id),
        )
        monitor = MonitorScreen(swept.sweep_id)
        await open_over_home(pilot, monitor)
        await wait_until(pilot, lambda: monitor.status == "running", "running elsewhere")
        await pilot.press("p")
        await wait_until(pilot, lambda: monitor.status == "paused", "paused")
        asked = [e for e in wb.bus.replay() if e.type == "sweep.control"]
        assert [(e.sweep_id, e.data) for e in asked] == [(swept.sweep_id, {"action": "pause"})]
        assert not [n for n in notifications(app) if "process" in n]


async def test_one_escape_leaves_the_editor(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        await app.workbench.import_text(experiment_yaml())
        await open_home(pilot, experiments=1)
        await pilot.press("enter")
        editor = await wait_for_screen(pilot, EditorScreen)
        await wait_until(pilot, lambda: editor._text_area.has_focus, "the text in focus")

        await pilot.press("escape")
        await wait_for_screen(pilot, HomeScreen)


async def test_the_palette_quit_asks_while_a_sweep_runs(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        await wb.start_simulated_endpoint(SimulatorOptions(latency_ms=500))
        imported = await wb.import_text(experiment_yaml(sweep={"max_concurrency": 1}))
        await wb.start_sweep(await wb.create_sweep(imported.id))
        await open_home(pilot, experiments=1)

        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles.count("Quit") == 1 and "Theme" not in titles
        quit_command = next(c for c in app.get_system_commands(app.screen) if c.title == "Quit")
        quit_command.callback()
        question = await wait_for_screen(pilot, ConfirmScreen)
        assert "is running. Quit anyway?" in str(question.query_one("#question").render())
        await pilot.press("n")
        await wait_for_screen(pilot, HomeScreen)
        assert app.is_running


async def test_no_sweep_yet_is_said_with_the_experiment_name(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        imported = await app.workbench.import_text(experiment_yaml(name="quickstart"))
        await open_home(pilot, experiments=1)
        for key in ("m", "r", "e"):
            count = len(notifications(app))
            await pilot.press(key)
            await wait_until(
                pilot, lambda count=count: len(notifications(app)) > count, f"{key}'s answer"
            )
            message = notifications(app)[-1]
            assert "Experiment 'quickstart' has no sweeps yet" in message
            assert imported.id not in message
            assert isinstance(app.screen, HomeScreen)  # no empty export screen


async def test_the_launch_dialog_says_why_a_number_is_refused(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        await app.workbench.import_text(experiment_yaml())
        await open_home(pilot, experiments=1)
        await pilot.press("l")
        launch = await wait_for_screen(pilot, LaunchScreen)
        plan = launch.query_one("#plan", Static)
        concurrency = launch.query_one("#concurrency", Input)
        assert concurrency.value == "4"

        concurrency.value = "abc"
        await wait_until(pilot, lambda: "not a whole number" in str(plan.render()), "why")
        assert "Concurrency: 'abc' is not a whole number" in str(plan.render())

        concurrency.value = ""
        await wait_until(pilot, lambda: "Concurrency: give" in str(plan.render()), "blank")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: notifications(app), "the refusal")
        assert "Concurrency: give a whole number" in notifications(app)[-1]
        assert isinstance(app.screen, LaunchScreen)


async def test_the_editor_points_at_the_line_of_a_yaml_or_template_error(
    make_test_app: AppMaker,
) -> None:
    from textual.widgets import OptionList

    from promptlooper_tui.tui.screens.editor import starter_text

    lines = starter_text("lines").splitlines()
    model = next(n for n, line in enumerate(lines) if line.startswith("  model:"))
    brief = next(n for n, line in enumerate(lines) if line.startswith("  brief:"))
    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("n")
        editor = await wait_for_screen(pilot, EditorScreen)
        problems = editor.query_one("#problems", OptionList)
        for broken, line, words in (
            ({model: "  model: [small-model, large-model"}, model + 1, "not closed"),
            ({brief: '  brief: "Say: {{ item.input.oops }}"'}, brief + 1, "no field 'oops'"),
        ):
            text = "\n".join(broken.get(n, old) for n, old in enumerate(lines))
            editor._text_area.load_text(text)
            await wait_until(
                pilot,
                lambda words=words: (
                    problems.option_count and words in str(problems.get_option_at_index(0).prompt)
                ),
                words,
            )
            assert str(problems.get_option_at_index(0).prompt).startswith(f"L{line} ")
            editor._text_area.cursor_location = (0, 0)
            await pilot.press("ctrl+n")
            assert editor._text_area.cursor_location == (line - 1, 0)


async def test_the_new_experiment_template_has_a_visible_winner(make_test_app: AppMaker) -> None:
    from promptlooper_tui.tui.screens.editor import starter_text

    app = make_test_app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        imported = await wb.import_text(starter_text("first-try"))
        sweep_id = await wb.create_sweep(imported.id)
        await wb.run_sweep(sweep_id)
        board = await wb.leaderboard(sweep_id)

    scores = [entry.score for entry in board]
    assert len(scores) == 4
    # A leader ahead of the next config by a visible margin, and the spread of a real choice.
    assert scores[0] - scores[1] >= 0.05
    assert scores[0] - scores[-1] >= 0.2
    assert board[0].config == {"model": "large-model", "prompt": "brief"}
