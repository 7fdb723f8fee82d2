"""Endpoints: list, add / edit, test the connection (result and models inline), remove."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Header, Static

from ...domain.errors import BadInput
from ...domain.experiment import SIMULATED_ENDPOINT
from ...domain.records import EndpointRecord
from .. import display
from ..widgets.app_footer import AppFooter
from .base import WorkbenchScreen
from .endpoint_form import EndpointForm

#: Models listed inline after a test; the rest are counted.
SHOWN_MODELS = 12


class EndpointsScreen(WorkbenchScreen):
    TITLE = "Endpoints"
    HELP = (
        "OpenAI-compatible endpoints that experiments name in `endpoint:`. API keys are stored "
        "encrypted (or read from an environment variable) and never shown again. "
        "`simulated` is built in: a deterministic fake LLM for trying things out."
    )
    BINDINGS = [
        Binding("a", "add", "Add", id="endpoints.add"),
        Binding("enter", "edit", "Edit", priority=True, id="endpoints.edit"),
        Binding("t", "test", "Test", id="endpoints.test", tooltip="Connect and list models"),
        Binding("x", "remove", "Remove", id="endpoints.remove"),
        Binding("escape", "back", "Back", id="endpoints.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._endpoints: dict[str, EndpointRecord] = {}
        #: The endpoint whose test result is shown, if any.
        self._tested: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="endpoints", cursor_type="row", zebra_stripes=True)
        yield Static(id="test-result")
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one("#endpoints", DataTable)
        table.add_columns("name", "base url", "api key", "pricing (per 1M tokens)")
        self._refresh()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _refresh(self, select: str | None = None) -> None:
        endpoints = await self.wb.list_endpoints()
        self._endpoints = {e.name: e for e in endpoints}
        table = self.query_one("#endpoints", DataTable)
        table.clear()
        table.add_row(
            SIMULATED_ENDPOINT,
            "built in, started on demand",
            "–",
            "–",
            key=SIMULATED_ENDPOINT,
        )
        for e in endpoints:
            key = (
                f"${e.api_key_env}" if e.api_key_env else ("stored ••••" if e.has_api_key else "–")
            )
            table.add_row(e.name, e.base_url, key, display.pricing(e.pricing), key=e.name)
        if select is not None and select in table.rows:
            table.move_cursor(row=table.get_row_index(select))

    def _selected(self) -> str | None:
        table = self.query_one("#endpoints", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _editable(self) -> EndpointRecord | None:
        name = self._selected()
        if name is None or name not in self._endpoints:
            self.notify("The built-in simulated endpoint cannot be changed.", severity="warning")
            return None
        return self._endpoints[name]

    def action_add(self) -> None:
        self.app.push_screen(EndpointForm(), self._saved)

    @on(DataTable.RowSelected, "#endpoints")
    def action_edit(self) -> None:
        if (endpoint := self._editable()) is not None:
            self.app.push_screen(EndpointForm(endpoint), self._saved)

    def _saved(self, record: EndpointRecord | None) -> None:
        if record is not None:
            self.notify(f"Saved endpoint {record.name}")
            self._forget_result(record.name)
            self._refresh(select=record.name)

    def _show_result(self, name: str, result: Content) -> None:
        self._tested = name
        self.query_one("#test-result", Static).update(result)

    def _forget_result(self, name: str) -> None:
        """Clear a shown test result that no longer holds (its endpoint changed or went)."""
        if self._tested == name:
            self._tested = None
            self.query_one("#test-result", Static).update("")

    @work(exclusive=True, group="test", exit_on_error=False)
    async def action_test(self) -> None:
        name = self._selected()
        if name is None:
            return
        self._show_result(name, Content.styled(f"Testing {name}…", "$text-muted"))
        try:
            outcome = await self.wb.test_endpoint(name)
        except BadInput as exc:
            self._show_result(name, Content.styled(f"✗ {name}: {exc}", "$error"))
            return
        if not outcome.ok:
            self._show_result(name, Content.styled(f"✗ {name}: {outcome.error}", "$error"))
            return
        models = outcome.models[:SHOWN_MODELS]
        more = len(outcome.models) - len(models)
        self._show_result(
            name,
            Content.from_markup(
                "[$success]✓ $name[/]: connected in $latency · $count model(s): $models",
                name=name,
                latency=display.latency(outcome.latency_ms),
                count=len(outcome.models),
                models=", ".join(models) + (f" and {more} more" if more else "") or "none",
            ),
        )

    @work(exclusive=True, group="remove", exit_on_error=False)
    async def action_remove(self) -> None:
        from .confirm import ConfirmScreen

        if (endpoint := self._editable()) is None:
            return
        question = (
            f"Remove endpoint {endpoint.name}? Experiments that name it will not run until "
            "it is added again."
        )
        if await self.app.push_screen_wait(ConfirmScreen(question, confirm="Remove", danger=True)):
            await self.wb.remove_endpoint(endpoint.name)
            self.notify(f"Removed endpoint {endpoint.name}")
            self._forget_result(endpoint.name)
            self._refresh()

    def action_back(self) -> None:
        self.dismiss()
