"""The daemon's bearer token, and the ASGI guards of its API port: `HostGuard` (the Host header
must name this daemon) and `BearerAuth` (the token), on HTTP and websocket requests alike.

The token is `$PROMPTLOOPER_TOKEN`, else the contents of the 0600 file `Settings.token_path`
(generated on first start). Comparisons run in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from ..settings import Settings, ensure_home, restrict_to_owner

TOKEN_ENV = "PROMPTLOOPER_TOKEN"
#: Host names every daemon answers for, on any port.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class DaemonToken:
    """The token and where it came from; `repr` hides the value so it never reaches a log."""

    value: str
    source: str  # "env", "file" or "generated"

    def __repr__(self) -> str:
        return f"DaemonToken(source={self.source!r})"


def load_or_create_token(settings: Settings) -> DaemonToken:
    """The daemon token: from the environment, the token file, or a new 0600 token file."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return DaemonToken(from_env, "env")
    path = settings.token_path
    if path.exists():
        # Readable by others would let anyone on the machine drive the daemon.
        restrict_to_owner(path)
        value = path.read_text().strip()
        if value:
            return DaemonToken(value, "file")
    ensure_home(path.parent)
    value = secrets.token_urlsafe(32)
    # O_EXCL with mode 0600 from the start: the token is never readable by others, not even
    # for a moment between creation and a chmod.
    with_mode = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(path, with_mode | (0 if path.exists() else os.O_EXCL), 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return DaemonToken(value, "generated")


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class BearerAuth:
    """ASGI middleware: every HTTP and websocket request needs `Authorization: Bearer TOKEN`
    (websockets may pass `?token=` instead, as browsers cannot set headers there; with
    `query_token`, so may HTTP requests: some MCP clients cannot set headers either).

    Refusals are 401 JSON `{"error": ...}` with `WWW-Authenticate: Bearer`; a websocket is
    refused before the handshake with the same HTTP answer. Paths in `public` need no token.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        *,
        public: Collection[str] = (),
        query_token: bool = False,
    ) -> None:
        self._app = app
        self._token = token
        self._public = frozenset(public)
        self._query_token = query_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self._public:
            await self._app(scope, receive, send)
            return
        if scope["path"].startswith("/.well-known/"):
            # No OAuth here: a 404 tells an MCP client to report the 401 below, instead of
            # starting an OAuth flow that cannot succeed (MCP Inspector 2.x does).
            await _refuse(scope, send, 404, "no OAuth: send the daemon's token as a bearer")
            return
        if token_matches(_presented_token(scope, self._query_token), self._token):
            await self._app(scope, receive, send)
            return
        await _refuse(scope, send, 401, "missing or wrong bearer token")


def _presented_token(scope: Scope, query_token: bool) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else None
    # Never logged: the daemon runs uvicorn without an access log.
    if scope["type"] == "websocket" or query_token:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("token")
        return values[0] if values else None
    return None


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "details": []}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="promptlooper"'))
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        # Without the denial extension the only refusal is a close before accept (HTTP 403).
        await send({"type": "websocket.close", "code": 1008})


class HostGuard:
    """ASGI middleware: the Host header must name a loopback address or one of `allowed` (a
    host name or address, any port; IPv6 with or without brackets), compared without case.

    Otherwise the answer is 421 JSON `{"error": ...}` (a websocket is refused before the
    handshake): a page on another site whose DNS name was rebound to this machine reaches
    the port, but it sends its own name as Host, so it is turned away before anything else.
    """

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str] = ()) -> None:
        self._app = app
        self._allowed = frozenset(_host_name(host) for host in (*LOOPBACK_HOSTS, *allowed))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is not None and _host_name(host) in self._allowed:
            await self._app(scope, receive, send)
            return
        if host is None:
            message = "the request has no Host header"
        else:
            message = (
                f"Host {host[:100]!r} is not one this daemon answers for; the operator can "
                "allow it with `promptlooper serve --allowed-host NAME`"
            )
        await _refuse(scope, send, 421, message)


def _host_name(host: str) -> str:
    """`Host` header value or allowed name -> the bare lower-case name, without port."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8400
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:  # name:8400 (a bare IPv6 address has several colons)
        return host.partition(":")[0]
    return host


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None
