"""Webhooks and their delivery log (one row per attempt)."""

from __future__ import annotations

from .database import Database, Row, Statement

INSERT = (
    "INSERT INTO webhooks (id, url, events, secret_encrypted, created_at) VALUES (?, ?, ?, ?, ?)"
)
LIST = "SELECT * FROM webhooks ORDER BY created_at, id"
BY_ID = "SELECT * FROM webhooks WHERE id = ?"
DELETE = "DELETE FROM webhooks WHERE id = ?"
TARGETS = "SELECT id, url, events, secret_encrypted FROM webhooks"
RECORD_ATTEMPT = (
    "INSERT INTO webhook_deliveries (webhook_id, event_seq, event_type, attempt, "
    "status_code, latency_ms, error, delivered, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LATEST_DELIVERIES = "SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT ?"
LATEST_DELIVERIES_OF = (
    "SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?"
)


def insert_statement(
    webhook_id: str, url: str, events_json: str, secret_encrypted: bytes | None, created_at: str
) -> Statement:
    return INSERT, (webhook_id, url, events_json, secret_encrypted, created_at)


def delete_statement(webhook_id: str) -> Statement:
    """Delete a webhook with its delivery log."""
    return DELETE, (webhook_id,)


def attempt_statement(
    webhook_id: str,
    event_seq: int,
    event_type: str,
    attempt: int,
    *,
    status_code: int | None,
    latency_ms: float,
    error: str | None,
    delivered: bool,
    created_at: str,
) -> Statement:
    """One delivery attempt for the log."""
    return RECORD_ATTEMPT, (
        webhook_id,
        event_seq,
        event_type,
        attempt,
        status_code,
        latency_ms,
        error,
        int(delivered),
        created_at,
    )


async def list_webhooks(db: Database) -> list[Row]:
    return await db.fetchall(LIST)


async def webhook(db: Database, webhook_id: str) -> Row | None:
    return await db.fetchone(BY_ID, (webhook_id,))


async def delivery_targets(db: Database) -> list[Row]:
    """What the dispatcher needs of every webhook: id, url, events, secret_encrypted."""
    return await db.fetchall(TARGETS)


async def latest_deliveries(db: Database, limit: int, webhook_id: str | None = None) -> list[Row]:
    """The latest delivery attempts, newest first: of one webhook, or of all."""
    if webhook_id is None:
        return await db.fetchall(LATEST_DELIVERIES, (limit,))
    return await db.fetchall(LATEST_DELIVERIES_OF, (webhook_id, limit))
