"""The MCP server with the MCP SDK's own client: over stdio (`promptlooper mcp` as a subprocess)
and over streamable HTTP (the daemon's MCP app on a real port, behind the bearer token)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.server.gate import WorkGate
from promptlooper_tui.server.mcp.app import create_mcp_app
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml
from .conftest import AUTH, TOKEN

#: One tool per Workbench operation an agent needs.
TOOLS = {
    "list_experiments", "get_experiment", "validate_experiment", "create_experiment",
    "plan_sweep", "start_sweep", "sweep_status", "list_sweeps", "pause_sweep", "resume_sweep",
    "stop_sweep", "list_runs", "get_run", "score_run", "leaderboard", "export_best_config",
    "sweep_report", "cache_stats", "list_endpoints", "test_endpoint", "list_workers",
    "sweep_evolution", "evolve_apply",
}  # fmt: skip
PROMPTLOOPER = str(Path(sys.executable).with_name("promptlooper"))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; fails the test on a tool error."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def poll_until_finished(client: Client, sweep_id: str) -> dict[str, Any]:
    """Poll sweep_status as the tool descriptions ask an agent to."""
    async with asyncio.timeout(30):
        while True:
            status = await call(client, "sweep_status", sweep=sweep_id)
            if status["status"] != "running":
                return status
            await asyncio.sleep(0.1)


async def agent_session(client: Client) -> None:
    """What an agent does: discover, validate, create, plan, sweep, poll, read the results."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.output_schema is not None, tool.name
    assert "SPENDS TOKENS" in (tools["start_sweep"].description or "")
    assert "poll sweep_status" in (tools["start_sweep"].description or "")
    assert "Spends nothing" in (tools["plan_sweep"].description or "")
    assert tools["start_sweep"].annotations and tools["start_sweep"].annotations.open_world_hint
    assert tools["leaderboard"].annotations and tools["leaderboard"].annotations.read_only_hint
    assert tools["list_runs"].input_schema["properties"]["limit"]["minimum"] == 1

    invalid = await call(client, "validate_experiment", yaml="name: x\nparameters: 3\n")
    assert invalid["ok"] is False
    assert {issue["path"] for issue in invalid["issues"]} >= {"parameters"}
    assert all(issue["line"] for issue in invalid["issues"] if issue["path"] == "parameters")
    refused = await client.call_tool("create_experiment", {"yaml": "name: x\nparameters: 3\n"})
    assert refused.is_error and "parameters" in refused.content[0].text  # type: ignore[union-attr]

    created = await call(client, "create_experiment", yaml=experiment_yaml())
    assert created["name"] == "support" and created["version"] == 1
    plan = await call(client, "plan_sweep", experiment="support", repeats=2)
    assert plan["runs"] == 24 and plan["cached_calls"] == 0

    started = await call(client, "start_sweep", experiment="support", repeats=2)
    assert started["status"] == "running" and started["sweep_id"].startswith("sw_")
    final = await poll_until_finished(client, started["sweep_id"])
    assert final["status"] == "completed" and final["runs"]["completed"] == 24

    board = await call(client, "leaderboard", experiment="support", top=3)
    assert [entry["rank"] for entry in board["entries"]] == [1, 2, 3]
    runs = await call(client, "list_runs", experiment="support", limit=5)
    assert runs["total"] == 24 and len(runs["items"]) == 5
    more = await call(client, "list_runs", experiment="support", limit=20, after=runs["next"])
    assert len(more["items"]) == 19 and more["next"] is None
    assert not {r["id"] for r in runs["items"]} & {r["id"] for r in more["items"]}
    elsewhere = await client.call_tool("list_runs", {"status": "failed", "after": runs["next"]})
    text = elsewhere.content[0].text  # type: ignore[union-attr]
    assert elsewhere.is_error and "after=" in text and "other filters" in text
    run = await call(client, "get_run", run_id=runs["items"][0]["id"])
    assert run["stages"][0]["output"]
    scored = await call(client, "score_run", run_id=run["id"], value=0.9, note="good")
    assert any(score["kind"] == "human" for score in scored["scores"])

    leader = (await call(client, "leaderboard", experiment="support", top=1))["entries"][0]
    best = await call(client, "export_best_config", experiment="support", format="yaml")
    assert best["config"]["config"] == leader["config"]
    assert best["format"] == "yaml" and "config:" in best["content"]
    report = await call(client, "sweep_report", experiment="support")
    assert report["markdown"].startswith("#") and started["sweep_id"] in report["markdown"]
    stats = await call(client, "cache_stats")
    assert stats["entries"] == 24
    assert await call(client, "list_workers") == {"workers": []}
    spec = await client.read_resource("promptlooper://experiments/support")
    assert "name: support" in spec.contents[0].text  # type: ignore[union-attr]

    missing = await client.call_tool("sweep_status", {"sweep": "sw_nope"})
    assert missing.is_error and "not found" in missing.content[0].text  # type: ignore[union-attr]
    bad = await client.call_tool("list_runs", {"limit": 0})
    assert bad.is_error


async def test_an_agent_over_stdio(tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=PROMPTLOOPER, args=["mcp", "--home", str(tmp_path / "home")]
    )
    with (tmp_path / "server.log").open("w") as log:
        async with Client(stdio_client(server, errlog=log)) as client:
            await agent_session(client)
    # Logs went to stderr (never stdout, the protocol channel) and carry no secrets.
    assert "Traceback" not in (tmp_path / "server.log").read_text()


@contextlib.asynccontextmanager
async def mcp_http(workbench: Workbench, gate: WorkGate | None = None) -> AsyncIterator[str]:
    """The daemon's MCP app on a free port; yields its URL."""
    app = create_mcp_app(workbench, TOKEN, gate=gate)
    async with serve_app(app) as port:
        yield f"http://127.0.0.1:{port}/mcp"


@contextlib.asynccontextmanager
async def http_client(url: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_an_agent_over_streamable_http(workbench: Workbench) -> None:
    async with mcp_http(workbench) as url, http_client(url) as client:
        await agent_session(client)


async def test_mcp_over_http_needs_the_token(workbench: Workbench) -> None:
    async with mcp_http(workbench) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with httpx.AsyncClient(headers=headers) as anonymous:
                response = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1})
            assert response.status_code == 401
            assert response.json()["error"] and TOKEN not in response.text
        with pytest.raises(ExceptionGroup) as refused:
            async with Client(url) as client:
                await client.list_tools()
        assert refused.group_contains(MCPError, depth=2)


async def test_a_client_that_cannot_set_headers_may_put_the_token_in_the_url(
    workbench: Workbench,
) -> None:
    async with mcp_http(workbench) as url:
        async with Client(f"{url}?token={TOKEN}") as client:
            assert "list_experiments" in {tool.name for tool in (await client.list_tools()).tools}
        async with httpx.AsyncClient() as anonymous:
            refused = await anonymous.post(f"{url}?token=wrong", json={"jsonrpc": "2.0", "id": 1})
        assert refused.status_code == 401


async def test_a_closed_gate_refuses_changes_but_not_reads(workbench: Workbench) -> None:
    gate = WorkGate()
    await workbench.import_text(experiment_yaml())
    async with mcp_http(workbench, gate) as url, http_client(url) as client:
        await gate.close()
        refused = await client.call_tool("start_sweep", {"experiment": "support"})
        assert refused.is_error and "shutting down" in refused.content[0].text  # type: ignore[union-attr]
        assert (await call(client, "list_experiments"))["experiments"][0]["name"] == "support"
    assert await workbench.list_sweeps() == []
