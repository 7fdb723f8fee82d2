"""`promptlooper serve` as a user runs it: a real process on real ports, stopped by signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from promptlooper_tui.simulated.server import simulated_endpoint_process

from ..conftest import experiment_yaml
from ..helpers import cli_json, free_port

PROMPTLOOPER = str(Path(sys.executable).with_name("promptlooper"))
SECRET_KEY = "sk-daemon-test-secret-0123456789"


@dataclass
class Daemon:
    process: asyncio.subprocess.Process
    port: int
    mcp_port: int
    token: str
    token_line: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.auth, timeout=10)

    async def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send `signum`; the exit code and everything the daemon wrote on stderr."""
        self.process.send_signal(signum)
        async with asyncio.timeout(60):
            _, err = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, err.decode()


@contextlib.asynccontextmanager
async def daemon(
    home: Path, *flags: str, env: dict[str, str] | None = None
) -> AsyncIterator[Daemon]:
    """`promptlooper serve` on free ports, once its API answers; killed if a test leaves it."""
    port, mcp_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        *(PROMPTLOOPER, "serve", "--home", str(home), "--port", str(port)),
        *("--mcp-port", str(mcp_port), *flags),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or _environment(),
    )
    try:
        await _wait_until_up(process, port)
        assert process.stdout is not None
        token_line = (await process.stdout.readline()).decode().strip()
        token = token_line.removeprefix("API token: ").split()[0]
        yield Daemon(process, port, mcp_port, token, token_line)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMPTLOOPER_TOKEN"}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


async def _wait_until_up(process: asyncio.subprocess.Process, port: int) -> None:
    async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(30):
        while True:
            if process.returncode is not None:
                _, err = await process.communicate()
                pytest.fail(f"daemon exited with {process.returncode}: {err.decode()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)


async def wait_for_status(client: httpx.AsyncClient, sweep_id: str, done: Any) -> dict[str, Any]:
    """Poll the sweep's status object until `done(status)`."""
    async with asyncio.timeout(60):
        while True:
            status: dict[str, Any] = (await client.get(f"/api/sweeps/{sweep_id}")).json()
            if done(status):
                return status
            await asyncio.sleep(0.05)


# -- token, ports, logs -------------------------------------------------------------------------


async def test_serve_prints_a_0600_token_and_guards_both_ports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with daemon(home) as first:
        token_file = home / "token"
        assert first.token_line == f"API token: {first.token}  (stored in {token_file})"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() == first.token
        async with first.client() as client:
            added = await client.post(
                "/api/endpoints",
                json={"name": "paid", "base_url": "http://127.0.0.1:9/v1", "api_key": SECRET_KEY},
            )
            assert added.status_code == 201 and SECRET_KEY not in added.text
            tested = await client.post("/api/endpoints/paid/test")
            assert tested.status_code == 200 and tested.json()["ok"] is False
            assert SECRET_KEY not in tested.text
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(f"{first.base}/api/experiments")).status_code == 401
            refused = await anonymous.post(f"http://127.0.0.1:{first.mcp_port}/mcp", json={})
            assert refused.status_code == 401
        mcp_url = f"http://127.0.0.1:{first.mcp_port}/mcp"
        async with (
            httpx2.AsyncClient(headers=first.auth, timeout=30) as http,
            Client(streamable_http_client(mcp_url, http_client=http)) as agent,
        ):
            endpoints = await agent.call_tool("list_endpoints", {})
            assert not endpoints.is_error and SECRET_KEY not in str(endpoints.structured_content)
        code, err = await first.stop()
        assert code == 0, err
        assert first.token not in err and SECRET_KEY not in err and "Traceback" not in err
    # A restart reuses the stored token.
    async with daemon(home) as second:
        assert second.token == first.token
        assert (await second.stop(signal.SIGINT))[0] == 0


async def test_a_token_from_the_environment_is_not_printed(tmp_path: Path) -> None:
    env = _environment(PROMPTLOOPER_TOKEN="from-the-environment")
    async with daemon(tmp_path / "home", env=env) as running:
        assert running.token_line == "API token: from $PROMPTLOOPER_TOKEN"
        assert not (tmp_path / "home" / "token").exists()
        headers = {"Authorization": "Bearer from-the-environment"}
        async with httpx.AsyncClient(base_url=running.base, headers=headers) as client:
            assert (await client.get("/api/experiments")).status_code == 200
        code, err = await running.stop()
        assert code == 0 and "from-the-environment" not in err


async def test_a_public_host_is_warned_about_and_json_logs_are_json(tmp_path: Path) -> None:
    async with daemon(tmp_path / "home", "--host", "0.0.0.0", "--log-json") as running:
        code, err = await running.stop()
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    [warning] = [r for r in records if r["level"] == "warning"]
    assert "0.0.0.0" in warning["message"] and "token" in warning["message"]


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mcp_port = str(free_port())
        done = subprocess.run(
            [
                PROMPTLOOPER,
                "serve",
                "--home",
                str(tmp_path),
                "--port",
                str(port),
                "--mcp-port",
                mcp_port,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=_environment(),
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


# -- shutdown mid-sweep, restart ----------------------------------------------------------------


@pytest.fixture
def slow_endpoint() -> Iterator[str]:
    with simulated_endpoint_process("--latency-ms", "30") as base_url:
        yield base_url


async def test_sigterm_mid_sweep_then_resume_interrupted_finishes_it(
    tmp_path: Path, slow_endpoint: str
) -> None:
    home = tmp_path / "home"
    text = experiment_yaml(endpoint={"base_url": slow_endpoint}, sweep={"max_concurrency": 2})
    async with daemon(home) as running, running.client() as client:
        assert (await client.post("/api/experiments", json={"yaml": text})).status_code == 201
        started = await client.post("/api/experiments/support/sweeps", json={"repeats": 4})
        sweep_id = started.json()["sweep_id"]
        await wait_for_status(client, sweep_id, lambda s: s["runs"]["completed"] >= 4)
        ws_url = f"ws://127.0.0.1:{running.port}/ws?since=0"
        async with connect(ws_url, additional_headers=running.auth) as feed:
            code, err = await running.stop()
            events = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    events.append(json.loads(await feed.recv()))
    assert code == 0, err
    assert "Traceback" not in err and f"resumable after restart: {sweep_id}" in err
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert "sweep.paused" in types and "sweep.stopped" not in types

    [sweep] = cli_json(home, "sweeps", "list")
    assert sweep["id"] == sweep_id
    assert sweep["status"] == "interrupted" and sweep["resumable"] is True
    assert 4 <= sweep["runs_completed"] < 48

    async with daemon(home, "--resume-interrupted") as restarted, restarted.client() as client:
        final = await wait_for_status(client, sweep_id, lambda s: s["status"] != "running")
        assert final["status"] == "completed"
        assert final["runs"] == {
            "total": 48,
            "completed": 48,
            "failed": 0,
            "cached": 0,
            "total_is_estimate": False,
        }
        code, err = await restarted.stop()
    assert code == 0 and f"resumed interrupted sweep {sweep_id}" in err
    # No call that had returned was made again.
    async with httpx.AsyncClient() as client:
        stats = (await client.get(slow_endpoint.removesuffix("/v1") + "/_sim/stats")).json()
    assert stats["by_path"]["/v1/chat/completions"] <= 48 + 2


async def test_without_the_flag_interrupted_sweeps_wait_for_a_resume_request(
    tmp_path: Path, slow_endpoint: str
) -> None:
    home = tmp_path / "home"
    text = experiment_yaml(endpoint={"base_url": slow_endpoint}, sweep={"max_concurrency": 2})
    async with daemon(home) as running, running.client() as client:
        await client.post("/api/experiments", json={"yaml": text})
        sweep_id = (
            await client.post("/api/experiments/support/sweeps", json={"repeats": 4})
        ).json()["sweep_id"]
        await wait_for_status(client, sweep_id, lambda s: s["runs"]["completed"] >= 2)
        assert (await running.stop(signal.SIGINT))[0] == 0
    async with daemon(home) as restarted, restarted.client() as client:
        listed = (await client.get("/api/sweeps")).json()
        assert [(s["id"], s["status"], s["resumable"]) for s in listed] == [
            (sweep_id, "interrupted", True)
        ]
        resumed = await client.post(f"/api/sweeps/{sweep_id}/resume")
        assert resumed.status_code == 202 and resumed.json()["status"] == "running"
        final = await wait_for_status(client, sweep_id, lambda s: s["status"] != "running")
        assert final["status"] == "completed" and final["runs"]["completed"] == 48
        assert (await restarted.stop())[0] == 0
