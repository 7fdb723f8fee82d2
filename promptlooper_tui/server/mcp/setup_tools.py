"""Tools for what sweeps run on: the LLM call cache, the stored endpoints and the worker
processes on the store."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from ...domain.records import CacheStats, ConnectionResult, EndpointRecord, WorkerRecord
from .registry import PROBES, READ_ONLY, ToolRegistry


class EndpointList(BaseModel):
    endpoints: list[EndpointRecord]


class WorkerList(BaseModel):
    workers: list[WorkerRecord]


def add_setup_tools(tools: ToolRegistry) -> None:
    wb = tools.wb

    @tools.tool(READ_ONLY)
    async def cache_stats() -> CacheStats:
        """LLM call cache: hits, misses, hit rate, entries, bytes."""
        return await wb().cache_stats()

    @tools.tool(READ_ONLY)
    async def list_endpoints() -> EndpointList:
        """Stored OpenAI-compatible endpoints (API keys are never shown). The name `simulated`
        is a built-in simulated endpoint that needs no setup."""
        return EndpointList(endpoints=await wb().list_endpoints())

    @tools.tool(PROBES)
    async def test_endpoint(
        name: Annotated[str, Field(description="a stored endpoint's name (list_endpoints)")],
    ) -> ConnectionResult:
        """Connect to an endpoint and list its models. Sends one request; spends no tokens."""
        return await wb().test_endpoint(name)

    @tools.tool(READ_ONLY)
    async def list_workers() -> WorkerList:
        """The `promptlooper worker` processes on the store (a team's shared database): what
        each works on, its runs done, when it was last seen, and whether it is gone."""
        return WorkerList(workers=await wb().list_workers())
