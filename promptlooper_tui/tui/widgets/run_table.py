"""Tables of runs: one row per run, the same columns wherever runs are listed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ...domain.config_text import compact_configs
from .. import display
from ..sweep_feed import RunLine
from .cells import clipped, themed
from .fitted_table import ColumnSpec, FittedTable, Row

#: Loads the next page of a list, if any, and returns the ids of every run it now holds.
MoreRuns = Callable[[], Awaitable[list[str]]]


def run_rows(table: DataTable[object], lines: Sequence[RunLine]) -> list[Row]:
    configs = compact_configs([line.config for line in lines])
    return [
        (
            line.run_id,
            {
                "status": themed(table, "✓", "success")
                if line.status == "completed"
                else themed(table, "✗", "error"),
                "config": clipped(config),
                "item": display.right(str(line.item_index)),
                "score": display.right(display.score(line.score)),
                "tokens": display.right(display.tokens(line.tokens)),
                "latency": display.right(display.latency(line.latency_ms)),
                "cache": "hit" if line.cached else "",
                "error": Text(line.error or "", style="italic", no_wrap=True, overflow="ellipsis"),
            },
        )
        for line, config in zip(lines, configs, strict=True)
    ]


class RunTable(FittedTable):
    """Runs, keyed by run id. Selecting one posts `RunTable.Opened` with its neighbours, so
    the inspector can step to the next and previous run of the same list. When narrow, the
    cache and tokens columns make room for the config, and errors get what is left."""

    COLUMNS = (
        ColumnSpec("status", ""),
        ColumnSpec("config", "config", flexible=True),
        # Runs of one config differ by item: without it, their rows would read the same.
        ColumnSpec("item", "item"),
        ColumnSpec("score", "score"),
        ColumnSpec("tokens", "tokens", drop=2),
        ColumnSpec("latency", "latency"),
        ColumnSpec("cache", "cache", drop=1),
        ColumnSpec("error", "error", flexible=True),
    )

    # Rows matter here, not columns: home / end go to the first / last run.
    BINDINGS = [
        Binding("home", "scroll_top", "First run", show=False),
        Binding("end", "scroll_bottom", "Last run", show=False),
    ]

    @dataclass
    class Opened(Message):
        run_id: str
        run_ids: list[str]
        #: How to step past the last loaded run; None when the list holds every run.
        more: MoreRuns | None = None

    @property
    def run_ids(self) -> list[str]:
        return [str(row.value) for row in self.rows]

    def highlighted_run(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def add_lines(self, lines: Iterable[RunLine]) -> None:
        self.add_rows(run_rows(self, list(lines)))

    @on(DataTable.RowSelected)
    def _opened(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Opened(str(event.row_key.value), self.run_ids, self.more_runs()))

    def more_runs(self) -> MoreRuns | None:
        """How the inspector fetches runs past the loaded ones (a table holds them all)."""
        return None


class LatestRuns(RunTable):
    """The newest runs first; replaced whole when runs arrive, the cursor staying on its run
    (or on the top row, following the newest)."""

    def show(self, lines: Iterable[RunLine]) -> None:
        keep = self.highlighted_run() if self.cursor_row > 0 else None
        self.set_rows(run_rows(self, list(lines)))
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
