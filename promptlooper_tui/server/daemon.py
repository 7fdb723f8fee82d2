"""`promptlooper serve` (HTTP API + websocket feed + MCP over streamable HTTP) and
`promptlooper mcp` (MCP over stdio): their whole lifecycle.

Shutdown on SIGTERM or SIGINT, in this order: stop taking work (changes answer 503) and let
the changes already under way finish, pause the running sweeps and end them as `interrupted`
(resumable; `--resume-interrupted` picks them up at the next start), close websocket
subscribers with 1001, stop the servers, close the Workbench, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import sys
from dataclasses import dataclass
from typing import Any

from ..asgi import serve_app
from ..domain.errors import PromptLooperError
from ..service import Workbench, open_workbench
from ..settings import Settings
from ..signals import on_stop_signals
from .auth import DaemonToken, load_or_create_token
from .gate import WorkGate
from .http import create_api
from .logs import configure_logging
from .ws import EventFeed

log = logging.getLogger(__name__)

#: uvicorn settings shared by both ports: our logging, websocket keepalive pings, and a bound
#: on how long shutdown waits for open connections (MCP streams never end by themselves).
_UVICORN: dict[str, Any] = {
    "log_config": None,
    "ws": "websockets-sansio",
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "timeout_graceful_shutdown": 5,
}
#: How long in-flight runs may take to finish when the daemon stops.
SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class DaemonOptions:
    host: str = "127.0.0.1"
    port: int = 8400
    mcp_port: int = 8401
    resume_interrupted: bool = False
    log_json: bool = False


def serve(settings: Settings, options: DaemonOptions) -> int:
    """Run the daemon until SIGTERM/SIGINT; 0 after a clean shutdown."""
    configure_logging(json_lines=options.log_json)
    return asyncio.run(_run_daemon(settings, options))


def serve_mcp_stdio(settings: Settings, *, log_json: bool = False) -> int:
    """Serve MCP over stdin/stdout until the client closes stdin or a signal arrives."""
    configure_logging(json_lines=log_json)
    return asyncio.run(_run_mcp_stdio(settings))


async def _run_daemon(settings: Settings, options: DaemonOptions) -> int:
    token = load_or_create_token(settings)
    _announce_token(token, settings)
    if not _is_loopback(options.host):
        log.warning(
            "listening on %s, not loopback: anyone who can reach this machine can try to use "
            "the API; keep the token secret and put TLS in front for remote use",
            options.host,
        )
    from .mcp import create_mcp_app

    stop = asyncio.Event()
    async with open_workbench(settings) as wb:
        gate = WorkGate()
        feed = EventFeed(wb)
        api = create_api(wb, token.value, gate=gate, feed=feed)
        mcp_app = create_mcp_app(wb, token.value, gate=gate, host=options.host)
        with on_stop_signals(stop.set):
            async with contextlib.AsyncExitStack() as servers:
                port = await _listen(servers, api, options.host, options.port)
                mcp_port = await _listen(servers, mcp_app, options.host, options.mcp_port)
                log.info(
                    "API on http://%s:%d/api (feed ws://%s:%d/ws), MCP on http://%s:%d/mcp",
                    options.host, port, options.host, port, options.host, mcp_port,
                )  # fmt: skip
                await _handle_interrupted(wb, resume=options.resume_interrupted)
                await stop.wait()
                log.info("shutting down: pausing sweeps, closing subscribers")
                await gate.close(grace=SHUTDOWN_GRACE)
                suspended = await wb.suspend_sweeps(grace=SHUTDOWN_GRACE)
                if suspended:
                    log.info(
                        "paused %d sweep(s), resumable after restart: %s",
                        len(suspended),
                        ", ".join(suspended),
                    )
                await feed.close_all()
    log.info("stopped")
    return 0


async def _run_mcp_stdio(settings: Settings) -> int:
    from .mcp import build_mcp_server

    async with open_workbench(settings) as wb:
        server = build_mcp_server(lambda: wb)
        serving = asyncio.create_task(server.run_stdio_async())
        stop = asyncio.Event()
        with on_stop_signals(stop.set):
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        # Sweeps an agent started end resumable rather than stopped, as in the daemon.
        await wb.suspend_sweeps(grace=SHUTDOWN_GRACE)
    return 0


async def _listen(stack: contextlib.AsyncExitStack, app: Any, host: str, port: int) -> int:
    """Serve `app` until `stack` closes; the bound port. A busy port is a clear error."""
    try:
        return await stack.enter_async_context(serve_app(app, host, port, **_UVICORN))
    except OSError as exc:
        raise PromptLooperError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def _handle_interrupted(wb: Workbench, *, resume: bool) -> None:
    interrupted = [s.id for s in await wb.list_sweeps() if s.status == "interrupted"]
    if not interrupted:
        return
    if not resume:
        log.info(
            "%d interrupted sweep(s) can be resumed (POST /api/sweeps/ID/resume, or start with "
            "--resume-interrupted): %s",
            len(interrupted),
            ", ".join(interrupted),
        )
        return
    for sweep_id in interrupted:
        try:
            await wb.resume_sweep(sweep_id)
        except PromptLooperError as exc:
            log.warning("could not resume sweep %s: %s", sweep_id, exc)
        else:
            log.info("resumed interrupted sweep %s", sweep_id)


def _announce_token(token: DaemonToken, settings: Settings) -> None:
    # Printed once on stdout, for the person starting the daemon; never logged (logs persist,
    # and stderr may be a stream of JSON log lines).
    if token.source == "env":
        sys.stdout.write("API token: from $PROMPTLOOPER_TOKEN\n")
    else:
        sys.stdout.write(f"API token: {token.value}  (stored in {settings.token_path})\n")
    sys.stdout.flush()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
