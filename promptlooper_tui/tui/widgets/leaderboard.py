"""The leaderboard: configs ranked by score with their 95% confidence interval."""

from __future__ import annotations

import json

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ...domain.records import LeaderboardEntry
from .. import display
from .cells import muted, themed

#: Characters of the config column before it is cut with "…".
CONFIG_WIDTH = 40


def config_key(entry: LeaderboardEntry) -> str:
    return json.dumps(entry.config, sort_keys=True)


class LeaderboardTable(DataTable[object]):
    """Re-ranked by `show(entries)`; the marks (and a cursor moved off the top row) follow
    their configs."""

    BINDINGS = [
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="leaderboard.mark",
            tooltip="Mark configs to compare (c)",
        )
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.entries: list[LeaderboardEntry] = []
        #: Marked configs, by config key, in the order they were marked.
        self.marked: list[str] = []

    def on_mount(self) -> None:
        self.add_column("#", key="rank")
        self.add_column("config", key="config")
        self.add_column("score", key="score")
        self.add_column("95% CI", key="ci")
        self.add_column("n", key="n")
        self.add_column("vs #1", key="tied")
        self.add_column("tokens", key="tokens")
        self.add_column("p50", key="p50")

    def show(self, entries: list[LeaderboardEntry]) -> None:
        # On the top row the cursor stays with the leader, whoever it is; moved below it, it
        # follows its config as the ranking changes.
        keep = self.highlighted() if self.cursor_row > 0 else None
        self.entries = entries
        self.clear()
        for entry in entries:
            key = config_key(entry)
            config = display.format_config(entry.config)
            if len(config) > CONFIG_WIDTH:
                config = config[: CONFIG_WIDTH - 1] + "…"
            mark = "●" if key in self.marked else " "
            if entry.rank == 1:
                tied = themed(self, "leader", "success")
            else:
                tied = Text("≈ tied") if entry.tied_with_leader else muted("worse")
            self.add_row(
                f"{mark}{entry.rank}",
                muted(config) if entry.dropped else config,
                display.right(display.score(entry.score)),
                f"{entry.ci_low:.2f}–{entry.ci_high:.2f}",
                display.right(str(entry.n)),
                tied,
                display.right(display.tokens(entry.tokens)),
                display.right(display.latency(entry.p50_latency_ms)),
                key=key,
            )
        if keep is not None and config_key(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(config_key(keep)), animate=False)

    def highlighted(self) -> LeaderboardEntry | None:
        if not self.entries or not 0 <= self.cursor_row < len(self.entries):
            return None
        return self.entries[self.cursor_row]

    def marked_entries(self) -> list[LeaderboardEntry]:
        by_key = {config_key(e): e for e in self.entries}
        return [by_key[k] for k in self.marked if k in by_key]

    def action_toggle_mark(self) -> None:
        entry = self.highlighted()
        if entry is None:
            return
        key = config_key(entry)
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked = [*self.marked, key][-2:]
        self.show(self.entries)
