"""What the app's screens, widgets and palette commands may ask of the app, as a Protocol.

They reach the app through `AppHost` rather than its class, so no module the app imports has
to import the app (an import circle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.worker import Worker

    from ..domain.records import RunDetail
    from ..workbench import Workbench


class AppHost(Protocol):
    #: The run marked for comparison in the inspector, if any.
    compare_mark: RunDetail | None
    theme: str

    @property
    def workbench(self) -> Workbench: ...

    @property
    def available_themes(self) -> Mapping[str, Any]: ...

    def handle_worker_error(self, event: Worker.StateChanged) -> None: ...

    async def action_go_experiments(self) -> None: ...

    def action_go_endpoints(self) -> None: ...

    def action_help(self) -> None: ...

    def open_editor(self, experiment_id: str | None) -> None: ...

    def launch_sweep(self, experiment_id: str) -> None: ...

    def open_latest_sweep(self, experiment_id: str, *, runs: bool = False) -> object: ...

    def open_export(self, experiment_id: str) -> object: ...
