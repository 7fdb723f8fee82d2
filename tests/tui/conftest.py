"""Fixtures for the app's tests: the app built as the CLI builds it, over a real home dir, and
helpers to wait for what a screen shows instead of sleeping."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.app import PromptLooperApp
from promptlooper_tui.tui.factory import make_app
from promptlooper_tui.tui.screens.home import HomeScreen

#: The terminal most tests use; 80x24 is checked separately.
SIZE = (100, 30)

AppMaker = Callable[..., PromptLooperApp]
AnyScreen = TypeVar("AnyScreen", bound=Screen[object])


@pytest.fixture
def make_test_app(settings: Settings, tmp_path: Path) -> AppMaker:
    """`make_app(settings, ...)` reading user themes from an empty temp dir by default."""

    def make(**options: object) -> PromptLooperApp:
        options.setdefault("user_theme_dir", tmp_path / "user-themes")
        return make_app(settings, **options)  # type: ignore[arg-type]

    return make


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], object], what: str, seconds: float = 15.0
) -> None:
    """Let the app run until `condition()` is true; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def wait_for_screen(pilot: Pilot[None], kind: type[AnyScreen]) -> AnyScreen:
    """Wait until a screen of `kind` is on top, and return it."""
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)
    screen = pilot.app.screen
    assert isinstance(screen, kind)
    return screen


async def open_home(pilot: Pilot[None], experiments: int) -> HomeScreen:
    """The experiments list once it shows `experiments` rows."""
    home = await wait_for_screen(pilot, HomeScreen)
    table = home.query_one("#experiments", DataTable)
    await wait_until(pilot, lambda: table.row_count == experiments, f"{experiments} experiments")
    return home


def notifications(app: PromptLooperApp) -> list[str]:
    """Every notification's title and message, in order."""
    return [f"{n.title} {n.message}" for n in app._notifications]


def screen_text(app: PromptLooperApp) -> str:
    """The text the terminal shows (from a screenshot), for what must or must not appear."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
