"""`promptlooper serve` and `promptlooper mcp`: the daemons that serve remote callers (the HTTP
API and websocket feed, MCP over HTTP or stdio), and the trust flags they share."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..settings import Settings
from .arguments import Parsers


def add_serve_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "serve",
        parents=[parsers.home],
        help="headless daemon: HTTP API, websocket feed, MCP over HTTP",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8400, help="HTTP API and /ws port")
    p.add_argument("--mcp-port", type=int, default=8401, help="MCP streamable-HTTP port")
    p.add_argument(
        "--resume-interrupted", action="store_true", help="resume interrupted sweeps at start"
    )
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also answer API requests whose Host header names HOST (repeatable; loopback "
        "names and --host are always allowed)",
    )
    _remote_caller_flags(p)
    p.set_defaults(sync_handler=cmd_serve)


def add_mcp_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser("mcp", parents=[parsers.home], help="MCP server over stdio")
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    _remote_caller_flags(p)
    p.set_defaults(sync_handler=cmd_mcp)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.daemon import DaemonOptions, serve

    options = DaemonOptions(
        host=args.host,
        port=args.port,
        mcp_port=args.mcp_port,
        resume_interrupted=args.resume_interrupted,
        log_json=args.log_json,
        data_dir=args.data_dir,
        allowed_key_env=tuple(args.allow_key_env),
        allowed_hosts=tuple(args.allowed_host),
    )
    return serve(Settings.resolve(getattr(args, "home", None), getattr(args, "db", None)), options)


def cmd_mcp(args: argparse.Namespace) -> int:
    from ..server.daemon import serve_mcp_stdio

    return serve_mcp_stdio(
        Settings.resolve(getattr(args, "home", None), getattr(args, "db", None)),
        data_dir=args.data_dir,
        allowed_key_env=args.allow_key_env,
        log_json=args.log_json,
    )


def _env_names(text: str) -> list[str]:
    """`A,B` -> ["A", "B"]: environment variable names (letters, digits, _; no leading digit)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise argparse.ArgumentTypeError(f"not an environment variable name: {name!r}")
    return names


def _remote_caller_flags(p: argparse.ArgumentParser) -> None:
    """The trust flags of the commands that serve remote callers (DESIGN §9)."""
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the only folder whose dataset files remote experiments may read "
        "(default: <home>/data, created 0700)",
    )
    p.add_argument(
        "--allow-key-env",
        type=_env_names,
        action="extend",
        default=[],
        metavar="NAME,...",
        help="environment variables remote experiments may name as api_key_env (default: none)",
    )
