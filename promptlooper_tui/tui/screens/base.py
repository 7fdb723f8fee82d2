"""What every product screen shares: the Workbench, and the app that reports its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual import on
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.worker import Worker

from ..host import AppHost

if TYPE_CHECKING:
    from ...workbench import Workbench


class WorkbenchAccess(DOMNode):
    """Reach the app's Workbench. Workbench calls go in `@work(..., exit_on_error=False)`
    workers; a worker's state changes do not bubble, so this mixin hands a failed worker's error
    to the app's one handler. Screens, dialogs and widgets that run workers mix it in, after
    their Textual base (CSS follows the first base: `class X(ModalScreen[T], WorkbenchAccess)`)."""

    @property
    def looper(self) -> AppHost:
        return cast("AppHost", self.app)

    @property
    def wb(self) -> Workbench:
        return self.looper.workbench

    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        self.looper.handle_worker_error(event)


class WorkbenchScreen(Screen[None], WorkbenchAccess):
    """A full screen of the app. (Textual first: its CSS applies to the screen.)"""


DialogResult = TypeVar("DialogResult")


class Dialog(ModalScreen[DialogResult]):
    """A question or form over the current screen. A modal screen hides the app's keys, so a
    dialog binds help and quit itself (same ids: a keymap changes them everywhere), and
    composes its own footer: the keys shown are the dialog's, not those of the screen below."""

    BINDINGS = [
        Binding("f1", "app.help", "Help", id="app.help", tooltip="The keys of this dialog"),
        Binding(
            "ctrl+q",
            "app.request_quit",
            "Quit",
            priority=True,
            id="app.quit",
            tooltip="Quit; running sweeps stop and stay resumable",
        ),
    ]
