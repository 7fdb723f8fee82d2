"""Stored endpoints: their URL, key (encrypted) or key variable, prices and request limits."""

from __future__ import annotations

import sqlite3
from typing import Any

from .database import Database, Statement

#: Insert, or replace the endpoint of that name. The last parameter keeps the stored key.
UPSERT = (
    "INSERT INTO endpoints (name, base_url, api_key_env, api_key_encrypted, pricing, "
    "created_at, max_response_mb, deadline_s, idle_timeout_s, rate_limit_wait_s) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
    "base_url = excluded.base_url, api_key_env = excluded.api_key_env, "
    "api_key_encrypted = CASE WHEN ? THEN endpoints.api_key_encrypted "
    "ELSE excluded.api_key_encrypted END, pricing = excluded.pricing, "
    "max_response_mb = excluded.max_response_mb, deadline_s = excluded.deadline_s, "
    "idle_timeout_s = excluded.idle_timeout_s, "
    "rate_limit_wait_s = excluded.rate_limit_wait_s"
)
LIST = "SELECT * FROM endpoints ORDER BY name"
BY_NAME = "SELECT * FROM endpoints WHERE name = ?"
DELETE = "DELETE FROM endpoints WHERE name = ?"


def save_statement(
    name: str,
    base_url: str,
    *,
    api_key_env: str | None,
    api_key_encrypted: bytes | None,
    pricing_json: str,
    created_at: str,
    limits: list[Any],
    keep_stored_key: bool,
) -> Statement:
    """Store an endpoint, replacing one of that name; with `keep_stored_key` a replaced one
    keeps its encrypted key. `limits`: max_response_mb, deadline_s, idle_timeout_s and
    rate_limit_wait_s (None: the default)."""
    return UPSERT, (
        name,
        base_url,
        api_key_env,
        api_key_encrypted,
        pricing_json,
        created_at,
        *limits,
        keep_stored_key,
    )


def delete_statement(name: str) -> Statement:
    return DELETE, (name,)


async def list_endpoints(db: Database) -> list[sqlite3.Row]:
    return await db.fetchall(LIST)


async def endpoint(db: Database, name: str) -> sqlite3.Row | None:
    return await db.fetchone(BY_NAME, (name,))
