"""The experiment editor: YAML with highlighting, validation as you type, the sweep plan, save
(a new version) and launch."""

from __future__ import annotations

import dataclasses
from importlib.util import find_spec
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Header, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...domain.errors import Issue, PromptLooperError, ValidationError
from .. import display
from ..widgets.app_footer import AppFooter
from .base import WorkbenchScreen
from .launch import plan_text

#: Pause in typing after which the text is validated.
VALIDATE_AFTER = 0.4
#: YAML highlighting needs tree-sitter's YAML grammar; without it the editor shows plain text.
HIGHLIGHT_LANGUAGE = "yaml" if find_spec("tree_sitter_yaml") else None

#: The new experiment's text (its name line made unique). It runs as it is, and its first
#: sweep has a clear winner: the large model with the brief prompt (brief answers pass the
#: length scorer, and the large model names more of each question's keywords).
STARTER = """\
# A new experiment. It runs as it is against the built-in simulated endpoint:
# ctrl+s saves it, ctrl+r launches a sweep. Change `endpoint:` to a stored endpoint's name (F3)
# and `model:` to models it serves to try your own.
name: my-experiment
description: Which model and prompt answer short questions best?
endpoint: simulated

parameters:
  model: [small-model, large-model]
  prompt: [brief, detailed]
  temperature: 0.3
  max_tokens: 150

prompts:
  brief: "Answer in two sentences: {{ item.input.question }}"
  detailed: "Answer step by step, in detail: {{ item.input.question }}"

pipeline:
  - name: answer
    system: You are a helpful assistant.
    user: "{{ prompts[params.prompt] }}"

dataset:
  - input: {question: How do Configs, Items and Scores relate in a Sweep?}
    keywords: [Configs, Items, Scores, Sweep]
  - input: {question: Why does a Cache save Tokens and Money?}
    keywords: [Cache, Tokens, Money]
  - input: {question: How does the Leaderboard use Confidence Intervals?}
    keywords: [Leaderboard, Confidence, Intervals]
  - input: {question: Where does SQLite keep each Run?}
    keywords: [SQLite, Run]
  - input: {question: Can an Endpoint serve Ollama Models?}
    keywords: [Endpoint, Ollama, Models]
  - input: {question: What does Racing do with weak Configs?}
    keywords: [Racing, Configs]
  - input: {question: How do Repeats measure Noise?}
    keywords: [Repeats, Noise]
  - input: {question: Which Export holds the Winner?}
    keywords: [Export, Winner]

scorers:
  # The share of the item's keywords the answer names (and no AI boilerplate), counted twice.
  - {type: keyword, required_present_from: keywords, required_absent: ["As an AI"], weight: 2}
  - {type: format, format: length, min_tokens: 5, max_tokens: 40}

sweep:
  strategy: grid
  max_concurrency: 4
"""
STARTER_NAME = "my-experiment"


def starter_text(name: str) -> str:
    """The new experiment's text, named `name`."""
    return STARTER.replace(f"name: {STARTER_NAME}\n", f"name: {name}\n", 1)


class EditorScreen(WorkbenchScreen):
    TITLE = "Experiment editor"
    HELP = (
        "Edit the experiment's YAML. It is validated as you type; problems are listed with "
        "their line (select one, or press ctrl+n, to jump there). The plan is the dry run of "
        "the text as it stands: configs, runs, LLM calls, how many are cached, tokens and "
        "cost. Saving stores a new version; runs keep the version they ran. Escape leaves "
        "the editor (asking first when there are unsaved changes)."
    )
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Save as a new version"),
        Binding("ctrl+r", "launch", "Launch", id="editor.launch", tooltip="Save, then sweep"),
        Binding("ctrl+n", "next_problem", "Next problem", id="editor.next_problem"),
        # A priority key: the text area would take the first escape to give up the focus.
        Binding("escape", "leave", "Back", priority=True, id="editor.back"),
    ]

    def __init__(self, experiment_id: str | None) -> None:
        super().__init__()
        self._experiment_id = experiment_id
        self._name = ""
        self._version = 0
        self._saved_text = ""
        #: The file the experiment was imported from: relative dataset paths resolve there.
        self._source_file: str | None = None
        self._issues: list[Issue] = []
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            yield TextArea.code_editor(
                "", language=HIGHLIGHT_LANGUAGE, id="yaml", tab_behavior="indent"
            )
            with Vertical(id="editor-side"):
                yield OptionList(id="problems")
                yield Static("", id="plan", markup=False)
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#problems").border_title = "Problems"
        self.query_one("#plan").border_title = "Plan (dry run)"
        self._load()

    @property
    def _text_area(self) -> TextArea:
        return self.query_one("#yaml", TextArea)

    @property
    def _base_dir(self) -> Path | None:
        return Path(self._source_file).parent if self._source_file else None

    @property
    def dirty(self) -> bool:
        return self._text_area.text != self._saved_text

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        if self._experiment_id is None:
            taken = {e.name for e in await self.wb.list_experiments()}
            name = next(
                n
                for n in (f"{STARTER_NAME}-{i}" if i else STARTER_NAME for i in range(10_000))
                if n not in taken
            )
            self._text_area.load_text(starter_text(name))
        else:
            experiment = await self.wb.get_experiment(self._experiment_id)
            self._name, self._version = experiment.name, experiment.version
            self._source_file = experiment.source_file
            self._saved_text = experiment.spec_yaml
            self._text_area.load_text(experiment.spec_yaml)
        self._update_title()
        self._text_area.focus()
        self._validate(self._text_area.text)

    def _update_title(self) -> None:
        if self._experiment_id is None:
            self.sub_title = "new experiment (not saved)"
        else:
            self.sub_title = f"{self._name} v{self._version}" + (
                " · modified" if self.dirty else ""
            )

    @on(TextArea.Changed, "#yaml")
    def _text_changed(self) -> None:
        self._update_title()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(VALIDATE_AFTER, self._validate_now)

    def _validate_now(self) -> None:
        self._validate(self._text_area.text)

    @work(exclusive=True, group="validate", exit_on_error=False)
    async def _validate(self, text: str) -> None:
        """Validate off the event loop (it parses and trial-renders every template), then
        plan the valid text."""
        try:
            loaded = await self.wb.validate_text(text, "<editor>", self._base_dir)
        except ValidationError as exc:
            self._show_problems(exc.issues)
            self._show_plan("No plan while the experiment has problems.", problem=True)
            return
        self._show_problems([])
        spec = loaded.spec
        self.query_one("#problems", OptionList).add_option(
            Option(
                Content.from_markup(
                    "[$success]✓ valid[/]: $params swept, $stages stage(s), $items items, "
                    "$scorers scorer(s)",
                    params=len(spec.parameter_space()),
                    stages=len(spec.pipeline),
                    items=len(spec.items),
                    scorers=len(spec.scorers),
                ),
                disabled=True,
            )
        )
        try:
            plan = await self.wb.plan_spec(spec)
        except PromptLooperError as exc:
            self._show_plan(f"No plan: {exc}", problem=True)
            return
        self._show_plan(
            f"configs      {plan.configs:>10,}\n"
            f"runs         {plan.runs:>10,}\n"
            f"LLM calls    {plan.calls:>10,}\n"
            f"cached calls {plan.cached_calls:>10,}\n"
            f"est. tokens  {display.estimated_tokens(plan.estimated_tokens):>10}\n"
            f"est. cost    {display.cost(plan.estimated_cost):>10}"
        )
        self.query_one("#plan", Static).tooltip = plan_text(plan)

    def _show_problems(self, issues: list[Issue]) -> None:
        self._issues = sorted(issues, key=lambda i: (i.line is None, i.line or 0))
        problems = self.query_one("#problems", OptionList)
        problems.clear_options()
        for issue in self._issues:
            where = f"L{issue.line}" if issue.line is not None else "–"
            field = f" {issue.path}:" if issue.path else ""
            problems.add_option(
                Option(
                    Content.from_markup(
                        "[$error]$where[/]$field $message",
                        where=where,
                        field=field,
                        message=issue.message,
                    )
                )
            )

    @on(OptionList.OptionSelected, "#problems")
    def _jump_to_problem(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self._issues):
            self._jump(self._issues[event.option_index])

    def _jump(self, issue: Issue) -> None:
        text_area = self._text_area
        if issue.line is not None:
            text_area.cursor_location = (issue.line - 1, 0)
            text_area.scroll_cursor_visible(center=True)
        text_area.focus()

    def action_next_problem(self) -> None:
        located = [i for i in self._issues if i.line is not None]
        if not located:
            self.notify("No problems with a line to jump to.")
            return
        row = self._text_area.cursor_location[0] + 1
        issue = next((i for i in located if (i.line or 0) > row), located[0])
        self.query_one("#problems", OptionList).highlighted = self._issues.index(issue)
        self._jump(issue)

    def _show_plan(self, text: str, *, problem: bool = False) -> None:
        plan = self.query_one("#plan", Static)
        plan.update(text)
        plan.set_class(problem, "problem")
        plan.tooltip = None

    async def _save(self) -> bool:
        """Store the text as a new version; False when it is invalid or the user backs out."""
        from .confirm import ConfirmScreen

        text = self._text_area.text
        try:
            loaded = await self.wb.validate_text(text, "<editor>", self._base_dir)
        except ValidationError as exc:
            self._show_problems(exc.issues)
            count = len(exc.issues)
            self.notify(
                f"Not saved: {count} problem{'s' * (count != 1)}; ctrl+n jumps to the next.",
                severity="warning",
            )
            return False
        name = loaded.spec.name
        # The name says which experiment a save adds a version to: ask before a new or renamed
        # text lands on another experiment.
        if name != self._name and name in {e.name for e in await self.wb.list_experiments()}:
            question = f"An experiment named {name} exists. Save this as its new version?"
            if not await self.app.push_screen_wait(ConfirmScreen(question, confirm="Save")):
                return False
        result = await self.wb.import_experiment(
            dataclasses.replace(loaded, origin=self._source_file)
        )
        if result.created:
            self.notify(f"Saved {result.name} v{result.version}")
        else:
            self.notify(f"No changes: {result.name} is still v{result.version}")
        self._experiment_id, self._name, self._version = result.id, result.name, result.version
        self._saved_text = text
        self._update_title()
        return True

    @work(exclusive=True, group="save", exit_on_error=False)
    async def action_save(self) -> None:
        await self._save()

    @work(exclusive=True, group="save", exit_on_error=False)
    async def action_launch(self) -> None:
        if (self.dirty or self._experiment_id is None) and not await self._save():
            return
        assert self._experiment_id is not None
        self.looper.launch_sweep(self._experiment_id)

    @work(exclusive=True, group="leave", exit_on_error=False)
    async def action_leave(self) -> None:
        from .confirm import ConfirmScreen

        if self.dirty:
            question = "Leave the editor? Your unsaved changes will be lost."
            if not await self.app.push_screen_wait(
                ConfirmScreen(question, confirm="Discard", danger=True)
            ):
                return
        self.dismiss()
