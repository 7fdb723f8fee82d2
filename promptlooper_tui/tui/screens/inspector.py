"""The run inspector: a run's config, each stage's prompt and output, scores and errors (and, for
a prompt an evolve sweep wrote, its lineage and diff); rate it, step through its list, or compare
it with another run."""

from __future__ import annotations

import json
import re

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Header, Markdown, Static

from ...domain.config_text import format_config
from ...domain.records import Evolution, RunDetail, StageRecord
from .. import display
from ..widgets.app_footer import AppFooter
from ..widgets.prompt_diff import PromptLineage
from ..widgets.run_table import MoreRuns
from .base import WorkbenchScreen

#: Lines that make an output read as markdown: headings, lists, fences, tables, emphasis.
#: Digit keys rate d/RATING_STEPS; + and - move a rating by one step.
RATING_STEPS = 9
#: The scorer name the app rates under, as `promptlooper score` does by default.
RATER = "human"

_MARKDOWN = re.compile(
    r"^(#{1,6} |\s*[-*+] |\s*\d+\. |```|\|.*\|\s*$|>\s)|\*\*[^*]+\*\*", re.MULTILINE
)


def looks_like_markdown(text: str) -> bool:
    return len(_MARKDOWN.findall(text)) >= 2


class RunInspectorScreen(WorkbenchScreen):
    TITLE = "Run inspector"
    CSS_PATH = "../styles/inspector.tcss"
    HELP = (
        "One run through every stage: the rendered messages, the output (as markdown when it "
        "is markdown), tokens, latency, cache hits and scores. Rate it with 0-9, stored as "
        "d/9 on the 0-1 scale `promptlooper score` takes (0 = 0.000, 7 = 0.778, 9 = 1.000); "
        "+ and - raise or lower your rating by one step (1/9). Your new rating replaces your "
        "earlier one, and it counts in the leaderboard. A run of a prompt an evolve sweep "
        "wrote shows its generation, parents and the proposer's rationale, and what it changed "
        "in its first parent's template (- removed, + added). Press c "
        "on one run, then c on another, to compare them."
    )
    BINDINGS = [
        Binding("0", "rate(0)", "Rate d/9", key_display="0-9", id="inspector.rate"),
        *(
            Binding(str(d), f"rate({d})", show=False, id=f"inspector.rate_{d}")
            for d in range(1, 10)
        ),
        Binding("plus", "adjust(1)", "Better", key_display="+", id="inspector.good"),
        Binding("minus", "adjust(-1)", "Worse", key_display="-", id="inspector.bad"),
        Binding("n", "step(1)", "Next", id="inspector.next", tooltip="The next run in the list"),
        Binding("p", "step(-1)", "Previous", id="inspector.previous"),
        Binding("c", "compare", "Compare", id="inspector.compare"),
        Binding("escape", "back", "Back", id="inspector.back"),
    ]

    def __init__(
        self, run_id: str, run_ids: list[str] | None = None, more: MoreRuns | None = None
    ) -> None:
        """`run_ids`: the list the run was opened from, for next / previous; `more` fetches the
        list's next page when `n` goes past its last loaded run."""
        super().__init__()
        self.run_id = run_id
        self._more = more
        self._run_ids = run_ids if run_ids and run_id in run_ids else [run_id]
        self._index = self._run_ids.index(run_id)
        self.run: RunDetail | None = None
        #: The run last rated here and the rating given (the store may not have it yet).
        self._rating: tuple[str, float | None] = ("", None)
        #: Each sweep's lineage as last read (None: not an evolve sweep).
        self._evolutions: dict[str, Evolution | None] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="run-summary")
        yield VerticalScroll(id="run-body")
        yield AppFooter()

    def on_mount(self) -> None:
        self._load(self.run_id)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self, run_id: str) -> None:
        run = await self.wb.get_run(run_id)
        lineage = await self._lineage(run)
        self.run = run
        self.sub_title = f"{run.id} · {self._index + 1} of {len(self._run_ids)}"
        self.query_one("#run-summary", Static).update(_summary(run))
        body = self.query_one("#run-body", VerticalScroll)
        await body.remove_children()
        await body.mount_all([lineage, *_body(run)] if lineage is not None else _body(run))
        body.scroll_home(animate=False)

    async def _lineage(self, run: RunDetail) -> PromptLineage | None:
        """The lineage of the run's prompt when an evolve sweep's proposer wrote it; None for
        any other prompt or sweep. A sweep's lineage is read again when the run's prompt is
        newer than the copy here."""
        if run.sweep_id not in self._evolutions:
            sweep = await self.wb.get_sweep(run.sweep_id)
            evolve = sweep.strategy == "evolve"
            self._evolutions[run.sweep_id] = (
                await self.wb.evolution(run.sweep_id) if evolve else None
            )
        evolution = self._evolutions[run.sweep_id]
        if evolution is None:
            return None
        name = run.config.get(evolution.parameter)
        if not isinstance(name, str):
            return None  # the experiment's one prompt, set outside the swept parameters
        if evolution.template(name) is None:
            evolution = self._evolutions[run.sweep_id] = await self.wb.evolution(run.sweep_id)
        proposal = evolution.proposal(name)
        return PromptLineage(evolution, proposal) if proposal is not None else None

    def action_rate(self, digit: int) -> None:
        self._rate(round(digit / RATING_STEPS, 3))

    def action_adjust(self, steps: int) -> None:
        """Move the person's rating of this run by `steps` of 1/9 (from nothing: + is 1.0,
        - is 0.0)."""
        run_id, current = self._rating
        if run_id != self.run_id:
            current = None
        if current is None and self.run is not None and self.run.id == self.run_id:
            current = next(
                (s.value for s in self.run.scores if s.kind == "human" and s.scorer == RATER),
                None,
            )
        if current is None:
            value = 1.0 if steps > 0 else 0.0
        else:
            step = round(current * RATING_STEPS) + steps
            value = round(min(RATING_STEPS, max(0, step)) / RATING_STEPS, 3)
        self._rate(value)

    def _rate(self, value: float) -> None:
        # The rating the next +/- starts from, before the store has it.
        self._rating = (self.run_id, value)
        self._save_rating(self.run_id, value)

    # Exclusive: a newer rating replaces the older one, so a key press may cancel the last.
    @work(exclusive=True, group="rate", exit_on_error=False)
    async def _save_rating(self, run_id: str, value: float) -> None:
        run = await self.wb.add_score(run_id, value, scorer=RATER)
        self.notify(
            f"Your rating: {display.score(value)} (replaces any earlier one); "
            f"run score now {display.score(run.score)}"
        )
        if run_id == self.run_id:
            self._load(run_id)

    # Not exclusive: a second `n` must not cancel the page the first is waiting for.
    @work(group="step", exit_on_error=False)
    async def action_step(self, delta: int) -> None:
        if self._index + delta == len(self._run_ids) and self._more is not None:
            # Pages only ever add runs below the loaded ones: the indexes stay right.
            self._run_ids = await self._more()
        index = self._index + delta
        if not 0 <= index < len(self._run_ids):
            self.notify("No more runs that way.", timeout=2)
            return
        self._index = index
        self.run_id = self._run_ids[index]
        self._load(self.run_id)

    def action_compare(self) -> None:
        from .compare import CompareScreen, run_side

        if self.run is None:
            return
        first = self.looper.compare_mark
        if first is None or first.id == self.run.id:
            self.looper.compare_mark = self.run
            self.notify("Marked for comparison: open another run and press c.")
            return
        self.looper.compare_mark = None
        self.app.push_screen(CompareScreen(run_side(first), run_side(self.run)))

    def action_back(self) -> None:
        self.dismiss()


def _summary(run: RunDetail) -> Content:
    item_input = json.dumps(run.item.get("input", run.item), ensure_ascii=False)
    return Content.assemble(
        (f"● {run.status}", display.status_style(run.status)),
        (" · truncated (an answer hit max_tokens)", "bold $warning") if run.truncated else "",
        " · score ",
        (display.score(run.score), "bold"),
        f" · tokens {run.tokens_in:,} in / {run.tokens_out:,} out · "
        f"{display.latency(run.latency_ms)} · {run.cached_calls}/{run.calls} calls cached\n",
        ("config ", "bold"),
        format_config(run.config),
        "\n",
        (f"item {run.item_index}", "bold"),
        f" (repeat {run.repeat}) {item_input}",
    )


def _body(run: RunDetail) -> list[Widget]:
    widgets: list[Widget] = []
    if run.error:
        widgets.append(Static(Content.styled(f"error: {run.error}", "$error"), classes="error"))
    for stage in run.stages:
        widgets.extend(_stage(stage))
    widgets.append(Static("Scores", classes="section"))
    widgets.append(Static(_scores(run)))
    return widgets


def _stage(stage: StageRecord) -> list[Widget]:
    heading = (
        f"Stage {stage.index + 1}: {stage.name} · {stage.tokens_in:,} → {stage.tokens_out:,} "
        f"tokens · {display.latency(stage.latency_ms)}" + (" · cached" if stage.cached else "")
    )
    if stage.finish_reason is not None:
        heading += f" · finish: {stage.finish_reason}"
    widgets: list[Widget] = [Static(heading, classes="section", markup=False)]
    if stage.finish_reason == "length":
        cut = "truncated: the answer stopped at max_tokens; the output below is cut short"
        widgets.append(Static(Content.styled(cut, "$warning"), classes="error"))
    widgets.extend(
        Static(Content.styled(f"endpoint warning: {w}", "$warning"), classes="error")
        for w in stage.warnings
    )
    for message in stage.messages:
        widgets.append(
            Static(
                Content.assemble((f"{message['role']}: ", "bold $secondary"), message["content"]),
                classes="message",
            )
        )
    if stage.error:
        widgets.append(Static(Content.styled(f"error: {stage.error}", "$error"), classes="error"))
    if stage.output is not None:
        widgets.append(Static("output", classes="output-label"))
        if looks_like_markdown(stage.output):
            widgets.append(Markdown(stage.output, classes="output"))
        else:
            widgets.append(Static(stage.output, classes="output", markup=False))
    return widgets


def _scores(run: RunDetail) -> Content:
    if not run.scores:
        return Content.styled("no scores", "$text-muted")
    lines = []
    for s in run.scores:
        value = display.score(s.value)
        extra = f"  {s.error}" if s.error else (f"  “{s.note}”" if s.note else "")
        lines.append(
            Content.assemble(
                (f"{s.scorer:<24}", "bold" if s.kind == "human" else ""),
                f"{s.kind:<6} w{s.weight:<4g} ",
                (value, "$success" if s.value is not None else "$error"),
                (extra, "$error" if s.error else "$text-muted"),
            )
        )
    return Content("\n").join(lines)
