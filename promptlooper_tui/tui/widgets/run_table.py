"""Tables of runs: one row per run, the same columns wherever runs are listed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from .. import display
from ..sweep_feed import RunLine
from .cells import themed

#: Characters of the config column before it is cut with "…".
CONFIG_WIDTH = 44


def run_cells(table: DataTable[object], line: RunLine) -> tuple[object, ...]:
    mark = (
        themed(table, "✓", "success") if line.status == "completed" else themed(table, "✗", "error")
    )
    config = display.format_config(line.config)
    if len(config) > CONFIG_WIDTH:
        config = config[: CONFIG_WIDTH - 1] + "…"
    return (
        mark,
        config,
        display.right(display.score(line.score)),
        display.right(display.tokens(line.tokens)),
        display.right(display.latency(line.latency_ms)),
        "hit" if line.cached else "",
        Text(line.error or "", style="italic", no_wrap=True, overflow="ellipsis"),
    )


class RunTable(DataTable[object]):
    """Runs, keyed by run id. Selecting one posts `RunTable.Opened` with its neighbours, so
    the inspector can step to the next and previous run of the same list."""

    # Rows matter here, not columns: home / end go to the first / last run.
    BINDINGS = [
        Binding("home", "scroll_top", "First run", show=False),
        Binding("end", "scroll_bottom", "Last run", show=False),
    ]

    @dataclass
    class Opened(Message):
        run_id: str
        run_ids: list[str]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.add_column("", key="status")
        self.add_column("config", key="config")
        self.add_column("score", key="score")
        self.add_column("tokens", key="tokens")
        self.add_column("latency", key="latency")
        self.add_column("cache", key="cache")
        self.add_column("error", key="error")

    @property
    def run_ids(self) -> list[str]:
        return [str(row.value) for row in self.rows]

    def highlighted_run(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def add_lines(self, lines: Iterable[RunLine]) -> None:
        for line in lines:
            self.add_row(*run_cells(self, line), key=line.run_id)

    @on(DataTable.RowSelected)
    def _opened(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Opened(str(event.row_key.value), self.run_ids))


class LatestRuns(RunTable):
    """The newest runs first; replaced whole when runs arrive, the cursor staying on its run
    (or on the top row, following the newest)."""

    def show(self, lines: Iterable[RunLine]) -> None:
        keep = self.highlighted_run() if self.cursor_row > 0 else None
        self.clear()
        self.add_lines(lines)
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
