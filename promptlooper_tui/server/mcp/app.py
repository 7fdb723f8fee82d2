"""The MCP server built from its tools and resources, and its streamable-HTTP app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pydantic
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from ... import __version__
from ...workbench import Workbench
from ..auth import BearerAuth
from ..gate import WorkGate
from .experiment_tools import add_experiment_tools
from .registry import ToolRegistry
from .resources import add_resources
from .run_tools import add_run_tools
from .setup_tools import add_setup_tools
from .sweep_tools import add_sweep_tools

INSTRUCTIONS = """\
PromptLooper sweeps prompt variants x models x parameters against OpenAI-compatible endpoints,
caches every LLM call, scores every output and ranks the configs.

The experiment file format is the resource promptlooper://schema/experiment (a JSON Schema);
complete examples are the promptlooper://samples/... resources.

Typical flow: validate_experiment / create_experiment (YAML) -> plan_sweep (free: shows runs,
calls and estimated tokens) -> start_sweep (SPENDS TOKENS; returns at once with a sweep id) ->
poll sweep_status every few seconds until its status is no longer "running" -> leaderboard ->
get_run for details -> export_best_config / sweep_report. Experiments and sweeps may be named
by id or by experiment name (a sweep named by its experiment means that experiment's latest
sweep). Only start_sweep and resume_sweep spend tokens (test_endpoint sends one request that
spends none); every other tool is free."""


class _Server(MCPServer):
    """The SDK's server, with argument errors said plainly: which argument, what is wrong."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, pydantic.ValidationError):
                raise ToolError(describe_arguments(name, exc.__cause__)) from None
            raise


def describe_arguments(tool: str, exc: pydantic.ValidationError) -> str:
    """`invalid arguments for list_runs: - offset: Input should be less than or equal to ...`"""
    problems = [
        f"- {'.'.join(str(part) for part in error['loc']) or '(arguments)'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]
    return f"invalid arguments for {tool}:\n" + "\n".join(problems)


def build_mcp_server(
    workbench_provider: Callable[[], Workbench], gate: WorkGate | None = None
) -> MCPServer:
    """An MCPServer whose tools call the Workbench `workbench_provider()` returns at call time
    (the daemon and `promptlooper mcp` open it after building the server). With a `gate`,
    tools that change state fail once it closes (daemon shutdown)."""
    server: MCPServer = _Server("promptlooper", instructions=INSTRUCTIONS, version=__version__)
    tools = ToolRegistry(server, workbench_provider, gate)
    add_experiment_tools(tools)
    add_sweep_tools(tools)
    add_run_tools(tools)
    add_setup_tools(tools)
    add_resources(tools)
    return server


def create_mcp_app(
    workbench: Workbench, token: str, *, gate: WorkGate | None = None, host: str = "127.0.0.1"
) -> Starlette:
    """The MCP streamable-HTTP app (endpoint `/mcp`) behind the bearer `token`. For a loopback
    `host` the SDK also checks the Host and Origin headers (DNS-rebinding protection)."""
    server = build_mcp_server(lambda: workbench, gate)
    mcp_app = server.streamable_http_app(host=host)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The session manager's task group lives as long as the app; without it /mcp is a 500.
        async with server.session_manager.run():
            yield

    return Starlette(
        routes=[Mount("/", app=mcp_app)],
        middleware=[Middleware(BearerAuth, token=token, query_token=True)],
        lifespan=lifespan,
    )
