"""`promptlooper serve` (HTTP API + websocket feed + MCP over streamable HTTP) and
`promptlooper mcp` (MCP over stdio): their whole lifecycle.

Shutdown on SIGTERM or SIGINT, in this order: stop taking work (changes answer 503) and let
the changes already under way finish, pause the running sweeps and end them as `interrupted`
(resumable; `--resume-interrupted` picks them up at the next start), close websocket
subscribers with 1001, stop the servers, close the Workbench, exit 0.

Both serve remote callers (DESIGN §9): their Workbench is opened with
`CallerPolicy.for_remote(data_dir, allowed_key_env)`, so experiments sent over the API, the
websocket or MCP read dataset files only under the data folder (created 0700 at start) and name
only the allowed API-key variables. The API port answers only requests whose Host header is a
loopback name, the bind host, or an `--allowed-host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..asgi import serve_app
from ..command_line import command_line
from ..domain.errors import PromptLooperError
from ..domain.trust import CallerPolicy
from ..garbage_collection import collect_less_often, freeze_start_up
from ..settings import Settings
from ..signals import on_stop_signals
from ..workbench import Workbench, open_workbench
from .auth import DaemonToken, load_or_create_token
from .gate import WorkGate
from .http import create_api
from .logs import configure_logging
from .ws import EventFeed

log = logging.getLogger(__name__)

#: uvicorn settings shared by both ports: our logging, websocket keepalive pings, and a bound
#: on how long shutdown waits for open connections (MCP streams never end by themselves).
#: Websocket messages sent in one step go out in one socket write (`ws_protocol`). No
#: permessage-deflate: an event is a few hundred bytes, and compressing each one for each
#: subscriber cost the daemon more CPU than all the rest of sending it.
_UVICORN: dict[str, Any] = {
    "log_config": None,
    # By name: uvicorn imports it when serving; importing this module (`promptlooper mcp`
    # does) loads no uvicorn.
    "ws": "promptlooper_tui.server.ws_protocol:CoalescingWebSocketProtocol",
    "ws_per_message_deflate": False,
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
    #: Remote callers' dataset files must lie here; None: `Settings.data_dir` (<home>/data).
    data_dir: Path | None = None
    #: Environment variable names remote callers may name as `api_key_env`.
    allowed_key_env: tuple[str, ...] = ()
    #: Host header names the API port answers for besides loopback and `host` (any port).
    allowed_hosts: tuple[str, ...] = ()


def serve(settings: Settings, options: DaemonOptions) -> int:
    """Run the daemon until SIGTERM/SIGINT; 0 after a clean shutdown."""
    configure_logging(json_lines=options.log_json)
    collect_less_often()
    return asyncio.run(_run_daemon(settings, options))


def serve_mcp_stdio(
    settings: Settings,
    *,
    data_dir: Path | None = None,
    allowed_key_env: Sequence[str] = (),
    log_json: bool = False,
) -> int:
    """Serve MCP over stdin/stdout until the client closes stdin or a signal arrives; the
    agent is a remote caller (`data_dir`, `allowed_key_env` as in `DaemonOptions`)."""
    configure_logging(json_lines=log_json)
    policy = remote_policy(settings, data_dir, allowed_key_env)
    log.info(
        "MCP over stdio; home %s, store %s, dataset files under %s%s",
        settings.home,
        settings.database.shown,
        policy.data_dir,
        _key_env_note(policy),
    )
    return asyncio.run(_run_mcp_stdio(settings, policy))


def remote_policy(
    settings: Settings, data_dir: Path | None, allowed_key_env: Sequence[str]
) -> CallerPolicy:
    """The policy of remote callers, with the data folder created (0700) if it is missing."""
    folder = (data_dir or settings.data_dir).expanduser().resolve()
    try:
        # Missing parents too are private (`mkdir(parents=True)` would make them 0755).
        for missing in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
            missing.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise PromptLooperError(
            f"cannot create the data folder {folder}: {exc.strerror or exc}"
        ) from None
    if not folder.is_dir():
        raise PromptLooperError(f"the data folder {folder} is not a folder")
    return CallerPolicy.for_remote(folder, allowed_key_env)


def _key_env_note(policy: CallerPolicy) -> str:
    names = sorted(policy.allowed_key_env)
    return f"; API keys from {', '.join(names)}" if names else ""


async def _run_daemon(settings: Settings, options: DaemonOptions) -> int:
    token = load_or_create_token(settings)
    _announce_token(token, settings)
    if not _is_loopback(options.host):
        log.warning(
            "listening on %s, not loopback: anyone who can reach this machine can try to use "
            "the API; keep the token secret and put TLS in front for remote use. The API "
            "answers only requests whose Host header is loopback, %s or an --allowed-host (%s)",
            options.host,
            options.host,
            ", ".join(options.allowed_hosts) or "none given",
        )
    policy = remote_policy(settings, options.data_dir, options.allowed_key_env)
    from .mcp.app import create_mcp_app

    stop = asyncio.Event()
    async with open_workbench(settings, policy) as wb:
        gate = WorkGate()
        feed = EventFeed(wb)
        hosts = (options.host, *options.allowed_hosts)
        api = create_api(wb, token.value, gate=gate, feed=feed, allowed_hosts=hosts)
        mcp_app = create_mcp_app(wb, token.value, gate=gate, host=options.host)
        with on_stop_signals(stop.set):
            async with contextlib.AsyncExitStack() as servers:
                port = await _listen(servers, api, options.host, options.port)
                mcp_port = await _listen(servers, mcp_app, options.host, options.mcp_port)
                log.info(
                    "API on http://%s:%d/api (feed ws://%s:%d/ws), MCP on http://%s:%d/mcp; "
                    "store %s, dataset files under %s%s",
                    options.host, port, options.host, port, options.host, mcp_port,
                    settings.database.shown, policy.data_dir, _key_env_note(policy),
                )  # fmt: skip
                freeze_start_up()
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


async def _run_mcp_stdio(settings: Settings, policy: CallerPolicy) -> int:
    from .mcp.app import build_mcp_server

    async with open_workbench(settings, policy) as wb:
        server = build_mcp_server(lambda: wb)
        serving = asyncio.create_task(server.run_stdio_async())
        stop = asyncio.Event()
        # Signals stay handled to the end: a SIGTERM during the hand-over must not cut it.
        with on_stop_signals(stop.set):
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            serving.cancel()
            # After a signal the SDK may be blocked reading stdin in a thread that cancelling
            # cannot interrupt (the client keeps stdin open): do not wait for it.
            await asyncio.wait({serving}, timeout=0.5)
            # Stdin closed, no signal: the client disconnected (or restarts its servers), and
            # the sweeps it started must not die with the connection.
            handed = not stop.is_set() and hand_over_sweeps(wb, settings)
            grace = HAND_OVER_GRACE if handed else SHUTDOWN_GRACE
            # What is left is ended resumable (`interrupted`), as in the daemon; a handed-over
            # sweep's runs in flight are found in the cache by the process that resumes it.
            suspended = await wb.suspend_sweeps(grace=grace)
        if stop.is_set() and suspended:
            log.info(
                "stopped by a signal: %d sweep(s) interrupted, resumable with `%s`: %s",
                len(suspended),
                command_line(settings, "resume", "SWEEP_ID"),
                ", ".join(suspended),
            )
    if not serving.done():
        # That stdin thread would keep the process alive until the client closes stdin; the
        # Workbench is closed and nothing is left to save, so leave without joining it.
        log.info("stopped")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    if not serving.cancelled() and serving.exception() is not None:
        log.warning("the MCP session ended with an error: %s", serving.exception())
    return 0


#: Seconds a handed-over sweep's runs in flight get to finish before `promptlooper mcp` exits:
#: MCP clients kill a server a few seconds after closing its stdin (the SDK: 2 s).
HAND_OVER_GRACE = 0.5


def hand_over_sweeps(wb: Workbench, settings: Settings) -> list[str]:
    """Start a detached `promptlooper resume SWEEP --after-pid PID` for every sweep running in
    this process (not those paused on purpose); each waits until this process has exited, then
    finishes its sweep. They run in their own session, so a client that kills this process's
    group does not reach them; each logs to `<home>/logs/SWEEP.log`."""
    running = wb.running_sweeps()
    if not running:
        return []
    logs = settings.home / "logs"
    logs.mkdir(mode=0o700, exist_ok=True)
    for sweep_id, experiment in running.items():
        log_path = logs / f"{sweep_id}.log"
        resume = [sys.executable, "-m", "promptlooper_tui", "--home", str(settings.home)]
        resume += ["resume", sweep_id, "--json", "--after-pid", str(os.getpid())]
        with open(log_path, "ab", opener=_private) as log_file:
            process = subprocess.Popen(
                resume,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                # The store by the environment, not argv: its URL may hold a password.
                env={**os.environ, "PROMPTLOOPER_DB": settings.database.url},
            )
        log.info(
            "the client disconnected; sweep %s of %s goes on in the background (pid %d, log "
            "%s): `%s` shows it",
            sweep_id,
            experiment,
            process.pid,
            log_path,
            command_line(settings, "sweeps", "list"),
        )
    return list(running)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


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
