"""The call cache in the store: entries (one per LLM call, by key), the claims on calls in
flight, and the hit/miss counters.

Reads take the `Database`; writes return `Statement`s, so an entry and the release of its claim
commit together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from .database import Database, Statement

LOOKUP_ENTRIES = (
    "SELECT key, value, tokens_in, tokens_out FROM cache "
    "WHERE key IN (SELECT value FROM json_each(?)) AND created_at >= ?"
)
PROBE_KEYS = (
    "SELECT k.value AS key, c.value, c.tokens_in, c.tokens_out, "
    "l.owner, l.host, l.pid, l.expires_at FROM json_each(?) AS k "
    "LEFT JOIN cache AS c ON c.key = k.value AND c.created_at >= ? "
    "LEFT JOIN cache_claims AS l ON l.key = k.value"
)
SAVE_ENTRY = (
    "INSERT INTO cache (key, kind, value, tokens_in, tokens_out, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, "
    "value = excluded.value, tokens_in = excluded.tokens_in, "
    "tokens_out = excluded.tokens_out, created_at = excluded.created_at"
)
CLAIM_KEY = (
    "INSERT INTO cache_claims (key, owner, host, pid, expires_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, "
    "host = excluded.host, pid = excluded.pid, expires_at = excluded.expires_at "
    "WHERE cache_claims.expires_at < ? OR cache_claims.owner = excluded.owner"
)
PRUNE_CLAIMS = "DELETE FROM cache_claims WHERE expires_at < ?"
DROP_STALE_CLAIM = "DELETE FROM cache_claims WHERE key = ? AND owner = ? AND expires_at = ?"
RELEASE_CLAIM = "DELETE FROM cache_claims WHERE key = ? AND owner = ?"
RELEASE_CLAIMS = (
    "DELETE FROM cache_claims WHERE owner = ? AND key IN (SELECT value FROM json_each(?))"
)
RENEW_CLAIMS = "UPDATE cache_claims SET expires_at = ? WHERE owner = ?"
CACHE_STATS = (
    "SELECT (SELECT count(*) FROM cache) AS entries, "
    "(SELECT coalesce(sum(length(value)) + sum(length(key)), 0) FROM cache) AS bytes, "
    "hits, misses FROM cache_counters WHERE id = 1"
)
COUNT_ENTRIES = "SELECT count(*) AS n FROM cache"
CLEAR_ENTRIES = "DELETE FROM cache"
CLEAR_COUNTERS = "UPDATE cache_counters SET hits = 0, misses = 0 WHERE id = 1"


async def lookup_entries(db: Database, keys: Sequence[str], since: str) -> list[sqlite3.Row]:
    """The stored entries among `keys` created at or after `since`: key, value (JSON),
    tokens_in, tokens_out."""
    return await db.fetchall(LOOKUP_ENTRIES, (json.dumps(keys), since))


async def probe_keys(db: Database, keys: Sequence[str], since: str) -> list[sqlite3.Row]:
    """One row per key: its entry (value NULL when missing or older than `since`) and its
    claim (owner NULL when unclaimed): key, value, tokens_in, tokens_out, owner, host, pid,
    expires_at."""
    return await db.fetchall(PROBE_KEYS, (json.dumps(keys), since))


def save_entry_statement(
    key: str, kind: str, value: str, tokens_in: int, tokens_out: int, created_at: str
) -> Statement:
    """Store (or replace) an entry; `value` is its JSON."""
    return (SAVE_ENTRY, (key, kind, value, tokens_in, tokens_out, created_at))


def claim_key_statements(
    key: str, owner: str, host: str, pid: int, *, now: float, lease_s: float, prune: bool
) -> list[Statement]:
    """Claim `key` for `owner` unless another owner holds a claim that has not expired; with
    `prune`, claims that expired (left by processes long gone) are removed too."""
    statements: list[Statement] = [(CLAIM_KEY, (key, owner, host, pid, now + lease_s, now))]
    if prune:
        statements.append((PRUNE_CLAIMS, (now,)))
    return statements


def drop_stale_claim_statement(key: str, owner: str, expires_at: float) -> Statement:
    """Remove a stale claim, unless its owner renewed or replaced it meanwhile."""
    return (DROP_STALE_CLAIM, (key, owner, expires_at))


def release_claim_statement(key: str, owner: str) -> Statement:
    return (RELEASE_CLAIM, (key, owner))


def release_claims_statement(keys: Sequence[str], owner: str) -> Statement:
    return (RELEASE_CLAIMS, (owner, json.dumps(list(keys))))


def renew_claims_statement(owner: str, expires_at: float) -> Statement:
    return (RENEW_CLAIMS, (expires_at, owner))


async def cache_stats(db: Database) -> sqlite3.Row:
    """entries, bytes, hits and misses of the cache."""
    row = await db.fetchone(CACHE_STATS)
    assert row is not None, "the migrations create the counters' row"
    return row


async def count_entries(db: Database) -> int:
    row = await db.fetchone(COUNT_ENTRIES)
    return int(row["n"]) if row else 0


def clear_statements() -> list[Statement]:
    """Every entry removed and the counters reset."""
    return [(CLEAR_ENTRIES, ()), (CLEAR_COUNTERS, ())]
