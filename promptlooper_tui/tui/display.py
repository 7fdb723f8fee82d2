"""How values read on screen: short, aligned, and the same on every screen."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

__all__ = [
    "cost",
    "duration",
    "estimated_tokens",
    "latency",
    "pricing",
    "right",
    "score",
    "status_colour",
    "status_style",
    "tokens",
]

#: Theme colours for sweep and run states, so a status reads the same colour everywhere.
_STATUS_COLOURS = {
    "running": "accent",
    "paused": "warning",
    "completed": "success",
    "stopped": "warning",
    "budget_exhausted": "warning",
    "interrupted": "warning",
    "failed": "error",
}


def tokens(count: int) -> str:
    """1234 -> '1,234'; 123456 -> '123.5k'; 12345678 -> '12.3M'."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 100_000:
        return f"{count / 1000:.1f}k"
    return f"{count:,}"


def estimated_tokens(count: int) -> str:
    """A plan's token estimate, an upper bound (every call spends its max_tokens): '≤12.3k';
    '0' when every call is cached."""
    return f"≤{tokens(count)}" if count else "0"


def cost(value: float | None) -> str:
    """'unpriced' when a model has no price (None), never a false $0."""
    if value is None:
        return "unpriced"
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def pricing(prices: Mapping[str, tuple[float, float]]) -> str:
    """Prices per million input/output tokens as `endpoints list` shows them:
    'gpt-x=0.15/0.6, *=1/2'; a dash when none is set."""
    return ", ".join(f"{model}={i:g}/{o:g}" for model, (i, o) in prices.items()) or "–"


def score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def latency(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_colour(status: str | None) -> str | None:
    """The theme colour of a state ("success"...); None for no state or an unknown one."""
    return _STATUS_COLOURS.get(status or "")


def status_style(status: str | None) -> str:
    """A state's colour as a Content style ("$success"...)."""
    colour = status_colour(status)
    return f"${colour}" if colour else "$text-muted"


def right(text: str) -> Text:
    """A right-aligned table cell, for numbers."""
    return Text(text, justify="right")
