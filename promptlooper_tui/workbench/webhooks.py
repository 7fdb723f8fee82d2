"""Webhooks: registering (URL and event types checked, the secret stored encrypted), listing
and removing them, and their delivery log. The dispatcher (`Services.webhooks`) delivers."""

from __future__ import annotations

import json
import uuid

from ..domain.errors import BadInput, NotFound
from ..domain.records import DeliveryRecord, WebhookRecord
from ..engine.webhooks import check_event_types, check_url, delivery_record, webhook_record
from ..store import webhooks as stored_webhooks
from ..store.database import Statement
from ..store.timestamps import now_iso
from .services import Services


class Webhooks:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def add_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> WebhookRecord:
        """See `Workbench.add_webhook`."""
        from ..engine.netguard import check_literal_host

        services = self._services
        url = check_url(url)
        check_literal_host(url, "webhook URL")
        types = check_event_types(events)
        if secret is not None and not secret.strip():
            raise BadInput("a webhook secret must not be empty")
        webhook_id = "wh_" + uuid.uuid4().hex[:10]

        def insert(encrypted: bytes | None) -> Statement:
            return stored_webhooks.insert_statement(
                webhook_id, url, json.dumps(types), encrypted, now_iso()
            )

        if secret:
            await services.store_secret.write_encrypted(secret, insert)
        else:
            await services.db.write([insert(None)])
        await services.webhooks.reload()
        return await self._webhook(webhook_id)

    async def list_webhooks(self) -> list[WebhookRecord]:
        rows = await stored_webhooks.list_webhooks(self._services.db)
        return [webhook_record(row) for row in rows]

    async def remove_webhook(self, webhook_id: str) -> None:
        await self._webhook(webhook_id)
        await self._services.db.write([stored_webhooks.delete_statement(webhook_id)])
        await self._services.webhooks.reload()

    async def webhook_deliveries(
        self, webhook_id: str | None = None, limit: int = 50
    ) -> list[DeliveryRecord]:
        if not 1 <= limit <= 10_000:
            raise BadInput(f"limit must be 1..10000, got {limit}")
        if webhook_id is not None:
            await self._webhook(webhook_id)
        rows = await stored_webhooks.latest_deliveries(self._services.db, limit, webhook_id)
        return [delivery_record(row) for row in rows]

    async def _webhook(self, webhook_id: str) -> WebhookRecord:
        row = await stored_webhooks.webhook(self._services.db, webhook_id)
        if row is None:
            raise NotFound(f"no webhook with id {webhook_id!r}")
        return webhook_record(row)
