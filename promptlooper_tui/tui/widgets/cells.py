"""Table cells in theme colours. DataTable draws its cells with Rich, which does not know
Textual's `$variables`, so the colour is looked up in the app's current theme."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from .. import display


def themed(widget: Widget, text: str, variable: str) -> Text:
    """`text` in the theme colour `variable` ("success", "error", "warning"...)."""
    return Text(text, style=widget.app.theme_variables.get(variable, ""), no_wrap=True)


def muted(text: str) -> Text:
    """Dimmed, and cut with "…" in a column too narrow for it."""
    return Text(text, style="dim", no_wrap=True, overflow="ellipsis")


def clipped(text: str) -> Text:
    """Cut with "…" in a column too narrow for it."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def status(widget: Widget, state: str | None) -> Text:
    """A sweep or run state ("budget exhausted"), in its theme colour."""
    text = (state or "–").replace("_", " ")
    colour = display.status_colour(state)
    return themed(widget, text, colour) if colour else muted(text)
