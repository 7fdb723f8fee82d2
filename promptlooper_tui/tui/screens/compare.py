"""Two runs or two configs side by side, with what differs highlighted."""

from __future__ import annotations

import json
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Static

from ...domain.config_text import race_sentence
from ...domain.records import LeaderboardEntry, RunDetail
from .. import display
from ..text_diff import Pieces, word_diff
from ..widgets.app_footer import AppFooter


@dataclass(frozen=True)
class CompareSide:
    title: str
    #: (heading, text) pairs; sections with the same heading are compared.
    sections: list[tuple[str, str]]


def config_side(entry: LeaderboardEntry) -> CompareSide:
    return CompareSide(
        title=f"#{entry.rank} config",
        sections=[
            ("config", _config_lines(entry.config)),
            (
                "results",
                f"score {display.score(entry.score)} "
                f"(95% CI {entry.ci_low:.3f}–{entry.ci_high:.3f})\n"
                f"runs {entry.n}\n"
                f"tokens {display.tokens(entry.tokens)}\n"
                f"cost {display.cost(entry.cost)}\n"
                f"p50 latency {display.latency(entry.p50_latency_ms)}\n"
                + ("tied with the leader" if entry.tied_with_leader else "worse than the leader")
                + _race_line(entry),
            ),
        ],
    )


def _race_line(entry: LeaderboardEntry) -> str:
    if entry.decision is not None:
        return f"\n{race_sentence(entry.decision)}"
    return " (dropped)" if entry.dropped else ""


def run_side(run: RunDetail) -> CompareSide:
    sections = [
        (
            "run",
            f"{run.status} · score {display.score(run.score)}\n"
            f"item {run.item_index} · repeat {run.repeat}\n"
            f"tokens {run.tokens_in} in / {run.tokens_out} out · "
            f"{display.latency(run.latency_ms)}",
        ),
        ("config", _config_lines(run.config)),
        ("item", json.dumps(run.item.get("input", run.item), indent=1, ensure_ascii=False)),
    ]
    for stage in run.stages:
        output = stage.output if stage.output is not None else f"(no output) {stage.error or ''}"
        sections.append((f"stage {stage.index + 1}: {stage.name}", output))
    sections.append(
        (
            "scores",
            "\n".join(
                f"{s.scorer}: {display.score(s.value)}" + (f" ({s.error})" if s.error else "")
                for s in run.scores
            )
            or "(none)",
        )
    )
    return CompareSide(title=f"run {run.id}", sections=sections)


def _config_lines(config: dict[str, object]) -> str:
    # One parameter per line, sorted, so the diff lines up parameter by parameter.
    return "\n".join(f"{key}: {json.dumps(config[key])}" for key in sorted(config)) or "(fixed)"


class CompareScreen(Screen[None]):
    TITLE = "Compare"
    CSS_PATH = "../styles/compare.tcss"
    HELP = "Two runs or configs side by side; what differs is highlighted on both sides."
    BINDINGS = [Binding("escape", "back", "Back", id="compare.back")]

    def __init__(self, left: CompareSide, right: CompareSide) -> None:
        super().__init__()
        self._left = left
        self._right = right
        #: Pieces of text that differ between the two sides (on either side).
        self.differences = 0

    def compose(self) -> ComposeResult:
        yield Header()
        left, right, self.differences = _render(self._left, self._right)
        self.sub_title = (
            f"{self.differences} differing passages" if self.differences else "no differences"
        )
        with Horizontal(id="compare-body"):
            with VerticalScroll(classes="compare-side panel") as pane:
                pane.border_title = self._left.title
                yield Static(left)
            with VerticalScroll(classes="compare-side panel") as pane:
                pane.border_title = self._right.title
                yield Static(right)
        yield AppFooter()

    def action_back(self) -> None:
        self.dismiss()


def _render(left: CompareSide, right: CompareSide) -> tuple[Content, Content, int]:
    """Both sides as text, section by section, and how many pieces differ."""
    left_sections, right_sections = dict(left.sections), dict(right.sections)
    headings = [*left_sections, *(h for h in right_sections if h not in left_sections)]
    differences = 0
    left_parts: list[Content] = []
    right_parts: list[Content] = []
    for heading in headings:
        a, b = left_sections.get(heading, ""), right_sections.get(heading, "")
        a_pieces, b_pieces = word_diff(a, b)
        differences += sum(differs for _, differs in (*a_pieces, *b_pieces))
        for parts, pieces, style in (
            (left_parts, a_pieces, "$text-error on $error-muted"),
            (right_parts, b_pieces, "$text-success on $success-muted"),
        ):
            parts.append(Content.styled(heading, "bold $primary"))
            parts.append(_pieces(pieces, style))
            parts.append(Content(""))
    return Content("\n").join(left_parts), Content("\n").join(right_parts), differences


def _pieces(pieces: Pieces, style: str) -> Content:
    return Content.assemble(*((text, style) if differs else text for text, differs in pieces))
