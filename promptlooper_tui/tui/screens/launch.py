"""Launching a sweep: strategy, samples, concurrency and token budget (for evolve: generations,
proposals and the proposer's model), with the plan they give."""

from __future__ import annotations

from collections.abc import Iterator

import pydantic
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from ...domain.errors import PromptLooperError
from ...domain.experiment import SweepSettings
from ...domain.records import ExperimentDetail, SweepPlan
from ...workbench import SweepOverrides
from .. import display
from ..widgets.app_footer import AppFooter
from .base import Dialog, WorkbenchAccess

STRATEGIES = ("grid", "random", "guided", "racing", "evolve")
#: What a sweep runs at once when its experiment does not say.
DEFAULT_CONCURRENCY = SweepSettings.model_fields["max_concurrency"].default
#: evolve's rounds and templates per round when its experiment does not say.
DEFAULT_GENERATIONS = SweepSettings.model_fields["generations"].default
DEFAULT_PROPOSALS = SweepSettings.model_fields["proposals"].default


def plan_text(plan: SweepPlan) -> str:
    """A plan on one line, for the launch dialog and tooltips."""
    tokens = display.estimated_tokens(plan.estimated_tokens)
    return (
        f"{plan.configs:,} configs · {plan.runs:,} runs · {plan.calls:,} calls "
        f"({plan.cached_calls:,} cached) · {tokens} tokens · {display.cost(plan.estimated_cost)}"
    )


class LaunchScreen(Dialog[SweepOverrides | None], WorkbenchAccess):
    """Dismisses with the overrides to launch with, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="launch.cancel"),
        Binding("ctrl+r", "launch", "Launch", id="launch.go", tooltip="Start the sweep"),
    ]

    def __init__(self, experiment: ExperimentDetail) -> None:
        super().__init__()
        self._experiment = experiment
        self._sweep = experiment.spec.get("sweep", {})
        self._replan: Timer | None = None
        #: The overrides last planned and what the engine said was wrong with them (None: fine).
        self._planned: tuple[SweepOverrides, str | None] | None = None

    def compose(self) -> ComposeResult:
        sweep = self._sweep
        with Vertical(id="dialog"):
            yield Static(
                f"Launch a sweep of {self._experiment.name} v{self._experiment.version}",
                id="launch-title",
                markup=False,
            )
            with Grid(id="launch-form"):
                yield Label("Strategy")
                yield Select(
                    [(s, s) for s in STRATEGIES],
                    value=sweep.get("strategy", "grid"),
                    allow_blank=False,
                    id="strategy",
                    compact=True,
                )
                # evolve asks for its own settings instead of samples (it proposes, not samples).
                samples = sweep.get("samples")
                yield from _field(
                    "Samples", samples, "configs, for random/guided", "samples", "not-evolve"
                )
                generations = sweep.get("generations", DEFAULT_GENERATIONS)
                yield from _field(
                    "Generations",
                    generations,
                    "rounds of proposals (required)",
                    "generations",
                    "evolve",
                )
                proposals = sweep.get("proposals", DEFAULT_PROPOSALS)
                yield from _field(
                    "Proposals",
                    proposals,
                    "new templates per generation (required)",
                    "proposals",
                    "evolve",
                )
                proposer = (sweep.get("proposer") or {}).get("model")
                yield from _field(
                    "Proposer model",
                    proposer,
                    "the model that writes them (required)",
                    "proposer",
                    "evolve",
                )
                concurrency = sweep.get("max_concurrency", DEFAULT_CONCURRENCY)
                yield from _field(
                    "Concurrency", concurrency, "calls at once (required)", "concurrency"
                )
                yield from _field("Token budget", sweep.get("max_tokens"), "none", "budget")
            yield Static("Planning…", id="plan", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Launch", id="launch", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield AppFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#strategy", Select).focus()
        self._show_strategy_fields()
        self._plan(self._overrides())

    @property
    def _evolve(self) -> bool:
        return self.query_one("#strategy", Select).value == "evolve"

    @on(Select.Changed, "#strategy")
    def _show_strategy_fields(self) -> None:
        evolve = self._evolve
        self.query(".evolve").set(display=evolve)
        self.query(".not-evolve").set(display=not evolve)

    @on(Input.Changed)
    @on(Select.Changed)
    def _settings_changed(self) -> None:
        # Replanning walks the cache; wait until the typing stops.
        if self._replan is not None:
            self._replan.stop()
        self._replan = self.set_timer(0.3, self._replan_now)

    def _replan_now(self) -> None:
        self._plan(self._overrides())

    def _overrides(self) -> SweepOverrides | str:
        """The overrides in the form, or what is wrong with them."""

        def number(widget_id: str, label: str, *, required: bool = False) -> int | None:
            text = self.query_one(f"#{widget_id}", Input).value.strip()
            if not text and required:
                raise ValueError(f"{label}: give a whole number, 1 or more")
            if not text:
                return None
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a whole number") from None

        try:
            if not self._evolve:
                return SweepOverrides(
                    strategy=str(self.query_one("#strategy", Select).value),
                    samples=number("samples", "Samples"),
                    concurrency=number("concurrency", "Concurrency", required=True),
                    max_tokens=number("budget", "Token budget"),
                )
            return SweepOverrides(
                strategy="evolve",
                concurrency=number("concurrency", "Concurrency", required=True),
                max_tokens=number("budget", "Token budget"),
                generations=number("generations", "Generations", required=True),
                proposals=number("proposals", "Proposals", required=True),
                proposer_model=self.query_one("#proposer", Input).value.strip() or None,
            )
        except (pydantic.ValidationError, ValueError) as exc:
            return _first_problem(exc)

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def _plan(self, overrides: SweepOverrides | str) -> None:
        await self._check(overrides)

    async def _check(self, overrides: SweepOverrides | str) -> str | None:
        """Show the plan of `overrides`, or what is wrong with them (returned)."""
        plan = self.query_one("#plan", Static)
        problem: str | None
        if isinstance(overrides, str):
            problem = overrides
        else:
            try:
                result = await self.wb.plan(self._experiment.id, overrides)
            except PromptLooperError as exc:
                problem = str(exc)
            else:
                problem = None
                plan.update(plan_text(result))
            self._planned = (overrides, problem)
        if problem is not None:
            plan.update(problem)
        plan.set_class(problem is not None, "problem")
        return problem

    @on(Button.Pressed, "#launch")
    @on(Input.Submitted)
    def action_launch(self) -> None:
        overrides = self._overrides()
        if isinstance(overrides, str):
            self.notify(overrides, severity="warning")
            return
        if self._replan is not None:
            self._replan.stop()
        self._launch(overrides)

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def _launch(self, overrides: SweepOverrides) -> None:
        """Launch settings the engine accepts; for others, say why in the dialog (the plan
        already walked them: an evolve sweep of an experiment with no prompt to rewrite...)."""
        planned = self._planned
        problem = (
            planned[1] if planned and planned[0] == overrides else await self._check(overrides)
        )
        if problem is not None:
            self.notify(problem, severity="warning")
            return
        self.dismiss(overrides)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        error = exc.errors()[0]
        field = {
            "concurrency": "Concurrency",
            "max_tokens": "Token budget",
            "proposer_model": "Proposer model",
        }.get(str(error["loc"][0]), str(error["loc"][0]).capitalize())
        return f"{field}: {error['msg'].lower()}"
    return str(exc)


def _field(
    label: str, value: object, placeholder: str, id: str, classes: str = ""
) -> Iterator[Widget]:
    """One row of the form: its label, and its input holding `value` ("" when None)."""
    yield Label(label, classes=classes)
    yield Input(_text(value), placeholder=placeholder, id=id, classes=classes, compact=True)
