"""Experiments and their versions: claiming names, storing versions, finding and listing them."""

from __future__ import annotations

import sqlite3

from .database import Database, Statement

CLAIM_NAME = (
    "INSERT INTO experiments (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"
)
ID_BY_NAME = "SELECT id FROM experiments WHERE name = ?"
ID_BY_REF = "SELECT id FROM experiments WHERE id = ? OR name = ?"
NAMES = "SELECT name FROM experiments"
DELETE = "DELETE FROM experiments WHERE id = ?"
LATEST_VERSION = (
    "SELECT version, content_hash FROM experiment_versions WHERE experiment_id = ? "
    "ORDER BY version DESC LIMIT 1"
)
INSERT_VERSION = (
    "INSERT INTO experiment_versions (experiment_id, version, spec_yaml, spec_json, "
    "content_hash, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
VERSION_HASH = (
    "SELECT content_hash FROM experiment_versions WHERE experiment_id = ? AND version = ?"
)
VERSION_TEXT = (
    "SELECT spec_yaml, spec_json, source FROM experiment_versions "
    "WHERE experiment_id = ? AND version = ?"
)
SPEC_JSON = "SELECT spec_json FROM experiment_versions WHERE experiment_id = ? AND version = ?"
MAX_VERSION = "SELECT max(version) AS version FROM experiment_versions WHERE experiment_id = ?"
#: Each experiment with its latest version, its latest sweep, its run count and its tokens.
SUMMARIES = """
SELECT e.id, e.name, e.created_at,
       v.version, json_extract(latest.spec_json, '$.description') AS description, v.versions,
       s.id AS sweep_id, s.status AS sweep_status, s.owner_pid,
       c.host AS coordinator_host, c.expires_at AS coordinated_until,
       (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id) AS runs,
       (SELECT coalesce(sum(tokens_in + tokens_out), 0) FROM sweeps WHERE experiment_id = e.id)
            AS tokens
FROM experiments e
JOIN (SELECT experiment_id, max(version) AS version, count(*) AS versions
      FROM experiment_versions GROUP BY experiment_id) v ON v.experiment_id = e.id
JOIN experiment_versions latest ON latest.experiment_id = e.id AND latest.version = v.version
LEFT JOIN sweeps s ON s.id = (SELECT id FROM sweeps WHERE experiment_id = e.id
                             ORDER BY created_at DESC, rowid DESC LIMIT 1)
LEFT JOIN sweep_coordinators c ON c.sweep_id = s.id
"""
LIST_SUMMARIES = SUMMARIES + " ORDER BY e.name"
SUMMARY_BY_ID = SUMMARIES + " WHERE e.id = ?"


def claim_name_statement(experiment_id: str, name: str, created_at: str) -> Statement:
    """Create the experiment `name` unless it exists (then nothing happens)."""
    return CLAIM_NAME, (experiment_id, name, created_at)


def version_statement(
    experiment_id: str,
    version: int,
    *,
    spec_yaml: str,
    spec_json: str,
    content_hash: str,
    source: str,
    created_at: str,
) -> Statement:
    """Store a version unless that number is taken (then nothing happens)."""
    return INSERT_VERSION, (
        experiment_id,
        version,
        spec_yaml,
        spec_json,
        content_hash,
        source,
        created_at,
    )


def delete_statement(experiment_id: str) -> Statement:
    """Delete an experiment with its versions, sweeps, runs and scores (cascading)."""
    return DELETE, (experiment_id,)


async def experiment_id_by_name(db: Database, name: str) -> str | None:
    row = await db.fetchone(ID_BY_NAME, (name,))
    return None if row is None else str(row["id"])


async def find_experiment_id(db: Database, ref: str) -> str | None:
    """The id of the experiment whose id or name is `ref`."""
    row = await db.fetchone(ID_BY_REF, (ref, ref))
    return None if row is None else str(row["id"])


async def experiment_names(db: Database) -> set[str]:
    return {row["name"] for row in await db.fetchall(NAMES)}


async def latest_version(db: Database, experiment_id: str) -> sqlite3.Row | None:
    """The latest version's `version` and `content_hash`."""
    return await db.fetchone(LATEST_VERSION, (experiment_id,))


async def latest_version_number(db: Database, experiment_id: str) -> int | None:
    row = await db.fetchone(MAX_VERSION, (experiment_id,))
    return None if row is None or row["version"] is None else int(row["version"])


async def version_hash(db: Database, experiment_id: str, version: int) -> str | None:
    row = await db.fetchone(VERSION_HASH, (experiment_id, version))
    return None if row is None else str(row["content_hash"])


async def version_text(db: Database, experiment_id: str, version: int) -> sqlite3.Row | None:
    """A version's `spec_yaml`, `spec_json` and `source`."""
    return await db.fetchone(VERSION_TEXT, (experiment_id, version))


async def spec_json(db: Database, experiment_id: str, version: int) -> str | None:
    row = await db.fetchone(SPEC_JSON, (experiment_id, version))
    return None if row is None else str(row["spec_json"])


async def list_summaries(db: Database) -> list[sqlite3.Row]:
    """Every experiment's summary row (see SUMMARIES), by name."""
    return await db.fetchall(LIST_SUMMARIES)


async def summary(db: Database, experiment_id: str) -> sqlite3.Row | None:
    return await db.fetchone(SUMMARY_BY_ID, (experiment_id,))
