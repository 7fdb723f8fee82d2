"""Every LLM call of a sweep's runs, stages and scorers alike: the cache first, then the
endpoint; each call charged to the meter of the run that made it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cache import CachedValue, CallCache, cache_key
from .concurrency import AdaptiveLimiter, RateLimitMeter
from .endpoints import EndpointPool, ResolvedEndpoint


@dataclass
class RunMeter:
    """One run's LLM use, stages and judge/embedding calls alike.

    `tokens_*`, `cost` and `latency_ms` are what the run costs without a cache (comparable
    across configs however much was cached); `paid_*` is what this execution really spent.
    """

    calls: int = 0
    cached_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    paid_in: int = 0
    paid_out: int = 0
    paid_cost: float = 0.0
    #: Models called without a price: the run's cost leaves them out.
    unpriced: set[str] = field(default_factory=set)

    @property
    def paid(self) -> int:
        return self.paid_in + self.paid_out


class LLMGateway:
    """Every LLM call of a sweep: cache first, then the endpoint; charges the run's meter.

    `read_cache=False` makes every call (their answers are still stored); `fresh_since` counts
    only entries stored since then as hits (a --no-cache sweep being resumed).
    """

    def __init__(
        self,
        cache: CallCache,
        pool: EndpointPool,
        limiter: AdaptiveLimiter,
        rate_limits: RateLimitMeter,
        *,
        stream: bool,
        read_cache: bool,
        fresh_since: str,
    ) -> None:
        self._cache = cache
        self._pool = pool
        self.limiter = limiter
        self.rate_limits = rate_limits
        self._stream = stream
        self._read_cache = read_cache
        self._fresh_since = fresh_since

    async def chat(
        self,
        endpoint: ResolvedEndpoint,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        repeat: int,
        meter: RunMeter,
    ) -> tuple[str, CachedValue, bool]:
        model = str(params.get("model", ""))
        key = cache_key(
            base_url=endpoint.cache_identity,
            model=model,
            messages=messages,
            params=params,
            repeat=repeat,
        )

        async def call() -> CachedValue:
            # Only a miss needs a client (and the simulated endpoint, a server).
            client = await self._pool.client(endpoint)
            result = await client.chat(
                messages,
                params,
                stream=self._stream,
                limiter=self.limiter,
                rate_limits=self.rate_limits,
            )
            value: dict[str, Any] = {
                "text": result.text,
                "finish_reason": result.finish_reason,
                "latency_ms": round(result.latency_ms, 2),
            }
            if result.warnings:
                value["warnings"] = list(result.warnings)
            return CachedValue(value, result.tokens_in, result.tokens_out)

        entry, hit = await self._cache.get_or_call(
            key, "chat", call, read=self._read_cache, fresh_since=self._fresh_since
        )
        self._charge(meter, endpoint, model, entry, hit)
        return key, entry, hit

    async def embed(
        self, endpoint: ResolvedEndpoint, model: str, texts: list[str], meter: RunMeter
    ) -> list[list[float]]:
        key = cache_key(
            base_url=endpoint.cache_identity, model=model, kind="embedding", inputs=texts
        )

        async def call() -> CachedValue:
            client = await self._pool.client(endpoint)
            result = await client.embed(
                model, texts, limiter=self.limiter, rate_limits=self.rate_limits
            )
            return CachedValue({"vectors": result.vectors}, result.tokens_in, 0)

        entry, hit = await self._cache.get_or_call(
            key, "embedding", call, read=self._read_cache, fresh_since=self._fresh_since
        )
        self._charge(meter, endpoint, model, entry, hit)
        vectors: list[list[float]] = entry.value["vectors"]
        return vectors

    @staticmethod
    def _charge(
        meter: RunMeter, endpoint: ResolvedEndpoint, model: str, entry: CachedValue, hit: bool
    ) -> None:
        cost = endpoint.cost(model, entry.tokens_in, entry.tokens_out)
        if model not in endpoint.pricing and "*" not in endpoint.pricing:
            meter.unpriced.add(model)
        meter.calls += 1
        meter.tokens_in += entry.tokens_in
        meter.tokens_out += entry.tokens_out
        meter.cost += cost
        meter.latency_ms += float(entry.value.get("latency_ms", 0.0))
        if hit:
            meter.cached_calls += 1
        else:
            meter.paid_in += entry.tokens_in
            meter.paid_out += entry.tokens_out
            meter.paid_cost += cost


class RunLLM:
    """What a scorer sees of the LLM: calls charged to the run being scored."""

    def __init__(
        self,
        gateway: LLMGateway,
        pool: EndpointPool,
        default: ResolvedEndpoint,
        repeat: int,
        meter: RunMeter,
    ) -> None:
        self._gateway = gateway
        self._pool = pool
        self._default = default
        self._repeat = repeat
        self._meter = meter

    async def _endpoint(self, ref: Any) -> ResolvedEndpoint:
        return self._default if ref is None else await self._pool.resolve(ref)

    async def chat(
        self, endpoint: Any, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> str:
        resolved = await self._endpoint(endpoint)
        _, entry, _ = await self._gateway.chat(
            resolved, messages, params, self._repeat, self._meter
        )
        return str(entry.value["text"])

    async def embed(self, endpoint: Any, model: str, texts: list[str]) -> list[list[float]]:
        resolved = await self._endpoint(endpoint)
        return await self._gateway.embed(resolved, model, texts, self._meter)
