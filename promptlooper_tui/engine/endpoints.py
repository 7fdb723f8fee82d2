"""Endpoint references resolved to pooled clients: one OpenAIClient per endpoint, shared by sweeps.

The name `simulated` needs no setup: the built-in simulated endpoint is started in-process on a
free loopback port the first time it is used, so sample experiments run as they are.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from ..domain.experiment import SIMULATED_ENDPOINT, EndpointRef, InlineEndpoint
from .adapters.openai import OpenAIClient

if TYPE_CHECKING:
    from .adapters.simulated import SimulatorOptions


@dataclass(frozen=True)
class ResolvedEndpoint:
    """Where to send calls. `api_key` is excluded from repr so it never reaches a log."""

    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    pricing: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: What the cache key says about the endpoint: its base URL, except for the simulated
    #: endpoint, whose port changes from process to process but whose answers do not.
    cache_identity: str = ""

    def __post_init__(self) -> None:
        if not self.cache_identity:
            object.__setattr__(self, "cache_identity", self.base_url)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Estimated cost in the pricing's currency (prices are per million tokens)."""
        price = self.pricing.get(model) or self.pricing.get("*")
        if price is None:
            return 0.0
        return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


StoredResolver = Callable[[str], Awaitable[ResolvedEndpoint]]


def api_key_from_env(variable: str | None, where: str) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise BadInput(f"{where}: the environment variable {variable} (the API key) is not set")
    return value


class EndpointPool:
    """Resolves endpoint references and keeps one client per base URL until `aclose()`."""

    def __init__(self, resolve_stored: StoredResolver) -> None:
        self._resolve_stored = resolve_stored
        self._clients: dict[tuple[str, str | None], OpenAIClient] = {}
        self._stack = contextlib.AsyncExitStack()
        self._simulated: ResolvedEndpoint | None = None

    async def resolve(self, ref: EndpointRef) -> ResolvedEndpoint:
        if isinstance(ref, InlineEndpoint):
            key = api_key_from_env(ref.api_key_env, f"endpoint {ref.base_url}")
            return ResolvedEndpoint(name=ref.base_url, base_url=ref.base_url, api_key=key)
        if ref == SIMULATED_ENDPOINT:
            return await self.start_simulated()
        return await self._resolve_stored(ref)

    async def client(self, endpoint: ResolvedEndpoint) -> OpenAIClient:
        key = (endpoint.base_url, endpoint.api_key)
        client = self._clients.get(key)
        if client is None:
            client = OpenAIClient(endpoint.base_url, endpoint.api_key)
            self._clients[key] = client
        return client

    async def start_simulated(self, options: SimulatorOptions | None = None) -> ResolvedEndpoint:
        """The built-in simulated endpoint, started on first use and kept until `aclose()`.
        `options` apply only when this call starts it (a demo wants latency, say)."""
        if self._simulated is None:
            from .adapters.simulated import DEFAULT_OPTIONS, simulated_endpoint

            running = await self._stack.enter_async_context(
                simulated_endpoint(options or DEFAULT_OPTIONS)
            )
            self._simulated = ResolvedEndpoint(
                name=SIMULATED_ENDPOINT,
                base_url=running.base_url,
                cache_identity=f"{SIMULATED_ENDPOINT}://builtin",
            )
        return self._simulated

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await self._stack.aclose()
        self._simulated = None
