"""The product's commands in the command palette (ctrl+p), namespaced by what they act on:
`experiment: open quickstart`, `sweep: launch quickstart`, `theme: dusk`, ..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..domain.errors import PromptLooperError
from ..domain.records import ExperimentRecord
from .host import AppHost


@dataclass(frozen=True)
class ProductCommand:
    title: str
    run: Callable[[], object]
    help: str


class ProductCommands(Provider):
    """Navigation, per-experiment actions and themes. Experiments are read once, when the
    palette opens."""

    _commands: list[ProductCommand]

    @property
    def _looper(self) -> AppHost:
        return cast("AppHost", self.app)

    async def startup(self) -> None:
        try:
            experiments = await self._looper.workbench.list_experiments()
        except PromptLooperError:
            experiments = []
        self._commands = [
            *self._navigation(),
            *(command for e in experiments for command in self._for_experiment(e)),
            *self._themes(),
        ]

    def _navigation(self) -> list[ProductCommand]:
        app = self._looper
        return [
            ProductCommand("experiments: list", app.action_go_experiments, "Every experiment (F2)"),
            ProductCommand(
                "experiment: new", lambda: app.open_editor(None), "Write a new experiment"
            ),
            ProductCommand(
                "endpoints: open", app.action_go_endpoints, "Add, test and remove endpoints (F3)"
            ),
            ProductCommand("help: keys", app.action_help, "The keys of this screen (F1)"),
        ]

    def _for_experiment(self, experiment: ExperimentRecord) -> list[ProductCommand]:
        app, name, ref = self._looper, experiment.name, experiment.id
        commands = [
            ProductCommand(
                f"experiment: open {name}",
                lambda: app.open_editor(ref),
                f"Edit {name} v{experiment.version}",
            ),
            ProductCommand(
                f"sweep: launch {name}",
                lambda: app.launch_sweep(ref),
                "Choose strategy, samples, concurrency and budget, then start",
            ),
        ]
        if experiment.latest_sweep_id is not None:
            commands += [
                ProductCommand(
                    f"sweep: monitor {name}",
                    lambda: app.open_latest_sweep(ref),
                    f"The latest sweep ({experiment.latest_sweep_status}), live",
                ),
                ProductCommand(
                    f"runs: browse {name}",
                    lambda: app.open_latest_sweep(ref, runs=True),
                    "Every run of the latest sweep",
                ),
                ProductCommand(
                    f"export: {name}",
                    lambda: app.open_export(ref),
                    "The best config (json, env, yaml), a report, or every run (csv, jsonl)",
                ),
            ]
        return commands

    def _themes(self) -> list[ProductCommand]:
        app = self._looper

        def use(theme: str) -> Callable[[], None]:
            return lambda: setattr(app, "theme", theme)

        return [
            ProductCommand(f"theme: {name}", use(name), "Switch theme (remembered)")
            for name in sorted(app.available_themes)
        ]

    async def discover(self) -> Hits:
        for command in self._commands:
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
