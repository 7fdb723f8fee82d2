"""Events relayed between the processes sharing a store: each writes what its bus publishes,
and reads what the others wrote, in seq order (DESIGN §10). A row holds the events of one step
of a process's loop, as a JSON array: one insert for a step's many events."""

from __future__ import annotations

from collections.abc import Sequence

from .database import Database, Row, Statement

INSERT = "INSERT INTO events (origin, events, created_at) VALUES (?, ?, ?)"
LAST_SEQ = "SELECT coalesce(max(seq), 0) AS seq FROM events"
#: Every row's seq and origin (a reader tells the gaps from them), but the events only of the
#: rows written by others: a process's own rows cost it next to nothing to read back.
_COLUMNS = (
    "SELECT seq, origin, CASE WHEN origin = ? THEN NULL ELSE events END AS events FROM events"
)
AFTER = _COLUMNS + " WHERE seq > ? ORDER BY seq LIMIT ?"
PRUNE = "DELETE FROM events WHERE seq <= ?"
#: Most seqs asked for in one query of `among`.
_SEQS_PER_QUERY = 500


def insert_statement(origin: str, events_json: str, created_at: str) -> Statement:
    """A row of `origin`'s events (`events_json`: a JSON array of them)."""
    return INSERT, (origin, events_json, created_at)


async def last_seq(db: Database) -> int:
    """The seq of the newest event (0: none)."""
    row = await db.fetchone(LAST_SEQ)
    return int(row["seq"]) if row is not None else 0


async def after(db: Database, seq: int, reader: str, limit: int) -> list[Row]:
    """Up to `limit` rows after `seq`, in seq order; `events` is None in those `reader` wrote."""
    return await db.fetchall(AFTER, (reader, seq, limit))


async def among(db: Database, seqs: Sequence[int], reader: str) -> list[Row]:
    """The rows of `seqs` that exist now (the rest are still being written, or never will
    be), in seq order; `events` is None in those `reader` wrote."""
    rows: list[Row] = []
    for start in range(0, len(seqs), _SEQS_PER_QUERY):
        chunk = seqs[start : start + _SEQS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        rows += await db.fetchall(
            f"{_COLUMNS} WHERE seq IN ({marks}) ORDER BY seq", (reader, *chunk)
        )
    return rows


def prune_statement(through_seq: int) -> Statement:
    """Forget the events up to `through_seq` (old ones: every reader has read them)."""
    return PRUNE, (through_seq,)
