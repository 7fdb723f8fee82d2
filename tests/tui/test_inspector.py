"""The run inspector (rating, next / previous, markdown outputs) and the compare screen."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Markdown, Static

from promptlooper_tui.tui.app import PromptLooperApp
from promptlooper_tui.tui.screens.compare import CompareScreen
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen, looks_like_markdown
from promptlooper_tui.tui.text_diff import word_diff

from .conftest import SIZE, AppMaker, notifications, screen_text, wait_for_screen, wait_until
from .sweep_data import SweptExperiment, open_over_home, sweep_experiment

MARKDOWN_OUTPUT = "# Reset your password\n\n1. Open **Settings**\n2. Choose *Security*\n"


async def inspect(
    pilot: Pilot[None], run_id: str, run_ids: list[str] | None = None
) -> RunInspectorScreen:
    screen = RunInspectorScreen(run_id, run_ids)
    await open_over_home(pilot, screen)
    await wait_until(pilot, lambda: screen.run is not None, "the run")
    return screen


def ratings(app: PromptLooperApp) -> list[str]:
    return [n for n in notifications(app) if "Your rating" in n]


async def swept(app: PromptLooperApp, pilot: Pilot[None]) -> SweptExperiment:
    await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
    return await sweep_experiment(app.workbench)


async def test_rating_keys_record_human_scores(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        runs = await swept(app, pilot)
        run_id = runs.run_ids[0]
        await inspect(pilot, run_id)

        # A digit d is stored as d/9, shown with 3 decimals as `promptlooper score` shows it.
        await pilot.press("9")
        await wait_until(pilot, lambda: ratings(app), "a note")
        assert "Your rating: 1.000" in ratings(app)[0]
        run = await app.workbench.get_run(run_id)
        assert [(s.kind, s.value) for s in run.scores if s.kind == "human"] == [("human", 1.0)]

        # - lowers the person's rating by one step; it replaces the earlier one.
        await pilot.press("minus")
        await wait_until(pilot, lambda: len(ratings(app)) == 2, "a second note")
        run = await app.workbench.get_run(run_id)
        assert [s.value for s in run.scores if s.kind == "human"] == [round(8 / 9, 3)]
        assert [s.value for s in run.superseded_scores] == [1.0]

        await pilot.press("3")
        await wait_until(pilot, lambda: len(ratings(app)) == 3, "a third note")
        run = await app.workbench.get_run(run_id)
        assert [s.value for s in run.scores if s.kind == "human"] == [round(3 / 9, 3)]
        assert any("Your rating: 0.333" in n for n in ratings(app))
        assert "human" in screen_text(app)


async def test_next_and_previous_step_through_the_list(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        runs = await swept(app, pilot)
        ids = runs.run_ids[:3]
        inspector = await inspect(pilot, ids[1], ids)
        assert inspector.sub_title.endswith("2 of 3")

        await pilot.press("n")
        await wait_until(pilot, lambda: inspector.run and inspector.run.id == ids[2], "the next")
        assert inspector.sub_title == f"{ids[2]} · 3 of 3"
        await pilot.press("n")
        await wait_until(pilot, lambda: any("No more" in n for n in notifications(app)), "end")

        await pilot.press("p", "p")
        await wait_until(pilot, lambda: inspector.run and inspector.run.id == ids[0], "the first")


async def test_a_markdown_output_is_rendered_as_markdown(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        runs = await swept(app, pilot)
        markdown_run, plain_run = runs.run_ids[:2]
        await app.workbench.db.execute(
            "UPDATE stage_results SET output = ? WHERE run_id = ?", (MARKDOWN_OUTPUT, markdown_run)
        )
        inspector = await inspect(pilot, markdown_run, [markdown_run, plain_run])
        await wait_until(pilot, lambda: inspector.query(Markdown), "the markdown output")
        rendered = inspector.query_one(Markdown)
        assert rendered.has_class("output")
        await wait_until(pilot, lambda: "Reset your password" in screen_text(app), "heading")
        assert "**Settings**" not in screen_text(app)

        await pilot.press("n")
        await wait_until(pilot, lambda: not inspector.query(Markdown), "a plain output")
        assert inspector.query(".output").only_one(Static)


def test_markdown_detection_needs_markdown_structure() -> None:
    assert looks_like_markdown(MARKDOWN_OUTPUT)
    assert not looks_like_markdown("Open Settings, then Security. Press Reset - done.")


async def test_c_on_two_runs_compares_them(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        runs = await swept(app, pilot)
        first, second = runs.run_ids[:2]
        await inspect(pilot, first, [first, second])
        await pilot.press("c")
        await wait_until(pilot, lambda: app.compare_mark is not None, "the mark")
        await pilot.press("n")
        await wait_until(
            pilot,
            lambda: (
                isinstance(app.screen, RunInspectorScreen)
                and app.screen.run is not None
                and app.screen.run.id == second
            ),
            "the second run",
        )
        await pilot.press("c")
        compare = await wait_for_screen(pilot, CompareScreen)
        assert app.compare_mark is None
        text = screen_text(app)
        assert f"run {first}" in text and f"run {second}" in text
        assert compare.differences > 0


def test_word_diff_marks_only_the_changed_words() -> None:
    left, right = word_diff("open the Settings page", "open the Billing page")
    assert left == [("open the ", False), ("Settings", True), (" page", False)]
    assert right == [("open the ", False), ("Billing", True), (" page", False)]
    assert word_diff("same text", "same text") == ([("same text", False)], [("same text", False)])
