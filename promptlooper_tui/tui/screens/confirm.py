"""A yes/no question over the current screen."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from ..widgets.app_footer import AppFooter
from .base import Dialog


class ConfirmScreen(Dialog[bool]):
    """Dismisses with True when confirmed (the button, or y); escape, n or "Cancel" dismiss
    with False."""

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
        Binding("escape", "cancel", "Cancel", show=False, id="confirm.cancel"),
    ]

    def __init__(
        self, question: str, *, confirm: str = "Yes", danger: bool = False, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._question = question
        self._confirm = confirm
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self._question, id="question", markup=False)
            with Horizontal(id="buttons"):
                yield Button(
                    self._confirm, id="confirm", variant="error" if self._danger else "primary"
                )
                yield Button("Cancel", id="cancel")
        yield AppFooter(show_command_palette=False)

    def on_mount(self) -> None:
        # Enter on a dangerous question should not be the way to say yes by accident.
        self.query_one("#cancel" if self._danger else "#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
