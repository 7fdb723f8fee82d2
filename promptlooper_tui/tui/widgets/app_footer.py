"""The footer of every screen and dialog: its keys on the left, and help, quit and the command
palette pinned on the right, so a narrow terminal cuts the screen's keys, never those."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Actions whose keys are always shown (the app's; dialogs bind them as "app.help"...).
PINNED_ACTIONS = frozenset({"help", "request_quit", "app.help", "app.request_quit"})


class PinnedKeys(HorizontalGroup):
    """Help, quit and the palette, on the right of the footer."""


class AppFooter(Footer):
    DEFAULT_CSS = """
    AppFooter PinnedKeys {
        dock: right;
        width: auto;
        height: 1;
        border-left: vkey $foreground 20%;
        background: $footer-background;
    }
    AppFooter PinnedKeys FooterKey.-command-palette {
        dock: none;
        border-left: none;
    }
    """

    def compose(self) -> ComposeResult:
        pinned: list[Widget] = []
        palette: list[Widget] = []
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.has_class("-command-palette"):
                palette.append(widget)
            elif isinstance(widget, FooterKey) and widget.action in PINNED_ACTIONS:
                pinned.append(widget)
            else:
                yield widget
        if pinned or palette:
            pinned.sort(key=lambda key: key.action.endswith("request_quit"))
            yield PinnedKeys(*pinned, *palette)
