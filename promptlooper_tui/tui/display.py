"""How values read on screen: short, aligned, and the same on every screen."""

from __future__ import annotations

from rich.text import Text

from ..cli_output import format_config

__all__ = [
    "cost",
    "duration",
    "estimated_tokens",
    "format_config",
    "latency",
    "right",
    "score",
    "status_style",
    "tokens",
]

#: Theme variables for sweep and run states, so a status reads the same colour everywhere.
_STATUS_STYLES = {
    "running": "$accent",
    "paused": "$warning",
    "completed": "$success",
    "stopped": "$warning",
    "budget_exhausted": "$warning",
    "interrupted": "$warning",
    "failed": "$error",
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


def cost(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


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


def status_style(status: str | None) -> str:
    return _STATUS_STYLES.get(status or "", "$text-muted")


def right(text: str) -> Text:
    """A right-aligned table cell, for numbers."""
    return Text(text, justify="right")
