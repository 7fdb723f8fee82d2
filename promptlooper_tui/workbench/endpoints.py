"""Endpoints: adding (every field checked, for every front-end), listing, removing and
testing stored endpoints, and the built-in simulated one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..domain.errors import BadInput, NotFound
from ..domain.records import ConnectionResult, EndpointRecord
from ..store import endpoints as stored_endpoints
from ..store.database import Statement
from ..store.timestamps import now_iso
from .services import Services

if TYPE_CHECKING:
    from ..simulated.options import SimulatorOptions


class Endpoints:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def add_endpoint(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        pricing: dict[str, tuple[float, float]] | None = None,
        keep_api_key: bool = False,
        max_response_mb: float | None = None,
        deadline_s: float | None = None,
        idle_timeout_s: float | None = None,
        rate_limit_wait_s: float | None = None,
    ) -> EndpointRecord:
        """See `Workbench.add_endpoint`."""
        from ..engine.endpoints import (
            check_endpoint_name,
            check_key_env_name,
            check_limit,
            check_pricing,
        )
        from ..engine.netguard import check_base_url, check_literal_host, redact_url

        services = self._services
        check_endpoint_name(name)
        base_url = check_base_url(base_url)
        check_literal_host(base_url, "base_url")
        if api_key is not None and api_key_env is not None:
            raise BadInput("give the API key on stdin or by environment variable, not both")
        if api_key_env is not None:
            check_key_env_name(api_key_env)
            if not services.policy.may_read_key_env(api_key_env):
                raise BadInput(
                    f"api_key_env: API key variable {api_key_env!r} is not allowed for remote "
                    f"callers; the operator may allow it with `serve --allow-key-env "
                    f"{api_key_env}`"
                )
        prices = check_pricing(pricing or {})
        limits = [
            check_limit("max_response_mb", max_response_mb),
            check_limit("deadline_s", deadline_s),
            check_limit("idle_timeout_s", idle_timeout_s),
            check_limit("rate_limit_wait_s", rate_limit_wait_s),
        ]
        if "***@" in base_url:
            row = await stored_endpoints.endpoint(services.db, name)
            if row is not None and redact_url(row["base_url"]) == base_url:
                base_url = row["base_url"]

        def save(api_key_encrypted: bytes | None) -> Statement:
            return stored_endpoints.save_statement(
                name,
                base_url,
                api_key_env=api_key_env,
                api_key_encrypted=api_key_encrypted,
                pricing_json=json.dumps(prices),
                created_at=now_iso(),
                limits=limits,
                keep_stored_key=keep_api_key and api_key is None and api_key_env is None,
            )

        if api_key:
            await services.store_secret.write_encrypted(api_key, save, replaces_endpoint=name)
        else:
            await services.db.write([save(None)])
        return await self.get_endpoint(name)

    async def list_endpoints(self) -> list[EndpointRecord]:
        rows = await stored_endpoints.list_endpoints(self._services.db)
        return [_endpoint_record(row) for row in rows]

    async def get_endpoint(self, name: str) -> EndpointRecord:
        row = await stored_endpoints.endpoint(self._services.db, name)
        if row is None:
            raise NotFound(f"no endpoint named {name!r}")
        return _endpoint_record(row)

    async def remove_endpoint(self, name: str) -> None:
        await self.get_endpoint(name)
        await self._services.db.write([stored_endpoints.delete_statement(name)])

    async def test_endpoint(self, name: str) -> ConnectionResult:
        pool = self._services.endpoints
        client = await pool.client(await pool.resolve(name))
        report = await client.test_connection()
        return ConnectionResult(
            name=name,
            ok=report.ok,
            latency_ms=report.latency_ms,
            models=report.models,
            error=report.error,
        )

    async def start_simulated_endpoint(self, options: SimulatorOptions) -> str:
        return (await self._services.endpoints.start_simulated(options)).base_url


def _endpoint_record(row: Any) -> EndpointRecord:
    """What may be shown of a stored endpoint: never a key, and its URL's password as ***."""
    from ..engine.adapters.retry import RetryPolicy
    from ..engine.adapters.transport import DEFAULT_LIMITS, MIB
    from ..engine.netguard import redact_url

    def stored(column: str, default: float) -> float:
        value = row[column]
        return default if value is None else float(value)

    return EndpointRecord(
        name=row["name"],
        base_url=redact_url(row["base_url"]),
        api_key_env=row["api_key_env"],
        has_api_key=row["api_key_encrypted"] is not None or row["api_key_env"] is not None,
        pricing={m: tuple(p) for m, p in json.loads(row["pricing"]).items()},
        created_at=row["created_at"],
        max_response_mb=stored("max_response_mb", DEFAULT_LIMITS.max_bytes / MIB),
        deadline_s=stored("deadline_s", DEFAULT_LIMITS.deadline),
        idle_timeout_s=stored("idle_timeout_s", DEFAULT_LIMITS.idle_timeout),
        rate_limit_wait_s=stored("rate_limit_wait_s", RetryPolicy().rate_limit_cap),
    )
