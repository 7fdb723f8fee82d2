"""The PromptLooper app: owns the Workbench for its lifetime, routes between screens, and is the
one place where errors become notifications."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from ..domain.errors import BadInput, NotFound, PromptLooperError, ValidationError
from ..domain.events import Event
from ..domain.records import RunDetail
from ..engine.events import Subscription
from ..settings import Settings
from ..workbench import Workbench, open_workbench
from .commands import ProductCommands
from .preferences import Preferences
from .themes import DEFAULT_THEME, FALLBACK_THEME, load_themes, shipped_theme_dir
from .widgets.app_footer import AppFooter

log = logging.getLogger(__name__)

#: Runs once the Workbench is open and the experiments list shows; returns a screen to open
#: over it, if any (the demo opens its sweep's monitor).
Startup = Callable[[Workbench], Awaitable[Screen[None] | None]]

#: Sweep events worth a notification wherever the user is.
_SWEEP_ENDINGS: dict[str, tuple[str, SeverityLevel]] = {
    "sweep.completed": ("completed", "information"),
    "sweep.stopped": ("stopped", "warning"),
    "sweep.budget_exhausted": ("stopped: token budget reached", "warning"),
}


class PromptLooperApp(App[None]):
    """Build it with `factory.make_app`; the CLI and the tests both do."""

    TITLE = "PromptLooper"
    CSS_PATH = "styles/app.tcss"
    COMMANDS = App.COMMANDS | {ProductCommands}
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help", tooltip="The keys of this screen"),
        Binding("question_mark", "help", "Help", show=False, id="app.help_alt"),
        Binding(
            "f2",
            "go_experiments",
            "Experiments",
            show=False,
            id="app.experiments",
            tooltip="Back to the list of experiments",
        ),
        Binding(
            "f3",
            "go_endpoints",
            "Endpoints",
            show=False,
            id="app.endpoints",
            tooltip="Add, test and remove LLM endpoints",
        ),
        Binding(
            "ctrl+q",
            "request_quit",
            "Quit",
            priority=True,
            id="app.quit",
            tooltip="Quit; running sweeps stop and stay resumable",
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        startup: Startup | None = None,
        user_theme_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._startup = startup
        self._user_theme_dir = user_theme_dir
        self._preferences_path = settings.home / "tui.json"
        self._preferences, self._preferences_problem = Preferences.load(self._preferences_path)
        self._started_with_theme = DEFAULT_THEME
        self._workbench: Workbench | None = None
        self._workbench_stack = contextlib.AsyncExitStack()
        self._sweep_events: Subscription | None = None
        #: A run marked in an inspector, waiting for a second one to compare it with.
        self.compare_mark: RunDetail | None = None

    @property
    def workbench(self) -> Workbench:
        if self._workbench is None:
            raise PromptLooperError("the workbench is not open yet")
        return self._workbench

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Opening the workbench…", id="startup")
        yield AppFooter()

    async def on_mount(self) -> None:
        self._load_themes()
        self._apply_keymap()
        try:
            self._workbench = await self._workbench_stack.enter_async_context(
                open_workbench(self.settings)
            )
        except (PromptLooperError, OSError) as exc:
            where = self.settings.database.shown
            self.exit(return_code=1, message=f"error: cannot open {where}: {exc}")
            return
        self._sweep_events = self._workbench.bus.subscribe(
            accept=lambda event: event.type in _SWEEP_ENDINGS
        )
        self.set_interval(0.5, self._announce_sweep_endings)
        from .screens.home import HomeScreen

        await self.push_screen(HomeScreen())
        if self._startup is not None:
            self._run_startup(self._startup)

    @work(exclusive=True, group="startup", exit_on_error=False)
    async def _run_startup(self, startup: Startup) -> None:
        screen = await startup(self.workbench)
        if screen is not None:
            await self.push_screen(screen)

    async def on_unmount(self) -> None:
        if self._sweep_events is not None:
            self._sweep_events.close()
        # Closing the Workbench stops sweeps still running; they stay resumable.
        await self._workbench_stack.aclose()

    # -- themes --------------------------------------------------------------------------------

    def _load_themes(self) -> None:
        loaded = load_themes(shipped_theme_dir(), self._user_theme_dir)
        for theme in loaded.themes:
            self.register_theme(theme)
        if loaded.problems:
            self.notify(
                "\n".join(loaded.problems),
                title=f"{len(loaded.problems)} theme file(s) skipped",
                severity="warning",
                timeout=10,
            )
        for name in (self._preferences.theme, DEFAULT_THEME, FALLBACK_THEME):
            if name in self.available_themes:
                self.theme = name
                break
        self._started_with_theme = self.theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name == (self._preferences.theme or self._started_with_theme):
            return  # the theme chosen at start-up: nothing to remember
        self._preferences = self._preferences.model_copy(update={"theme": theme.name})
        if self._preferences_problem is not None:
            # The person's file, which they are to fix: never replaced by the defaults.
            self.notify(
                f"The theme choice is not remembered until {self._preferences_path} is fixed.",
                severity="warning",
            )
            return
        try:
            self._preferences.save(self._preferences_path)
        except OSError as exc:
            self.notify(f"Cannot save the theme choice: {exc}", severity="warning")

    # -- preferences ---------------------------------------------------------------------------

    def _apply_keymap(self) -> None:
        path = self._preferences_path
        if self._preferences_problem is not None:
            self.notify(
                f"{path}: {self._preferences_problem}. The defaults apply until it is fixed; "
                "the app leaves the file as it is.",
                title="Preferences not read",
                severity="warning",
                timeout=15,
            )
            return
        unknown = self._preferences.unknown_keymap_ids(binding_ids())
        if unknown:
            self.notify(
                f"{path}: no key has the id {', '.join(unknown)}; F1 lists each screen's ids.",
                title="Unknown keymap ids",
                severity="warning",
                timeout=15,
            )
        self.set_keymap(self._preferences.keymap)

    # -- errors --------------------------------------------------------------------------------

    @on(Worker.StateChanged)
    def handle_worker_error(self, event: Worker.StateChanged) -> None:
        """Every Workbench call runs in a worker (the app's, or a screen's that forwards its
        state changes here); a failed one is reported, and the app goes on."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    def report_error(self, error: BaseException) -> None:
        """Show an error as a notification: what the user can fix as a warning, the rest as
        an error (unexpected ones are logged with their traceback, never shown)."""
        if isinstance(error, ValidationError):
            shown = error.issues[:5]
            more = len(error.issues) - len(shown)
            lines = [str(issue) for issue in shown] + ([f"…and {more} more"] if more else [])
            self.notify("\n".join(lines), title="Invalid experiment", severity="warning")
        elif isinstance(error, BadInput):
            self.notify(str(error), severity="warning")
        elif isinstance(error, PromptLooperError):
            self.notify(str(error), title="Failed", severity="error", timeout=10)
        else:
            log.error("unexpected error in the app", exc_info=error)
            self.notify(
                f"{type(error).__name__}: {error}",
                title="Unexpected error",
                severity="error",
                timeout=10,
            )

    # -- navigation (keys, the command palette and the screens all come here) -----------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_go_experiments(self) -> None:
        from .screens.home import HomeScreen

        # The experiments list lies over the start-up screen, at the bottom of the stack.
        while len(self.screen_stack) > 2 and not isinstance(self.screen, HomeScreen):
            await self.pop_screen()

    def action_go_endpoints(self) -> None:
        from .screens.endpoints import EndpointsScreen

        if not isinstance(self.screen, EndpointsScreen):
            self.push_screen(EndpointsScreen())

    def open_editor(self, experiment_id: str | None) -> None:
        """The editor on an experiment's latest version, or on a new experiment (None)."""
        from .screens.editor import EditorScreen

        self.push_screen(EditorScreen(experiment_id))

    def launch_sweep(self, experiment_id: str) -> None:
        """Ask for the sweep settings, start the sweep and open its monitor."""
        from .screens.launch import LaunchScreen
        from .screens.monitor import MonitorScreen

        async def launch() -> None:
            experiment = await self.workbench.get_experiment(experiment_id)
            overrides = await self.push_screen_wait(LaunchScreen(experiment))
            if overrides is None:
                return
            sweep_id = await self.workbench.create_sweep(experiment.id, overrides)
            await self.workbench.start_sweep(sweep_id)
            await self.push_screen(MonitorScreen(sweep_id))

        self.run_worker(launch(), group="launch", exclusive=True, exit_on_error=False)

    async def _latest_sweep(self, experiment_id: str) -> str | None:
        """The id of an experiment's latest sweep; None, after saying so, when it has none."""
        try:
            return await self.workbench.resolve_sweep(experiment_id)
        except NotFound:
            experiment = await self.workbench.get_experiment(experiment_id)
            self.notify(
                f"Experiment '{experiment.name}' has no sweeps yet: launch one first "
                "(l on the experiments list, or ctrl+r in the editor).",
                severity="warning",
            )
            return None

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_latest_sweep(self, experiment_id: str, *, runs: bool = False) -> None:
        """The monitor (or with `runs`, the run list) of an experiment's latest sweep."""
        from .screens.monitor import MonitorScreen
        from .screens.runs import RunsScreen

        sweep_id = await self._latest_sweep(experiment_id)
        if sweep_id is not None:
            await self.push_screen(RunsScreen(sweep_id) if runs else MonitorScreen(sweep_id))

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_export(self, experiment_id: str) -> None:
        """Export an experiment's latest sweep (there is nothing to export before one)."""
        from .screens.export import ExportScreen

        sweep_id = await self._latest_sweep(experiment_id)
        if sweep_id is not None:
            await self.push_screen(ExportScreen(experiment_id, sweep=sweep_id))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's palette commands, but Quit asks as ctrl+q does, and themes are chosen by
        the `theme: NAME` commands alone."""
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                yield SystemCommand(
                    "Quit", "Quit; asks first while a sweep is running", self.action_request_quit
                )
            elif command.title != "Theme":
                yield command

    def action_request_quit(self) -> None:
        from .screens.confirm import ConfirmScreen

        if isinstance(self.screen, ConfirmScreen) and self.screen.id == "quit-question":
            # ctrl+q again, on the question it asked: that is a yes.
            self.screen.dismiss(True)
            return
        self._quit_after_asking()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def _quit_after_asking(self) -> None:
        if self._workbench is None:
            self.exit()
            return
        running = [s for s in await self.workbench.list_sweeps() if self.workbench.runner(s.id)]
        if running:
            from .screens.confirm import ConfirmScreen

            names = ", ".join(sorted({s.experiment for s in running}))
            question = (
                f"A sweep of {names} is running. Quit anyway? It stops now and can be "
                "resumed later (promptlooper resume)."
            )
            confirm = ConfirmScreen(question, confirm="Quit", id="quit-question")
            if not await self.push_screen_wait(confirm):
                return
        self.exit()

    def _announce_sweep_endings(self) -> None:
        assert self._sweep_events is not None
        for event in self._sweep_events.drain():
            self._announce(event)

    @work(group="announce", exit_on_error=False)
    async def _announce(self, event: Event) -> None:
        what, severity = _SWEEP_ENDINGS[event.type]
        if error := event.data.get("error"):
            what, severity = f"failed: {error}", "error"
        sweep = await self.workbench.get_sweep(event.sweep_id or "")
        self.notify(f"The sweep of {sweep.experiment} ({sweep.id}) {what}", severity=severity)


def binding_ids() -> set[str]:
    """Every key id a keymap may name: those of the app, its screens and its widgets."""
    from . import screens, widgets
    from .screens import (  # noqa: F401 - imported to define their bindings
        compare,
        confirm,
        editor,
        endpoint_form,
        endpoints,
        export,
        help,
        home,
        inspector,
        launch,
        monitor,
        runs,
    )
    from .widgets import leaderboard, run_table  # noqa: F401

    packages = (screens.__name__, widgets.__name__, __name__)

    def classes(base: type[DOMNode]) -> Iterator[type[DOMNode]]:
        for sub in base.__subclasses__():
            yield sub
            yield from classes(sub)

    return {
        binding.id
        for cls in classes(DOMNode)
        if cls.__module__.startswith(packages)
        for binding in cls.BINDINGS
        if isinstance(binding, Binding) and binding.id
    }
