"""Add or edit an endpoint. The API key field is masked, and a stored key is never shown."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from ...domain.errors import BadInput
from ...domain.records import EndpointRecord
from ..widgets.app_footer import AppFooter
from .base import Dialog, WorkbenchAccess


def parse_pricing(text: str) -> dict[str, tuple[float, float]]:
    """'gpt-x=0.15,0.6; *=1,2' -> {model: (input, output)} per million tokens."""
    pricing: dict[str, tuple[float, float]] = {}
    for part in filter(None, (p.strip() for p in text.replace("\n", ";").split(";"))):
        model, _, prices = part.partition("=")
        try:
            price_in, price_out = (float(p) for p in prices.split(","))
        except ValueError:
            raise BadInput(f"pricing {part!r}: expected MODEL=IN,OUT") from None
        pricing[model.strip()] = (price_in, price_out)
    return pricing


def pricing_text(pricing: dict[str, tuple[float, float]]) -> str:
    """Pricing as the form reads it back (`parse_pricing`'s input, the CLI's `--price`)."""
    return "; ".join(f"{model}={i:g},{o:g}" for model, (i, o) in pricing.items())


class EndpointForm(Dialog[EndpointRecord | None], WorkbenchAccess):
    """Saves through the Workbench itself, so a rejected value is shown here, in the form."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="endpoint_form.cancel"),
        Binding("ctrl+s", "save", "Save", id="endpoint_form.save"),
    ]

    def __init__(self, existing: EndpointRecord | None = None) -> None:
        super().__init__()
        self._existing = existing

    @property
    def _stored_key(self) -> bool:
        e = self._existing
        return e is not None and e.has_api_key and e.api_key_env is None

    def compose(self) -> ComposeResult:
        e = self._existing
        with Vertical(id="dialog"):
            yield Static(
                f"Edit endpoint {e.name}" if e else "Add an OpenAI-compatible endpoint",
                id="form-title",
                markup=False,
            )
            with Grid(id="endpoint-form"):
                yield Label("Name")
                yield Input(
                    e.name if e else "",
                    placeholder="local",
                    id="name",
                    disabled=bool(e),
                    compact=True,
                )
                yield Label("Base URL")
                yield Input(
                    e.base_url if e else "",
                    placeholder="http://127.0.0.1:8080/v1",
                    id="base-url",
                    compact=True,
                )
                yield Label("API key")
                yield Input(
                    password=True,
                    placeholder="stored; leave empty to keep it, or type a new one"
                    if self._stored_key
                    else "stored encrypted; or use a variable below",
                    id="api-key",
                    compact=True,
                )
                yield Label("or key from $")
                yield Input(
                    (e.api_key_env or "") if e else "",
                    placeholder="OPENAI_API_KEY",
                    id="key-env",
                    compact=True,
                )
                yield Label("Pricing")
                yield Input(
                    pricing_text(e.pricing) if e else "",
                    placeholder="gpt-4o-mini=0.15,0.6; *=1,2 (per 1M in,out)",
                    id="pricing",
                    compact=True,
                )
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield AppFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#base-url" if self._existing else "#name", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _submit(self) -> None:
        self.action_save()

    @work(exclusive=True, group="save", exit_on_error=False)
    async def action_save(self) -> None:
        error = self.query_one("#form-error", Static)
        name, key, env = self._value("name"), self._value("api-key"), self._value("key-env")
        try:
            if not name:
                raise BadInput("give the endpoint a name")
            if key and env:
                raise BadInput("give either an API key or a variable name, not both")
            # The form does not show the request limits: an edit keeps the stored ones.
            existing = self._existing
            record = await self.wb.add_endpoint(
                name,
                self._value("base-url"),
                api_key=key or None,
                api_key_env=env or None,
                pricing=parse_pricing(self._value("pricing")),
                keep_api_key=self._stored_key,
                max_response_mb=existing.max_response_mb if existing else None,
                deadline_s=existing.deadline_s if existing else None,
                idle_timeout_s=existing.idle_timeout_s if existing else None,
                rate_limit_wait_s=existing.rate_limit_wait_s if existing else None,
            )
        except BadInput as exc:
            error.update(str(exc))
            return
        self.query_one("#api-key", Input).value = ""
        self.dismiss(record)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
