"""The export screen: previews (only the head of a long export), files written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from promptlooper_tui.tui.app import PromptLooperApp
from promptlooper_tui.tui.screens.confirm import ConfirmScreen
from promptlooper_tui.tui.screens.export import (
    PREVIEW_LINES,
    ExportScreen,
    HeadBuffer,
    PreviewFull,
)

from .conftest import SIZE, AppMaker, notifications, wait_for_screen, wait_until
from .sweep_data import SweptExperiment, add_bulk_runs, open_over_home, sweep_experiment


async def open_export(
    app: PromptLooperApp, pilot: Pilot[None], *, bulk: int = 0
) -> tuple[ExportScreen, SweptExperiment]:
    await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
    swept = await sweep_experiment(app.workbench)
    if bulk:
        await add_bulk_runs(app.workbench, swept.sweep_id, bulk)
    screen = ExportScreen(swept.experiment_id)
    await open_over_home(pilot, screen)
    await wait_until(pilot, lambda: "experiment: support" in preview(screen), "the preview")
    return screen, swept


def preview(screen: ExportScreen) -> str:
    return str(screen.query_one("#preview", Static).render())


async def choose(pilot: Pilot[None], screen: ExportScreen, fmt: str) -> None:
    formats = screen.query_one("#formats", OptionList)
    formats.highlighted = formats.get_option_index(fmt)
    await wait_until(pilot, lambda: screen.format == fmt, f"the {fmt} format")


async def test_yaml_is_previewed_and_written_to_the_file(
    make_test_app: AppMaker, tmp_path: Path
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, swept = await open_export(app, pilot)
        path_input = screen.query_one("#export-path", Input)
        assert path_input.value == "support-best.yaml"
        target = tmp_path / "out" / "best.yaml"
        target.parent.mkdir()
        path_input.value = str(target)

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: target.exists(), "the file")
        await wait_until(pilot, lambda: any(str(target) in n for n in notifications(app)), "note")
        exported = yaml.safe_load(target.read_text())
        leader = (await app.workbench.leaderboard(swept.experiment_id, top=1))[0]
        assert exported["sweep_id"] == swept.sweep_id
        assert exported["config"] == leader.config
        assert [p.name for p in target.parent.iterdir()] == ["best.yaml"]  # no temp file left

        # Writing again asks before replacing the file.
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("n")
        await wait_for_screen(pilot, ExportScreen)


async def test_csv_preview_reads_only_the_head(make_test_app: AppMaker, tmp_path: Path) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, _ = await open_export(app, pilot, bulk=3000)
        await choose(pilot, screen, "csv")
        await wait_until(pilot, lambda: preview(screen).startswith("run_id,"), "the csv head")
        shown = preview(screen).splitlines()
        assert len(shown) == PREVIEW_LINES + 1
        assert shown[-1] == f"… (the preview stops after {PREVIEW_LINES} lines)"
        assert screen.query_one("#export-path", Input).value == "support-runs.csv"

        target = tmp_path / "runs.csv"
        screen.query_one("#export-path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: target.exists(), "the file")
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert len(rows) == 3012


async def test_an_edited_path_is_kept_across_formats(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, _ = await open_export(app, pilot)
        await choose(pilot, screen, "json")
        path_input = screen.query_one("#export-path", Input)
        assert path_input.value == "support-best.json"
        path_input.value = "mine.txt"
        await choose(pilot, screen, "report")
        assert path_input.value == "mine.txt"
        await wait_until(pilot, lambda: "# " in preview(screen), "the report")


def test_head_buffer_stops_the_writer_after_its_lines() -> None:
    buffer = HeadBuffer(3)
    buffer.write("a\nb\n")
    with pytest.raises(PreviewFull):
        buffer.write("c\nd\n")
    assert buffer.head() == ("a\nb\nc", True)
