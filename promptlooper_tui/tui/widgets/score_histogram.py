"""Recent scores as a histogram: one labelled bar per tenth of [0, 1], or, where there is no
room for every bar, a labelled summary of the same scores."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def score_summary(scores: Sequence[float]) -> list[tuple[str, str]]:
    """(label, value) lines that sum up scores: how many, mean, median, best and worst."""
    if not scores:
        return [("scores", "none yet")]
    return [
        ("scores", f"{len(scores):,}"),
        ("mean", f"{statistics.fmean(scores):.3f}"),
        ("median", f"{statistics.median(scores):.3f}"),
        ("best", f"{max(scores):.3f}"),
        ("worst", f"{min(scores):.3f}"),
    ]


def summary_line(scores: Sequence[float]) -> str:
    """The summary on one line ("scores 68 · mean 0.662 · ..."), for a panel's title."""
    return " · ".join(f"{label} {value}" for label, value in score_summary(scores))


class ScoreHistogram(Widget):
    """Horizontal bars, best scores at the top; each row: range, bar, count. Shorter than the
    bins, it shows `score_summary` instead: never a bar without its range."""

    DEFAULT_CSS = """
    ScoreHistogram {
        height: auto;
        min-height: 5;
    }
    """

    counts: reactive[tuple[int, ...]] = reactive((0,) * 10)
    scores: reactive[tuple[float, ...]] = reactive(())

    def show(self, counts: Sequence[int], scores: Sequence[float]) -> None:
        self.counts, self.scores = tuple(counts), tuple(scores)

    def render(self) -> Content:
        if not any(self.counts):
            return Content.styled("No scores yet.", "$text-muted")
        if self.size.height < len(self.counts):
            return Content("\n").join(
                Content.assemble((f"{label:<7}", "$text-muted"), (value, "bold"))
                for label, value in score_summary(self.scores)
            )
        return self._bars()

    def _bars(self) -> Content:
        counts = self.counts
        bins = len(counts)
        peak = max(counts) or 1
        label_width, count_width = 7, max(len(str(peak)), 1)
        bar_width = max(1, self.size.width - label_width - count_width - 2)
        lines = []
        for index in reversed(range(bins)):
            low = index / bins
            eighths = round(counts[index] / peak * bar_width * 8)
            full, part = divmod(eighths, 8)
            bar = "█" * full + (_EIGHTHS[part] if part else "")
            lines.append(
                Content.assemble(
                    (f"{low:.1f}–{low + 1 / bins:.1f}".ljust(label_width), "$text-muted"),
                    (bar.ljust(bar_width), "$accent"),
                    " ",
                    (str(counts[index]).rjust(count_width), "$text-muted"),
                )
            )
        return Content("\n").join(lines)
