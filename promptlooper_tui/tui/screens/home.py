"""Home: the experiments, each with its latest sweep, best score (the leader over every sweep of
its latest version), runs and tokens."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Header, Static

from ...domain.records import ExperimentRecord
from .. import display
from ..widgets import cells
from ..widgets.app_footer import AppFooter
from ..widgets.fitted_table import ColumnSpec, FittedTable
from .base import WorkbenchScreen

#: Seconds between two reloads of the list (sweeps started elsewhere show up).
RELOAD_EVERY = 3.0

_EMPTY = (
    "No experiments yet.\n\n"
    "Press n to write one (a working example is filled in), or quit and run "
    "`promptlooper demo` to watch a sample sweep against the built-in simulated endpoint."
)


class ExperimentTable(FittedTable):
    """One row per experiment; the description gets the width left."""

    COLUMNS = (
        ColumnSpec("name", "experiment"),
        ColumnSpec("version", "ver"),
        ColumnSpec("status", "latest sweep"),
        ColumnSpec("best", "best"),
        ColumnSpec("runs", "runs"),
        ColumnSpec("tokens", "tokens"),
        ColumnSpec("description", "description", flexible=True),
    )


class HomeScreen(WorkbenchScreen):
    TITLE = "Experiments"
    HELP = (
        "Every experiment with its latest sweep. Open one to edit it, launch a sweep, watch "
        "the latest sweep live, browse its runs or export the winner."
    )
    BINDINGS = [
        # A priority binding, so the table's own enter does not hide it from footer and help.
        Binding(
            "enter", "open", "Open", priority=True, id="home.open", tooltip="Edit the experiment"
        ),
        Binding("n", "new", "New", id="home.new", tooltip="Write a new experiment"),
        Binding("l", "launch", "Launch", id="home.launch", tooltip="Start a sweep"),
        Binding("m", "monitor", "Monitor", id="home.monitor", tooltip="The latest sweep, live"),
        Binding("r", "runs", "Runs", id="home.runs", tooltip="Runs of the latest sweep"),
        Binding(
            "e", "export", "Export", show=False, id="home.export", tooltip="Export the best config"
        ),
        Binding("d", "duplicate", "Duplicate", show=False, id="home.duplicate"),
        Binding("x", "delete", "Delete", id="home.delete", tooltip="Delete, after a question"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._experiments: dict[str, ExperimentRecord] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield ExperimentTable(id="experiments")
        yield Static(_EMPTY, id="empty", markup=False)
        yield Static(id="details")
        yield AppFooter()

    def on_mount(self) -> None:
        self.set_interval(RELOAD_EVERY, self.refresh_experiments)

    def on_screen_resume(self) -> None:
        self.refresh_experiments()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def refresh_experiments(self) -> None:
        experiments = await self.wb.list_experiments()
        self._experiments = {e.id: e for e in experiments}
        table = self.query_one("#experiments", ExperimentTable)
        selected = self.selected_id()
        table.set_rows(
            (
                e.id,
                {
                    "name": e.name,
                    "version": f"v{e.version}",
                    "status": cells.status(table, e.latest_sweep_status),
                    "best": display.right(display.score(e.best_score)),
                    "runs": display.right(f"{e.runs:,}"),
                    "tokens": display.right(display.tokens(e.tokens)),
                    "description": cells.clipped(e.description),
                },
            )
            for e in experiments
        )
        if selected in self._experiments:
            table.move_cursor(row=table.get_row_index(selected))
        self.query_one("#empty").display = not experiments
        table.display = bool(experiments)
        self._show_details()

    def selected_id(self) -> str | None:
        """The id of the highlighted experiment, if any."""
        table = self.query_one("#experiments", DataTable)
        if not self._experiments or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key if key in self._experiments else None

    def _selected(self) -> ExperimentRecord | None:
        """The highlighted experiment; with none, says so and returns None."""
        selected = self.selected_id()
        if selected is None:
            self.notify("No experiment selected; press n to write one.", severity="warning")
            return None
        return self._experiments[selected]

    @on(DataTable.RowHighlighted, "#experiments")
    def _show_details(self) -> None:
        details = self.query_one("#details", Static)
        selected = self.selected_id()
        if selected is None:
            details.update("")
            return
        e = self._experiments[selected]
        sweep = f"latest sweep {e.latest_sweep_id}" if e.latest_sweep_id else "no sweep yet"
        best = (
            f"best {display.score(e.best_score)} over every sweep of v{e.version}"
            if e.best_score is not None
            else f"no scored run of v{e.version} yet"
        )
        details.update(
            Content.from_markup(
                "[b]$name[/b] v$version ($versions) · $sweep · $best\n[dim]$description",
                name=e.name,
                version=e.version,
                versions=f"{e.versions} version" + "s" * (e.versions != 1),
                sweep=sweep,
                best=best,
                description=e.description or "no description",
            )
        )

    @on(DataTable.RowSelected, "#experiments")
    def action_open(self) -> None:
        if (selected := self._selected()) is not None:
            self.looper.open_editor(selected.id)

    def action_new(self) -> None:
        self.looper.open_editor(None)

    def action_launch(self) -> None:
        if (selected := self._selected()) is not None:
            self.looper.launch_sweep(selected.id)

    def action_monitor(self) -> None:
        if (selected := self._selected()) is not None:
            self.looper.open_latest_sweep(selected.id)

    def action_runs(self) -> None:
        if (selected := self._selected()) is not None:
            self.looper.open_latest_sweep(selected.id, runs=True)

    def action_export(self) -> None:
        if (selected := self._selected()) is not None:
            self.looper.open_export(selected.id)

    @work(exclusive=True, group="change", exit_on_error=False)
    async def action_duplicate(self) -> None:
        if (selected := self._selected()) is None:
            return
        result = await self.wb.duplicate_experiment(selected.id)
        self.notify(f"Duplicated {selected.name} as {result.name}")
        self.refresh_experiments()

    @work(exclusive=True, group="change", exit_on_error=False)
    async def action_delete(self) -> None:
        from .confirm import ConfirmScreen

        if (selected := self._selected()) is None:
            return
        question = (
            f"Delete experiment {selected.name}, its {selected.versions} version(s) and "
            f"{selected.runs:,} run(s)? This cannot be undone."
        )
        if not await self.app.push_screen_wait(
            ConfirmScreen(question, confirm="Delete", danger=True)
        ):
            return
        await self.wb.delete_experiment(selected.id)
        self.notify(f"Deleted {selected.name}")
        self.refresh_experiments()
