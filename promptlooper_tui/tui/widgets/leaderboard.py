"""The leaderboard: configs ranked by score with their 95% confidence interval."""

from __future__ import annotations

import json

from rich.text import Text
from textual.binding import Binding

from ...domain.config_text import compact_configs, race_text
from ...domain.records import LeaderboardEntry
from .. import display
from .cells import clipped, muted, themed
from .fitted_table import Cell, ColumnSpec, FittedTable, Row


def config_key(entry: LeaderboardEntry) -> str:
    return json.dumps(entry.config, sort_keys=True)


class LeaderboardTable(FittedTable):
    """Re-ranked by `show(entries)`; the marks (and a cursor moved off the top row) follow
    their configs. When narrow, latency and tokens make room for the config, then it is cut:
    score, interval, n and the comparison with the leader always stay. In a race, a config it
    stopped running says why there ("out at 18": eliminated after 18 items; "≈ #1 at 24":
    equivalent to the leader)."""

    COLUMNS = (
        ColumnSpec("rank", "#"),
        ColumnSpec("config", "config", flexible=True),
        ColumnSpec("score", "score"),
        ColumnSpec("ci", "95% CI"),
        ColumnSpec("n", "n"),
        ColumnSpec("tied", "vs #1"),
        ColumnSpec("tokens", "tokens", drop=2),
        ColumnSpec("p50", "p50", drop=1),
    )

    #: An evolve sweep's: the mean on the training items beside the one on the held-out items
    #: (where the winner is chosen), for the score over both.
    EVOLVE_COLUMNS = (
        *COLUMNS[:2],
        ColumnSpec("score", "train"),
        ColumnSpec("held", "held-out"),
        *COLUMNS[3:],
    )

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
        super().__init__(id=id)
        self.entries: list[LeaderboardEntry] = []
        #: Marked configs, by config key, in the order they were marked.
        self.marked: list[str] = []

    def show(self, entries: list[LeaderboardEntry]) -> None:
        # On the top row the cursor stays with the leader, whoever it is; moved below it, it
        # follows its config as the ranking changes.
        keep = self.highlighted() if self.cursor_row > 0 else None
        self.entries = entries
        evolve = any(entry.holdout_n is not None for entry in entries)
        self.set_columns(self.EVOLVE_COLUMNS if evolve else self.COLUMNS)
        configs = compact_configs([entry.config for entry in entries])
        self.set_rows(
            self._row(entry, config) for entry, config in zip(entries, configs, strict=True)
        )
        if keep is not None and config_key(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(config_key(keep)), animate=False)

    def _row(self, entry: LeaderboardEntry, config: str) -> Row:
        key = config_key(entry)
        if entry.rank == 1:
            tied = themed(self, "leader", "success")
        elif entry.decision is not None and entry.decision.state != "alive":
            # What the race decided: "out at 18", "≈ #1 at 24".
            tied = muted(race_text(entry.decision))
        else:
            tied = Text("≈ tied") if entry.tied_with_leader else muted("worse")
        cells: dict[str, Cell] = {
            "rank": f"{'●' if key in self.marked else ' '}{entry.rank}",
            "config": muted(config) if entry.dropped else clipped(config),
            "score": display.right(display.score(entry.score)),
            "ci": f"{entry.ci_low:.2f}–{entry.ci_high:.2f}",
            "n": display.right(str(entry.n)),
            "tied": tied,
            "tokens": display.right(display.tokens(entry.tokens)),
            "p50": display.right(display.latency(entry.p50_latency_ms)),
        }
        if entry.holdout_n is not None:  # an evolve sweep: its `score` column is "train"
            cells["score"] = display.right(_or_dash(entry.train_score))
            cells["held"] = display.right(_or_dash(entry.holdout_score))
        return key, cells

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


def _or_dash(score: float | None) -> str:
    return "–" if score is None else display.score(score)
