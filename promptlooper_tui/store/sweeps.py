"""Sweeps: recording one, finding and listing them with their run counts, and the status changes
the Workbench makes itself (the runner records the rest as it goes)."""

from __future__ import annotations

import sqlite3

from .database import Database, Statement

INSERT = (
    "INSERT INTO sweeps (id, experiment_id, experiment_version, settings, status, "
    "owner_pid, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)"
)
EXISTS = "SELECT id FROM sweeps WHERE id = ?"
LATEST_OF_EXPERIMENT = (
    "SELECT id FROM sweeps WHERE experiment_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1"
)
#: Who coordinates a sweep now, as the rows that tell its status carry it: a sweep whose
#: coordinator runs on another machine is alive while its lease is.
_COORDINATOR = (
    "c.host AS coordinator_host, c.expires_at AS coordinated_until FROM sweeps s "
    "JOIN experiments e ON e.id = s.experiment_id "
    "LEFT JOIN sweep_coordinators c ON c.sweep_id = s.id"
)
WITH_EXPERIMENT_NAME = "SELECT s.*, e.name, " + _COORDINATOR + " WHERE s.id = ?"
VERSION_OF = "SELECT experiment_id, experiment_version FROM sweeps WHERE id = ?"
IDS_OF_VERSION = (
    "SELECT id FROM sweeps WHERE experiment_id = ? AND experiment_version = ? "
    "ORDER BY created_at, rowid"
)
SETTINGS = "SELECT settings FROM sweeps WHERE id = ?"
TOTALS = (
    "SELECT tokens_in, tokens_out, cost, responses_429, calls, cache_hits FROM sweeps WHERE id = ?"
)
CONFIG_COUNTS = (
    "SELECT count(*) AS tried, coalesce(sum(dropped), 0) AS dropped FROM configs WHERE sweep_id = ?"
)
# Every config a race stopped running, with the config it was compared with (its leader then).
RACE_DECISIONS = (
    "SELECT c.params, c.decision, l.params AS against FROM configs c "
    "LEFT JOIN configs l ON l.sweep_id = c.sweep_id "
    "AND l.key = json_extract(c.decision, '$.against') "
    "WHERE c.sweep_id = ? AND c.decision IS NOT NULL ORDER BY c.id"
)
MARK_RESUMED = (
    "UPDATE sweeps SET status = 'running', finished_at = NULL, owner_pid = ? WHERE id = ?"
)
RELEASE_PAUSED = "UPDATE sweeps SET owner_pid = NULL WHERE id = ? AND status = 'paused'"
#: Another process's front-end pauses or resumes a sweep: the status it asked for, unless
#: the sweep has moved on (ended, or already so) meanwhile.
ASKED_STATUS = "UPDATE sweeps SET status = ?, updated_at = ? WHERE id = ? AND status = ?"
#: Each sweep with its experiment's name and its completed and failed runs.
SUMMARIES = (
    """
SELECT s.*, e.name,
       (SELECT count(*) FROM runs r WHERE r.sweep_id = s.id AND r.status = 'completed')
           AS completed,
       (SELECT count(*) FROM runs r WHERE r.sweep_id = s.id AND r.status = 'failed')
           AS failed,
"""
    + _COORDINATOR
)
LIST_SUMMARIES = SUMMARIES + " ORDER BY s.created_at DESC, s.rowid DESC"
LIST_SUMMARIES_OF_EXPERIMENT = (
    SUMMARIES + " WHERE s.experiment_id = ? ORDER BY s.created_at DESC, s.rowid DESC"
)
SUMMARY_BY_ID = SUMMARIES + " WHERE s.id = ?"


def insert_statement(
    sweep_id: str,
    experiment_id: str,
    experiment_version: int,
    settings_json: str,
    owner_pid: int,
    created_at: str,
) -> Statement:
    """A new sweep, `running` and owned by `owner_pid` until its runner says otherwise."""
    return INSERT, (
        sweep_id,
        experiment_id,
        experiment_version,
        settings_json,
        owner_pid,
        created_at,
        created_at,
    )


def resumed_statement(sweep_id: str, owner_pid: int) -> Statement:
    """Mark a sweep running again, owned by `owner_pid`."""
    return MARK_RESUMED, (owner_pid, sweep_id)


def release_paused_statement(sweep_id: str) -> Statement:
    """A paused sweep owned by nobody: paused by a person, not interrupted."""
    return RELEASE_PAUSED, (sweep_id,)


def asked_status_statement(sweep_id: str, was: str, status: str, now: str) -> Statement:
    """The sweep goes from `was` to `status`, as a front-end asked of the process running it
    (which records the same once it has done so)."""
    return ASKED_STATUS, (status, now, sweep_id, was)


async def sweep_exists(db: Database, sweep_id: str) -> bool:
    return await db.fetchone(EXISTS, (sweep_id,)) is not None


async def latest_sweep_id(db: Database, experiment_id: str) -> str | None:
    row = await db.fetchone(LATEST_OF_EXPERIMENT, (experiment_id,))
    return None if row is None else str(row["id"])


async def sweep_with_experiment_name(db: Database, sweep_id: str) -> sqlite3.Row | None:
    """The sweep's row plus its experiment's `name`."""
    return await db.fetchone(WITH_EXPERIMENT_NAME, (sweep_id,))


async def sweep_version(db: Database, sweep_id: str) -> tuple[str, int] | None:
    """(experiment id, experiment version) of a sweep."""
    row = await db.fetchone(VERSION_OF, (sweep_id,))
    return None if row is None else (row["experiment_id"], row["experiment_version"])


async def sweep_ids_of_version(db: Database, experiment_id: str, version: int) -> list[str]:
    """The sweeps of one experiment version, oldest first."""
    return [row["id"] for row in await db.fetchall(IDS_OF_VERSION, (experiment_id, version))]


async def sweep_settings_json(db: Database, sweep_id: str) -> str | None:
    row = await db.fetchone(SETTINGS, (sweep_id,))
    return None if row is None else str(row["settings"])


async def sweep_totals(db: Database, sweep_id: str) -> sqlite3.Row | None:
    """What a sweep spent over all its resumes: tokens_in, tokens_out, cost, responses_429,
    calls, cache_hits."""
    return await db.fetchone(TOTALS, (sweep_id,))


async def config_counts(db: Database, sweep_id: str) -> sqlite3.Row | None:
    """How many configs a sweep `tried` and how many racing `dropped`."""
    return await db.fetchone(CONFIG_COUNTS, (sweep_id,))


async def race_decisions(db: Database, sweep_id: str) -> list[sqlite3.Row]:
    """The configs a race stopped running, in proposal order: `params` and `against` (the
    leader's params) as JSON, and the `decision` (JSON: state, at_n, against, p)."""
    return await db.fetchall(RACE_DECISIONS, (sweep_id,))


async def list_summaries(db: Database, experiment_id: str | None = None) -> list[sqlite3.Row]:
    """Sweep summary rows (see SUMMARIES), newest first: of one experiment, or of all."""
    if experiment_id is None:
        return await db.fetchall(LIST_SUMMARIES)
    return await db.fetchall(LIST_SUMMARIES_OF_EXPERIMENT, (experiment_id,))


async def summary(db: Database, sweep_id: str) -> sqlite3.Row | None:
    return await db.fetchone(SUMMARY_BY_ID, (sweep_id,))
