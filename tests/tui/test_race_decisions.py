"""The app's leaderboard of a race says where each config stands: what the race stopped
running reads "out at N" (eliminated after N items), below the configs it kept; comparing one
with #1 says which leader eliminated it, after how many items, with the test's p-value."""

from __future__ import annotations

import re

from promptlooper_tui.tui.screens.compare import CompareScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable

from ..engine.test_racing_sweeps import race_yaml
from .conftest import AppMaker, screen_text, wait_for_screen, wait_until
from .sweep_data import open_over_home


async def test_a_races_leaderboard_shows_its_decisions(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        imported = await app.workbench.import_text(race_yaml())
        sweep_id = await app.workbench.create_sweep(imported.id)
        await app.workbench.run_sweep(sweep_id)
        monitor = MonitorScreen(sweep_id)
        await open_over_home(pilot, monitor)
        board = monitor.query_one(LeaderboardTable)
        await wait_until(pilot, lambda: len(board.entries) == 4, "the leaderboard")

        lines = screen_text(app).splitlines()
        out = [line for line in lines if "out at " in line]
        assert len(out) == 3
        leader = next(i for i, line in enumerate(lines) if "leader" in line and "large" in line)
        assert all(lines.index(line) > leader for line in out)

        board.focus()
        board.move_cursor(row=1)
        await pilot.press("c")
        await wait_for_screen(pilot, CompareScreen)
        # The words the two sides differ in are drawn apart: compare without the spaces.
        text = re.sub(r"\s+", "", screen_text(app))
        assert "aliveintherace" in text
        assert re.search(r"eliminatedbymodel=large-modelprompt=plainafter\d+.*?items", text)
        assert re.search(r"\(p=[0-9.e-]+\)", text)
