"""Fixtures for the daemon's front-ends: the real API app served by uvicorn on 127.0.0.1 inside
the test's event loop, with a real Workbench and an authorised httpx client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.server.http import create_api
from promptlooper_tui.server.ws import EventFeed
from promptlooper_tui.server.ws_protocol import CoalescingWebSocketProtocol
from promptlooper_tui.workbench import Workbench

TOKEN = "test-token-for-the-daemon"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: What the daemon passes to uvicorn for websockets.
UVICORN_WS: dict[str, Any] = {"ws": CoalescingWebSocketProtocol, "ws_per_message_deflate": False}


@dataclass
class RunningApi:
    port: int
    client: httpx.AsyncClient
    wb: Workbench
    app: Starlette

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def feed(self) -> EventFeed:
        feed: EventFeed = self.app.state.feed
        return feed

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def running_api(
    workbench: Workbench, *, feed: EventFeed | None = None, **uvicorn: Any
) -> AsyncIterator[RunningApi]:
    """The API of `workbench` on a free 127.0.0.1 port until the block ends."""
    app = create_api(workbench, TOKEN, feed=feed)
    async with (
        serve_app(app, **(UVICORN_WS | uvicorn)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=10) as client,
    ):
        yield RunningApi(port, client, workbench, app)


@pytest.fixture
async def api(workbench: Workbench) -> AsyncIterator[RunningApi]:
    async with running_api(workbench) as running:
        yield running


async def wait_for_sweep(
    client: httpx.AsyncClient, sweep_id: str, *, until: str | None = None, within: float = 15
) -> dict[str, Any]:
    """Poll `GET /api/sweeps/{id}` until its status is `until` (default: not running)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(f"/api/sweeps/{sweep_id}")
        assert response.status_code == 200, response.text
        status = response.json()["status"]
        if (status == until) if until else status != "running":
            return dict(response.json())
        assert asyncio.get_running_loop().time() < deadline, f"sweep still {status}"
        await asyncio.sleep(0.05)
