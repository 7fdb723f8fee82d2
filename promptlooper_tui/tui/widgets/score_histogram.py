"""Recent scores as a histogram: one bar per tenth of [0, 1]."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉█"


class ScoreHistogram(Widget):
    """Horizontal bars, best scores at the top; each row: range, bar, count."""

    DEFAULT_CSS = """
    ScoreHistogram {
        height: auto;
        min-height: 10;
    }
    """

    counts: reactive[tuple[int, ...]] = reactive((0,) * 10)

    def render(self) -> Content:
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
