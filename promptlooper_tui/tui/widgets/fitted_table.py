"""Tables that fit their width: no sideways scrolling. Fixed columns (numbers, marks) keep
their natural width; flexible ones (a config, an error) share what is left, cut with "…"; and
when the first flexible column is cut, low-value columns are dropped to make room."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import DataTable

Cell = Text | str
#: A row: its key and its cells by column key.
Row = tuple[str, dict[str, Cell]]


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    label: str
    #: Shares the width the fixed columns leave, cut with "…"; flexible columns take it in
    #: order, each up to its natural width, and the last takes the rest.
    flexible: bool = False
    #: Dropped when the first flexible column is cut, lowest first; 0: never dropped.
    drop: int = 0


def cell_width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def fit_columns(
    specs: Sequence[ColumnSpec], natural: dict[str, int], available: int, padding: int
) -> dict[str, int]:
    """The width of each column shown (in `specs` order), given each column's natural width and
    the cells `available`; `padding` is the cells every column adds around its content."""
    shown = list(specs)
    while True:
        fixed = sum(natural[s.key] + padding for s in shown if not s.flexible)
        flexible = [s for s in shown if s.flexible]
        left = available - fixed - padding * len(flexible)
        droppable = [s for s in shown if s.drop]
        if not flexible or left >= natural[flexible[0].key] or not droppable:
            break
        shown.remove(min(droppable, key=lambda s: s.drop))
    widths: dict[str, int] = {}
    for spec in shown:
        if not spec.flexible:
            widths[spec.key] = natural[spec.key]
            continue
        last = spec is flexible[-1]
        width = max(left, 0) if last else min(natural[spec.key], max(left, 0))
        if spec is not flexible[0] and width < cell_len(spec.label):
            # Too narrow to read: left out, its padding going to the others.
            left += padding
            continue
        widths[spec.key] = max(width, 1)
        left -= width
    if flexible and flexible[0].key in widths and left > 0:
        widths[flexible[0].key] += left
    return {s.key: widths[s.key] for s in shown if s.key in widths}


class FittedTable(DataTable[object]):
    """A DataTable whose columns (`COLUMNS`) are laid out again to fit whenever its width or
    its cells' widths change. Rows are given with `set_rows` and `add_rows`, not `add_row`."""

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]]

    def __init__(self, *, id: str | None = None, cursor: bool = True) -> None:
        super().__init__(id=id, cursor_type="row" if cursor else "none", zebra_stripes=True)
        self._rows: list[Row] = []
        self._widths: dict[str, int] = {}
        #: The columns laid out: `COLUMNS`, unless a table changes them (`set_columns`).
        self.columns_shown: tuple[ColumnSpec, ...] = self.COLUMNS

    @property
    def row_total(self) -> int:
        """Every row given; `row_count` counts up from 0 while the table is laid out again."""
        return len(self._rows)

    def set_columns(self, columns: tuple[ColumnSpec, ...]) -> None:
        """Lay out these columns from the next `set_rows` on."""
        self.columns_shown = columns

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace every row."""
        self._rows = list(rows)
        self._lay_out(force=True)

    def add_rows(self, rows: Iterable[Row]) -> None:
        """Append rows (the layout changes only if they need it)."""
        new = list(rows)
        self._rows.extend(new)
        if not self._lay_out():
            self._add(new)

    def on_resize(self, event: events.Resize) -> None:
        self._lay_out()

    def _lay_out(self, *, force: bool = False) -> bool:
        """Fit the columns to the width; True when the table was rebuilt."""
        widths = self._fit()
        if not force and widths == self._widths:
            return False
        self._widths = widths
        cursor = self.cursor_row
        self.clear(columns=True)
        labels = {s.key: s.label for s in self.columns_shown}
        for key, width in widths.items():
            self.add_column(labels[key], key=key, width=width)
        self._add(self._rows)
        if 0 < cursor < self.row_count:
            self.move_cursor(row=cursor, animate=False)
        return True

    def _fit(self) -> dict[str, int]:
        natural = {s.key: cell_len(s.label) for s in self.columns_shown}
        for _, cells in self._rows:
            for key, cell in cells.items():
                natural[key] = max(natural[key], cell_width(cell))
        available = self.size.width
        if len(self._rows) + self.header_height > self.size.height:
            available -= self.styles.scrollbar_size_vertical
        return fit_columns(self.columns_shown, natural, available, 2 * self.cell_padding)

    def _add(self, rows: Iterable[Row]) -> None:
        for key, cells in rows:
            self.add_row(*(cells.get(column, "") for column in self._widths), key=key)
