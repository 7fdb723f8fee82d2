"""Every run of a sweep, newest first, loaded a page at a time; filter by status and score."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Header, Input, Label, Select, Static

from ...domain.errors import BadInput
from ...domain.records import RunPage
from ..widgets.app_footer import AppFooter
from ..widgets.run_list import RunList
from ..widgets.run_table import RunTable
from .base import WorkbenchScreen

STATUSES: tuple[tuple[str, str | None], ...] = (
    ("all", None),
    ("completed", "completed"),
    ("failed", "failed"),
)


@dataclass(frozen=True)
class RunFilter:
    """Which runs the list shows."""

    status: str | None = None
    min_score: float | None = None
    max_score: float | None = None

    def describe(self) -> str:
        parts = [self.status or "all"]
        if self.min_score is not None or self.max_score is not None:
            low = "0" if self.min_score is None else f"{self.min_score:g}"
            high = "1" if self.max_score is None else f"{self.max_score:g}"
            parts.append(f"score {low}–{high}")
        return ", ".join(parts)


def parse_score_bound(text: str, name: str) -> float | None:
    """A score bound typed by the user: empty means none; else a number in [0, 1]."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{name} must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise BadInput(f"{name} must be between 0 and 1, got {text}")
    return value


class RunsScreen(WorkbenchScreen):
    TITLE = "Runs"
    CSS_PATH = "../styles/runs.tcss"
    AUTO_FOCUS = "#runs"
    HELP = (
        "The runs of a sweep, newest first. Pages load as you scroll, so even 100,000 runs "
        "open at once. Filter by status and score range (enter in a score box applies it). "
        "Enter opens a run in the inspector."
    )
    BINDINGS = [
        Binding("f", "focus_filters", "Filter", id="runs.filter", tooltip="Status and score"),
        Binding("g", "reload", "Reload", id="runs.reload", tooltip="Show runs finished since"),
        Binding("escape", "back", "Back", id="runs.back"),
    ]

    def __init__(self, sweep_id: str) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.run_filter = RunFilter()
        self._heading = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="runs-filters"):
            yield Label("status")
            yield Select(
                [(label, label) for label, _ in STATUSES],
                value="all",
                allow_blank=False,
                id="status-filter",
            )
            yield Label("score")
            yield Input(placeholder="min", id="min-score")
            yield Label("to")
            yield Input(placeholder="max", id="max-score")
        yield Static(id="runs-status")
        yield RunList(self._fetch, id="runs")
        yield AppFooter()

    def on_mount(self) -> None:
        self._describe()

    @work(exclusive=True, group="describe", exit_on_error=False)
    async def _describe(self) -> None:
        sweep = await self.wb.get_sweep(self.sweep_id)
        self._heading = f"{sweep.experiment} v{sweep.experiment_version} · sweep {sweep.id}"
        self._show_status()

    async def _fetch(self, limit: int, after: str | None) -> RunPage:
        wanted = self.run_filter
        return await self.wb.list_runs(
            sweep=self.sweep_id,
            status=wanted.status,
            min_score=wanted.min_score,
            max_score=wanted.max_score,
            limit=limit,
            after=after,
        )

    @on(RunList.PageLoaded)
    def _show_status(self) -> None:
        runs = self.query_one(RunList)
        total = f"{runs.total:,}" if runs.total is not None else "…"
        self.query_one("#runs-status", Static).update(
            f"{self._heading} · {runs.row_count:,} of {total} runs loaded · "
            f"showing {self.run_filter.describe()}"
        )

    def _apply(self, wanted: RunFilter) -> None:
        if wanted != self.run_filter:
            self.run_filter = wanted
            self.query_one(RunList).reload()
            self._show_status()

    @on(Select.Changed, "#status-filter")
    def _status_changed(self, event: Select.Changed) -> None:
        status = dict(STATUSES).get(str(event.value))
        self._apply(RunFilter(status, self.run_filter.min_score, self.run_filter.max_score))

    @on(Input.Submitted)
    def _scores_submitted(self) -> None:
        try:
            low = parse_score_bound(self.query_one("#min-score", Input).value, "min score")
            high = parse_score_bound(self.query_one("#max-score", Input).value, "max score")
        except BadInput as exc:
            self.notify(str(exc), severity="warning")
            return
        if low is not None and high is not None and low > high:
            self.notify("The min score is above the max score.", severity="warning")
            return
        self._apply(RunFilter(self.run_filter.status, low, high))
        self.query_one(RunList).focus()

    def action_focus_filters(self) -> None:
        self.query_one("#status-filter", Select).focus()

    def action_reload(self) -> None:
        self.query_one(RunList).reload()

    @on(RunTable.Opened)
    def _open_run(self, event: RunTable.Opened) -> None:
        from .inspector import RunInspectorScreen

        self.app.push_screen(RunInspectorScreen(event.run_id, event.run_ids, event.more))

    def action_back(self) -> None:
        self.dismiss()
