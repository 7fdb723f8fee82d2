"""The runs list: thousands of runs paged in lazily, and the status / score filters."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input, Select

from promptlooper_tui.tui.app import PromptLooperApp
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.runs import RunsScreen
from promptlooper_tui.tui.widgets.run_list import PAGE_SIZE, RunList

from .conftest import SIZE, AppMaker, notifications, wait_for_screen, wait_until
from .sweep_data import add_bulk_runs, open_over_home, sweep_experiment

BULK = 5000
TOTAL = BULK + 12  # the sweep's own runs, then the added ones


async def open_runs(
    app: PromptLooperApp, pilot: Pilot[None], bulk: int
) -> tuple[RunsScreen, RunList]:
    await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
    wb = app.workbench
    swept = await sweep_experiment(wb)
    await add_bulk_runs(wb, swept.sweep_id, bulk)
    screen = RunsScreen(swept.sweep_id)
    await open_over_home(pilot, screen)
    runs = screen.query_one(RunList)
    await wait_until(pilot, lambda: runs.row_count == PAGE_SIZE, "the first page")
    return screen, runs


async def test_scrolling_to_the_end_loads_pages_not_everything(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, runs = await open_runs(app, pilot, BULK)
        assert runs.total == TOTAL
        widgets = len(screen.query("*"))

        for page in range(2, 5):
            await pilot.press("end")
            await wait_until(pilot, lambda p=page: runs.row_count == p * PAGE_SIZE, f"page {page}")
        assert not runs.complete
        assert len(screen.query("*")) == widgets
        assert runs.cursor_row >= 3 * PAGE_SIZE - 1
        assert len(set(runs.run_ids)) == runs.row_count  # no run twice

        await pilot.press("enter")
        inspector = await wait_for_screen(pilot, RunInspectorScreen)
        assert inspector.sub_title.endswith(f"of {4 * PAGE_SIZE}")


async def test_status_and_score_filters(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, runs = await open_runs(app, pilot, 1000)

        screen.query_one("#status-filter", Select).value = "failed"
        await wait_until(pilot, lambda: runs.total == 100, "the failed runs")
        await wait_until(pilot, lambda: runs.row_count == 100, "them all loaded")
        assert runs.complete

        screen.query_one("#status-filter", Select).value = "all"
        screen.query_one("#min-score", Input).value = "0.9"
        screen.query_one("#max-score", Input).focus()
        await pilot.press("enter")
        # Added runs score (i % 100) / 100 and fail on multiples of 10: 0.91-0.99 in each
        # hundred, plus the sweep's own runs scoring 0.9 or more.
        wanted = (await app.workbench.list_runs(sweep=screen.sweep_id, min_score=0.9)).total
        await wait_until(pilot, lambda: runs.total == wanted, "the score filter")
        assert screen.run_filter.describe() == "all, score 0.9–1"
        assert wanted >= 90

        screen.query_one("#min-score", Input).value = "2"
        screen.query_one("#min-score", Input).focus()
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: any("between 0 and 1" in n for n in notifications(app)), "a warning"
        )
        assert screen.run_filter.min_score == 0.9


async def test_next_in_the_inspector_loads_the_lists_next_page(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        _, runs = await open_runs(app, pilot, 1000)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert runs.row_count == PAGE_SIZE  # laid out again for the width, no page loaded
        last = runs.run_ids[-1]
        runs.move_cursor(row=PAGE_SIZE - 1, animate=False)
        await wait_until(pilot, lambda: runs.highlighted_run() == last, "the last loaded run")
        await pilot.press("enter")
        inspector = await wait_for_screen(pilot, RunInspectorScreen)
        await wait_until(pilot, lambda: inspector.run is not None, "the run")

        await pilot.press("n")
        await wait_until(pilot, lambda: inspector.run_id != last, "the next page's first run")
        assert runs.row_count > PAGE_SIZE
        assert inspector.run_id == runs.run_ids[PAGE_SIZE]
        assert inspector.sub_title.endswith(f"{PAGE_SIZE + 1} of {runs.row_count}")


async def test_runs_finishing_while_paging_neither_repeat_nor_skip_a_run(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, runs = await open_runs(app, pilot, 1000)
        wb = app.workbench
        before = await wb.list_runs(sweep=screen.sweep_id, limit=2 * PAGE_SIZE)
        # Fifty runs finish, newer than every loaded one: the next page is where it was.
        await wb.db.execute(
            "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
            "status, score, finished_at) SELECT 'late_' || id, sweep_id, config_id, "
            "experiment_id, item_index, repeat + 100000, status, score, "
            "'2999-01-01T00:00:00.000+00:00' FROM runs WHERE sweep_id = ? LIMIT 50",
            (screen.sweep_id,),
        )
        await pilot.press("end")
        await wait_until(pilot, lambda: runs.row_count == 2 * PAGE_SIZE, "the second page")
        assert runs.run_ids == [run.id for run in before.items]
        assert runs.total == before.total + 50
