"""Snapshots of the main screens at 100x30, over data built the same way every time (fixed
ids, the deterministic simulated endpoint). Update with `--snapshot-update`, after looking at
the report."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TextArea

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.factory import make_app
from promptlooper_tui.tui.screens.editor import EditorScreen
from promptlooper_tui.tui.screens.endpoints import EndpointsScreen
from promptlooper_tui.tui.screens.help import HelpScreen
from promptlooper_tui.workbench import open_workbench

from ..conftest import experiment_yaml
from .conftest import SIZE, open_home, wait_for_screen, wait_until

QUICKSTART = Path(__file__).resolve().parents[2] / "sample_experiments" / "quickstart.yaml"

SnapCompare = Callable[..., bool]


@pytest.fixture
def home_with_results(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home with the quickstart experiment swept, one experiment never run, and two
    endpoints; ids are numbered instead of random."""
    numbers = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(numbers) << 88))

    async def build() -> None:
        async with open_workbench(settings) as wb:
            quickstart = await wb.import_file(QUICKSTART)
            await wb.run_sweep(await wb.create_sweep(quickstart.id))
            await wb.import_text(experiment_yaml(name="untried"))
            await wb.add_endpoint("local", "http://127.0.0.1:8080/v1", api_key_env="LOCAL_KEY")
            await wb.add_endpoint(
                "hosted",
                "https://llm.example.com/v1",
                api_key="sk-snapshot-secret",
                pricing={"large-model": (2.5, 10.0), "*": (0.15, 0.6)},
            )

    asyncio.run(build())
    return settings


def when(
    *steps: Callable[[Pilot[None]], Awaitable[object]],
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A `run_before` that runs the steps in order."""

    async def run(pilot: Pilot[None]) -> None:
        for step in steps:
            await step(pilot)

    return run


async def home_loaded(pilot: Pilot[None]) -> None:
    home = await open_home(pilot, experiments=2)
    table = home.query_one("#experiments", DataTable)
    await wait_until(pilot, lambda: table.cursor_row == 0, "the first row")


def test_home(home_with_results: Settings, snap_compare: SnapCompare) -> None:
    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SIZE, run_before=when(home_loaded))


def test_help(home_with_results: Settings, snap_compare: SnapCompare) -> None:
    async def help_open(pilot: Pilot[None]) -> None:
        await pilot.press("f1")
        await wait_for_screen(pilot, HelpScreen)

    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SIZE, run_before=when(home_loaded, help_open))


def test_endpoints(home_with_results: Settings, snap_compare: SnapCompare) -> None:
    async def endpoints_listed(pilot: Pilot[None]) -> None:
        await pilot.press("f3")
        screen = await wait_for_screen(pilot, EndpointsScreen)
        table = screen.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, "three endpoints")

    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SIZE, run_before=when(home_loaded, endpoints_listed))


async def editor_planned(pilot: Pilot[None]) -> None:
    await pilot.press("enter")
    editor = await wait_for_screen(pilot, EditorScreen)
    # A blinking cursor would be drawn or not depending on when the picture is taken.
    editor.query_one(TextArea).cursor_blink = False
    plan = editor.query_one("#plan", Static)
    await wait_until(pilot, lambda: "configs" in str(plan.render()), "the plan")


def test_editor(home_with_results: Settings, snap_compare: SnapCompare) -> None:
    app = make_app(home_with_results)
    assert snap_compare(app, terminal_size=SIZE, run_before=when(home_loaded, editor_planned))
