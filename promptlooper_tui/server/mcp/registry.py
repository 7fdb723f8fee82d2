"""How a tool is registered: its description from its docstring, its hints for the client
(read-only, spends tokens), the daemon's `WorkGate` for tools that change state, and the one
place a PromptLooper error becomes the text an agent reads."""

from __future__ import annotations

import functools
import io
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from ...domain.errors import Conflict, EndpointError, NotFound, PromptLooperError, ValidationError
from ...workbench import Workbench
from ..gate import WorkGate

P = ParamSpec("P")
R = TypeVar("R")

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
LOCAL_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
SPENDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
#: Reaches outside (an endpoint) but changes nothing and spends nothing.
PROBES = ToolAnnotations(read_only_hint=True, open_world_hint=True)


class ToolRegistry:
    """Registers tools on `server`; they call the Workbench `wb()` returns at call time. With
    a `gate`, tools that change state fail once it closes (daemon shutdown)."""

    def __init__(
        self, server: MCPServer, wb: Callable[[], Workbench], gate: WorkGate | None
    ) -> None:
        self.server = server
        self.wb = wb
        self._gate = gate

    def tool(
        self, annotations: ToolAnnotations
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        gate = None if annotations.read_only_hint else self._gate

        def register(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            @functools.wraps(fn)
            async def call(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    if gate is None:
                        return await fn(*args, **kwargs)
                    with gate.admit():
                        return await fn(*args, **kwargs)
                except PromptLooperError as exc:
                    raise ToolError(describe_error(exc)) from None

            description = " ".join((fn.__doc__ or "").split())
            self.server.tool(description=description, annotations=annotations)(call)
            return call

        return register


def describe_error(exc: PromptLooperError) -> str:
    """The one place MCP turns a PromptLooper error into the text an agent reads."""
    if isinstance(exc, ValidationError):
        return "invalid experiment:\n" + "\n".join(
            f"- {issue.path or '(top level)'} (line {issue.line}): {issue.message}"
            for issue in exc.issues
        )
    prefix = {NotFound: "not found", Conflict: "not possible now", EndpointError: "endpoint error"}
    for kind, label in prefix.items():
        if isinstance(exc, kind):
            return f"{label}: {exc}"
    return str(exc)


async def export_text(
    workbench: Workbench, experiment: str, fmt: str, *, sweep: str | None = None, top: int = 10
) -> str:
    """An export as a string (best configs and reports are small; runs are not offered here)."""
    out = io.StringIO()
    await workbench.export(experiment, fmt, out, sweep=sweep, top=top)
    return out.getvalue()
