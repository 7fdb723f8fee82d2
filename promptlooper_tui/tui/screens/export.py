"""Export a sweep: choose a format, look at the first lines, write it to a file."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...domain.errors import BadInput, PromptLooperError
from ...domain.records import SweepRecord
from ...export import write_atomically
from ..widgets.app_footer import AppFooter
from .base import WorkbenchScreen

if TYPE_CHECKING:
    from ...workbench import Workbench

#: Formats in the order offered, with what each holds and the file suffix it gets.
FORMATS: dict[str, tuple[str, str]] = {
    "yaml": ("best config, YAML", "-best.yaml"),
    "json": ("best config, JSON", "-best.json"),
    "env": ("best config, env variables", "-best.env"),
    "report": ("Markdown report of the sweep", "-report.md"),
    "csv": ("every run, one row each", "-runs.csv"),
    "jsonl": ("every run, one JSON line each", "-runs.jsonl"),
}
#: Lines of the export shown before it is written.
PREVIEW_LINES = 40


class PreviewFull(Exception):
    """Raised by `HeadBuffer` to stop an export once the preview has its lines."""


class HeadBuffer(io.StringIO):
    """A text sink that keeps the first `lines` lines and then stops the export writing to
    it, so previewing the CSV of 100,000 runs reads only the first of them."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self._wanted = lines
        self._seen = 0

    def write(self, text: str) -> int:
        written = super().write(text)
        self._seen += text.count("\n")
        if self._seen >= self._wanted:
            raise PreviewFull
        return written

    def head(self) -> tuple[str, bool]:
        """The first lines, and whether the export goes on after them."""
        lines = self.getvalue().splitlines()
        return "\n".join(lines[: self._wanted]), self._seen >= self._wanted


async def preview_export(wb: Workbench, ref: str, fmt: str, sweep: str) -> tuple[str, bool]:
    """The first PREVIEW_LINES lines of an export of `sweep`, and whether there is more."""
    buffer = HeadBuffer(PREVIEW_LINES)
    with contextlib.suppress(PreviewFull):
        await wb.export(ref, fmt, buffer, sweep=sweep)
    return buffer.head()


def export_target(typed: str) -> Path:
    """The file to write from what the user typed: `~` expanded, relative to the current
    directory. BadInput when it is empty or a directory."""
    if not typed.strip():
        raise BadInput("type the path of the file to write")
    path = Path(typed.strip()).expanduser().absolute()
    if path.is_dir():
        raise BadInput(f"{path} is a directory; type a file name")
    return path


class ExportScreen(WorkbenchScreen):
    TITLE = "Export"
    CSS_PATH = "../styles/export.tcss"
    AUTO_FOCUS = "#formats"
    HELP = (
        "Export a sweep (by default the experiment's latest). json, yaml and env hold the best "
        "config, ready to deploy; report is a Markdown summary; csv and jsonl hold every run. "
        "The preview shows the first lines; ctrl+s writes the whole export to the file "
        "(atomically: the file appears only once the export has succeeded)."
    )
    BINDINGS = [
        Binding("ctrl+s", "write", "Write file", id="export.write", tooltip="Write the export"),
        Binding("escape", "back", "Back", id="export.back"),
    ]

    def __init__(self, experiment_ref: str, *, sweep: str | None = None) -> None:
        super().__init__()
        self.experiment_ref = experiment_ref
        self.sweep_ref = sweep
        self.format = next(iter(FORMATS))
        self._sweep: SweepRecord | None = None
        #: The path last filled in for the user; replaced on a format change unless edited.
        self._suggested = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="export-sweep")
        with Horizontal(id="export-body"):
            with Vertical(id="export-options"):
                yield Label("Format")
                yield OptionList(
                    *(
                        Option(
                            Content.assemble((f"{fmt:<7}", "bold"), (about, "$text-muted")),
                            id=fmt,
                        )
                        for fmt, (about, _) in FORMATS.items()
                    ),
                    id="formats",
                )
                yield Label("File")
                yield Input(id="export-path", placeholder="path of the file to write")
                yield Button("Write file", id="write", variant="primary")
            with VerticalScroll(id="export-preview", classes="panel"):
                yield Static(id="preview", markup=False)
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#export-preview").border_title = "Preview"
        self._load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        self._sweep = sweep = await self.wb.get_sweep(self.sweep_ref or self.experiment_ref)
        self.query_one("#export-sweep", Static).update(
            Content.from_markup(
                "[b]$name[/b] v$version · sweep $id · $status · $runs runs",
                name=sweep.experiment,
                version=sweep.experiment_version,
                id=sweep.id,
                status=sweep.status.replace("_", " "),
                runs=f"{sweep.runs_completed + sweep.runs_failed:,}",
            )
        )
        self._choose(self.format)

    @on(OptionList.OptionHighlighted, "#formats")
    def _format_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._choose(event.option.id)

    def _choose(self, fmt: str) -> None:
        self.format = fmt
        if self._sweep is None:
            return
        path_input = self.query_one("#export-path", Input)
        if path_input.value in ("", self._suggested):
            self._suggested = f"{self._sweep.experiment}{FORMATS[fmt][1]}"
            path_input.value = self._suggested
        self.query_one("#export-preview").border_title = f"Preview · {fmt}"
        self._preview(fmt)

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def _preview(self, fmt: str) -> None:
        preview = self.query_one("#preview", Static)
        assert self._sweep is not None
        try:
            text, more = await preview_export(
                self.wb, self._sweep.experiment_id, fmt, self._sweep.id
            )
        except PromptLooperError as exc:
            # Nothing to export yet is an answer, not a failure: it replaces the preview.
            preview.update(Content.styled(str(exc), "$warning"))
            return
        if more:
            text += f"\n… (the preview stops after {PREVIEW_LINES} lines)"
        preview.update(text)

    @on(Button.Pressed, "#write")
    @on(Input.Submitted, "#export-path")
    def _write_requested(self) -> None:
        self.action_write()

    def action_write(self) -> None:
        if self._sweep is None:
            self.notify("Nothing to export: the sweep has not loaded.", severity="warning")
            return
        try:
            path = export_target(self.query_one("#export-path", Input).value)
        except BadInput as exc:
            self.notify(str(exc), severity="warning")
            return
        self._write(self._sweep, self.format, path, replacing=path.exists())

    @work(exclusive=True, group="write", exit_on_error=False)
    async def _write(self, sweep: SweepRecord, fmt: str, path: Path, *, replacing: bool) -> None:
        from .confirm import ConfirmScreen

        if replacing and not await self.app.push_screen_wait(
            ConfirmScreen(f"Replace {path}?", confirm="Replace", danger=True)
        ):
            return
        with write_atomically(path) as out:
            await self.wb.export(sweep.experiment_id, fmt, out, sweep=sweep.id)
        self.notify(f"Exported {fmt} to {path}", title="Export written")

    def action_back(self) -> None:
        self.dismiss()
