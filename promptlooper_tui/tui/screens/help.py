"""`?` / F1: the keys of the screen underneath, what they do, and their ids for keymaps."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Markdown, Static

from ..widgets.app_footer import AppFooter
from ..widgets.cells import clipped
from ..widgets.fitted_table import ColumnSpec, FittedTable, Row
from .base import Dialog

_GENERAL = """\
**Everywhere:** `F1`/`?` help · `F2` experiments · `F3` endpoints · `ctrl+p` command palette
(open an experiment, start a sweep, export, switch theme…) · `escape` back · `ctrl+q` quit.
Keys can be changed in `tui.json` in the home dir: `{"keymap": {"monitor.pause": "space"}}`.
"""


class KeysTable(FittedTable):
    """The keys; what they do is cut short (with "…") before their ids are."""

    COLUMNS = (
        ColumnSpec("key", "key"),
        ColumnSpec("does", "does", flexible=True),
        ColumnSpec("id", "id"),
    )


class HelpScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape,f1,question_mark,q", "close", "Close", key_display="esc", id="help.close"),
    ]

    def __init__(self, about: Screen[object]) -> None:
        super().__init__()
        self._about = about

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-panel"):
            title = getattr(self._about, "TITLE", None) or type(self._about).__name__
            yield Static(Content.from_markup("[b]$title[/b] — keys", title=title), id="help-title")
            if self._about.HELP:
                yield Markdown(self._about.HELP, id="help-about")
            yield KeysTable(id="help-keys", cursor=False)
            yield Markdown(_GENERAL, id="help-general")
        yield AppFooter(show_command_palette=False)

    def on_mount(self) -> None:
        rows: list[Row] = []
        seen: set[tuple[str, str]] = set()
        for active in self._about.active_bindings.values():
            binding = active.binding
            # Product keys carry an id; widgets' own keys (cursor moves...) are left out.
            if binding.id is None or binding.system or not binding.description:
                continue
            keys = binding.key_display or self.app.get_key_display(binding)
            if (keys, binding.description) in seen:
                continue
            seen.add((keys, binding.description))
            does = binding.description + (f" — {binding.tooltip}" if binding.tooltip else "")
            cells = {"key": keys, "does": clipped(does), "id": binding.id}
            rows.append((str(len(rows)), cells))
        self.query_one(KeysTable).set_rows(rows)

    def action_close(self) -> None:
        self.dismiss(None)
