"""What every product screen shares: the Workbench, and the app that reports its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.dom import DOMNode
from textual.screen import Screen
from textual.worker import Worker

if TYPE_CHECKING:
    from ...service import Workbench
    from ..app import PromptLooperApp


class WorkbenchAccess(DOMNode):
    """Reach the app's Workbench. Workbench calls go in `@work(..., exit_on_error=False)`
    workers; a worker's state changes do not bubble, so this mixin hands a failed worker's error
    to the app's one handler. Screens, dialogs and widgets that run workers mix it in, after
    their Textual base (CSS follows the first base: `class X(ModalScreen[T], WorkbenchAccess)`)."""

    @property
    def looper(self) -> PromptLooperApp:
        return cast("PromptLooperApp", self.app)

    @property
    def wb(self) -> Workbench:
        return self.looper.workbench

    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        self.looper.handle_worker_error(event)


class WorkbenchScreen(Screen[None], WorkbenchAccess):
    """A full screen of the app. (Textual first: its CSS applies to the screen.)"""
