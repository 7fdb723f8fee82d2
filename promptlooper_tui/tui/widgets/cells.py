"""Table cells in theme colours. DataTable draws its cells with Rich, which does not know
Textual's `$variables`, so the colour is looked up in the app's current theme."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


def themed(widget: Widget, text: str, variable: str) -> Text:
    """`text` in the theme colour `variable` ("success", "error", "warning"...)."""
    return Text(text, style=widget.app.theme_variables.get(variable, ""), no_wrap=True)


def muted(text: str) -> Text:
    return Text(text, style="dim", no_wrap=True)
