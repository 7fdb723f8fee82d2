"""Endpoint references resolved to pooled clients: one OpenAIClient per endpoint, shared by sweeps.

The name `simulated` needs no setup: the built-in simulated endpoint is started in-process on a
free loopback port the first time a call is made to it (a fully cached sweep starts no server),
so sample experiments run as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from ..domain.experiment import SIMULATED_ENDPOINT, EndpointRef, InlineEndpoint
from .adapters.retry import RetryPolicy
from .adapters.transport import DEFAULT_LIMITS, MIB, ResponseLimits

if TYPE_CHECKING:
    from ..simulated.options import SimulatorOptions
    from .adapters.openai import OpenAIClient


@dataclass(frozen=True)
class ResolvedEndpoint:
    """Where to send calls. `api_key` is excluded from repr so it never reaches a log, and so
    is `base_url` (it may hold a password): `display_url` is what may be shown."""

    name: str
    base_url: str = field(repr=False)
    api_key: str | None = field(default=None, repr=False)
    pricing: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Size and time bounds of one request to this endpoint.
    limits: ResponseLimits = DEFAULT_LIMITS
    #: Give up on a call after this many seconds of waiting on 429s (None: the default).
    rate_limit_wait: float | None = None
    #: What the cache key says about the endpoint: its base URL, except for the simulated
    #: endpoint, whose port changes from process to process but whose answers do not.
    cache_identity: str = ""

    def __post_init__(self) -> None:
        if not self.cache_identity:
            object.__setattr__(self, "cache_identity", self.base_url)

    @property
    def display_url(self) -> str:
        from .netguard import redact_url

        return redact_url(self.base_url)

    def retry_policy(self) -> RetryPolicy:
        if self.rate_limit_wait is None:
            return RetryPolicy()
        return RetryPolicy(rate_limit_cap=self.rate_limit_wait)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Estimated cost in the pricing's currency (prices are per million tokens)."""
        price = self.pricing.get(model) or self.pricing.get("*")
        if price is None:
            return 0.0
        return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


StoredResolver = Callable[[str], Awaitable[ResolvedEndpoint]]


def _simulated(base_url: str) -> ResolvedEndpoint:
    return ResolvedEndpoint(
        name=SIMULATED_ENDPOINT,
        base_url=base_url,
        cache_identity=f"{SIMULATED_ENDPOINT}://builtin",
        # It answers locally, for nothing: free, not unpriced.
        pricing={"*": (0.0, 0.0)},
    )


#: The simulated endpoint as `resolve()` gives it before it runs: cache keys, pricing and name
#: need no server; `client()` starts it when a call first misses the cache.
_SIMULATED_NOT_STARTED = _simulated(base_url="")


def api_key_from_env(variable: str | None, where: str) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise BadInput(f"{where}: the environment variable {variable} (the API key) is not set")
    return value


class EndpointPool:
    """Resolves endpoint references and keeps one client per base URL (and key and limits)
    until `aclose()`."""

    def __init__(self, resolve_stored: StoredResolver) -> None:
        self._resolve_stored = resolve_stored
        self._clients: dict[tuple[str, str | None, ResponseLimits, float | None], OpenAIClient] = {}
        self._stack = contextlib.AsyncExitStack()
        self._simulated: ResolvedEndpoint | None = None
        self._starting_simulated = asyncio.Lock()

    async def resolve(self, ref: EndpointRef) -> ResolvedEndpoint:
        if isinstance(ref, InlineEndpoint):
            from .netguard import redact_url

            shown = redact_url(ref.base_url)
            key = api_key_from_env(ref.api_key_env, f"endpoint {shown}")
            return ResolvedEndpoint(name=shown, base_url=ref.base_url, api_key=key)
        if ref == SIMULATED_ENDPOINT:
            return self._simulated or _SIMULATED_NOT_STARTED
        return await self._resolve_stored(ref)

    async def client(self, endpoint: ResolvedEndpoint) -> OpenAIClient:
        if endpoint is _SIMULATED_NOT_STARTED:
            endpoint = await self.start_simulated()
        key = (endpoint.base_url, endpoint.api_key, endpoint.limits, endpoint.rate_limit_wait)
        client = self._clients.get(key)
        if client is None:
            from .adapters.openai import OpenAIClient

            client = OpenAIClient(
                endpoint.base_url,
                endpoint.api_key,
                limits=endpoint.limits,
                retry=endpoint.retry_policy(),
            )
            self._clients[key] = client
        return client

    async def start_simulated(self, options: SimulatorOptions | None = None) -> ResolvedEndpoint:
        """The built-in simulated endpoint, started on first use and kept until `aclose()`.
        `options` apply only when this call starts it (a demo wants latency, say)."""
        async with self._starting_simulated:  # the first calls of a sweep arrive together
            if self._simulated is None:
                from ..simulated.options import DEFAULT_OPTIONS
                from ..simulated.server import simulated_endpoint

                running = await self._stack.enter_async_context(
                    simulated_endpoint(options or DEFAULT_OPTIONS)
                )
                self._simulated = _simulated(running.base_url)
            return self._simulated

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await self._stack.aclose()
        self._simulated = None


# -- what a stored endpoint may be (checked once, in Workbench.add_endpoint) --------------------

#: Longest endpoint name: it is typed on command lines and shown in tables.
MAX_NAME_CHARS = 64
_KEY_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: (low, high, low_inclusive) for each per-endpoint bound, in its stored unit.
LIMIT_RANGES: dict[str, tuple[float, float, bool]] = {
    "max_response_mb": (0.0, 1024.0, False),
    "deadline_s": (0.0, 86_400.0, False),
    "idle_timeout_s": (0.0, 3_600.0, False),
    "rate_limit_wait_s": (0.0, 86_400.0, True),
}


def check_endpoint_name(name: str) -> str:
    """The name, or BadInput: non-empty, no spaces or control characters, no / or \\."""
    if not name:
        raise BadInput("name: an endpoint needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise BadInput(f"name: at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if any(char.isspace() or not char.isprintable() for char in name):
        raise BadInput(f"name: {name!r} contains spaces or control characters")
    if "/" in name or "\\" in name:
        raise BadInput(f"name: {name!r} contains / or \\")
    if name == SIMULATED_ENDPOINT:
        raise BadInput("name: 'simulated' is the built-in simulated endpoint; choose another name")
    return name


def check_key_env_name(name: str) -> str:
    if not _KEY_ENV_NAME.fullmatch(name):
        raise BadInput(
            f"api_key_env: {name[:80]!r} is not an environment variable name "
            "(letters, digits and _, not starting with a digit)"
        )
    return name


def check_pricing(pricing: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Prices per million tokens: finite and >= 0, for non-empty model names."""
    checked: dict[str, tuple[float, float]] = {}
    for model, price in pricing.items():
        if not isinstance(model, str) or not model.strip() or len(model) > 200:
            raise BadInput(f"pricing: {str(model)[:80]!r} is not a model name")
        try:
            price_in, price_out = (float(p) for p in price)
        except (TypeError, ValueError):
            raise BadInput(f"pricing: {model!r} needs two numbers (input, output)") from None
        for value in (price_in, price_out):
            if not math.isfinite(value) or value < 0:
                raise BadInput(f"pricing: prices for {model!r} must be finite and >= 0")
        checked[model] = (price_in, price_out)
    return checked


def check_limit(name: str, value: float | None) -> float | None:
    """A per-endpoint bound (None: the default), or BadInput naming the field and its range."""
    if value is None:
        return None
    low, high, inclusive = LIMIT_RANGES[name]
    number = float(value)
    fits = (low <= number if inclusive else low < number) and number <= high
    if not (math.isfinite(number) and fits):
        above = f">= {low:g}" if inclusive else f"> {low:g}"
        raise BadInput(f"{name}: must be {above} and <= {high:g}, got {value!r}")
    return number


def stored_limits(
    max_response_mb: float | None, deadline_s: float | None, idle_timeout_s: float | None
) -> ResponseLimits:
    """The limits a stored endpoint's columns stand for (NULL: the default)."""
    return ResponseLimits(
        max_bytes=DEFAULT_LIMITS.max_bytes
        if max_response_mb is None
        else max(1, int(max_response_mb * MIB)),
        deadline=DEFAULT_LIMITS.deadline if deadline_s is None else deadline_s,
        idle_timeout=DEFAULT_LIMITS.idle_timeout if idle_timeout_s is None else idle_timeout_s,
    )
