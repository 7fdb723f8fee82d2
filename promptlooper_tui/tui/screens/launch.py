"""Launching a sweep: strategy, samples, concurrency and token budget, with the plan they give."""

from __future__ import annotations

import pydantic
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from ...domain.errors import PromptLooperError
from ...domain.experiment import SweepSettings
from ...domain.records import ExperimentDetail, SweepPlan
from ...workbench import SweepOverrides
from .. import display
from ..widgets.app_footer import AppFooter
from .base import Dialog, WorkbenchAccess

STRATEGIES = ("grid", "random", "guided", "racing")
#: What a sweep runs at once when its experiment does not say.
DEFAULT_CONCURRENCY = SweepSettings.model_fields["max_concurrency"].default


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
                yield Label("Samples")
                yield Input(
                    _text(sweep.get("samples")),
                    placeholder="configs, for random/guided",
                    id="samples",
                    compact=True,
                )
                yield Label("Concurrency")
                yield Input(
                    _text(sweep.get("max_concurrency", DEFAULT_CONCURRENCY)),
                    placeholder="calls at once (required)",
                    id="concurrency",
                    compact=True,
                )
                yield Label("Token budget")
                yield Input(
                    _text(sweep.get("max_tokens")),
                    placeholder="none",
                    id="budget",
                    compact=True,
                )
            yield Static("Planning…", id="plan", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Launch", id="launch", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield AppFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#strategy", Select).focus()
        self._plan(self._overrides())

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
            return SweepOverrides(
                strategy=str(self.query_one("#strategy", Select).value),
                samples=number("samples", "Samples"),
                concurrency=number("concurrency", "Concurrency", required=True),
                max_tokens=number("budget", "Token budget"),
            )
        except (pydantic.ValidationError, ValueError) as exc:
            return _first_problem(exc)

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def _plan(self, overrides: SweepOverrides | str) -> None:
        plan = self.query_one("#plan", Static)
        if isinstance(overrides, str):
            plan.update(overrides)
            plan.set_class(True, "problem")
            return
        try:
            result = await self.wb.plan(self._experiment.id, overrides)
        except PromptLooperError as exc:
            plan.update(str(exc))
            plan.set_class(True, "problem")
            return
        plan.update(plan_text(result))
        plan.set_class(False, "problem")

    @on(Button.Pressed, "#launch")
    @on(Input.Submitted)
    def action_launch(self) -> None:
        overrides = self._overrides()
        if isinstance(overrides, str):
            self.notify(overrides, severity="warning")
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
        field = {"concurrency": "Concurrency", "max_tokens": "Token budget"}.get(
            str(error["loc"][0]), str(error["loc"][0]).capitalize()
        )
        return f"{field}: {error['msg'].lower()}"
    return str(exc)
