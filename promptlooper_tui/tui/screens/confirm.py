"""A yes/no question over the current screen."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True when confirmed (the button, or y); escape, n or "Cancel" dismiss
    with False."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("y", "confirm", "Yes", show=False, id="confirm.yes"),
        Binding("n", "cancel", "No", show=False, id="confirm.no"),
    ]

    def __init__(self, question: str, *, confirm: str = "Yes", danger: bool = False) -> None:
        super().__init__()
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

    def on_mount(self) -> None:
        # Enter on a dangerous question should not be the way to say yes by accident.
        self.query_one("#cancel" if self._danger else "#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
