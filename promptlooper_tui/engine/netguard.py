"""Outbound URLs: which ones an endpoint or webhook may have, where they may connect, and what of
them may be shown (DESIGN §9).

* `check_base_url` validates an endpoint's base URL when it is added.
* `refuse_link_local` is an httpx request hook: after DNS resolution, a request to a link-local
  or cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254, and the same addresses
  written as IPv4-mapped or NAT64 IPv6) fails with `BlockedDestination` unless the operator set
  `PROMPTLOOPER_ALLOW_LINK_LOCAL=1`. Loopback and private LAN addresses stay allowed: that is
  where self-hosted LLM servers live.
* `redact_url` hides the password (or token) of a `user:password@` URL wherever it is shown.

The check resolves the host itself, just before httpx connects; a DNS server that answers
differently the second time (DNS rebinding) could still slip past it.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable

import httpx

from ..domain.errors import BadInput

ALLOW_LINK_LOCAL_ENV = "PROMPTLOOPER_ALLOW_LINK_LOCAL"

_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")
#: AWS's IPv6 instance-metadata address (fd00::/8 is otherwise ordinary private space).
_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: How long a host's checked addresses are trusted before it is resolved again.
_RESOLVED_TTL = 30.0
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)@")


Resolver = Callable[[str, int], Awaitable[list[str]]]


class BlockedDestination(httpx.ConnectError):
    """A request that the link-local guard refused before connecting; never worth retrying."""


def link_local_allowed() -> bool:
    """Whether the operator allowed link-local and metadata addresses (read on every check)."""
    return os.environ.get(ALLOW_LINK_LOCAL_ENV, "").strip().lower() in ("1", "true", "yes")


def blocked_reason(address: str) -> str | None:
    """Why `address` (an IP literal) is refused, or None when it may be reached."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip == _METADATA_V6:
            return f"{ip} is a cloud metadata address"
        if ip in _LINK_LOCAL_V6:
            return f"{ip} is a link-local address"
        embedded = ip.ipv4_mapped or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        )
        if embedded is None:
            return None
        ip = embedded
    if ip in _LINK_LOCAL_V4:
        kind = "cloud metadata" if str(ip) == "169.254.169.254" else "link-local"
        return f"{ip} is a {kind} address"
    return None


def _refusal(host: str, reason: str) -> str:
    return (
        f"refused to connect to {host}: {reason} (such addresses serve cloud credentials); "
        f"the operator may allow them with {ALLOW_LINK_LOCAL_ENV}=1"
    )


def check_literal_host(url: str, what: str) -> None:
    """BadInput when `url`'s host is itself a refused IP address (no DNS lookup)."""
    if link_local_allowed():
        return
    host = httpx.URL(url).host
    reason = blocked_reason(host)
    if reason is not None:
        raise BadInput(f"{what}: {_refusal(host, reason)}")


class LinkLocalGuard:
    """Refuses link-local and metadata destinations: as an httpx `request` event hook, or asked
    with `check(host, port)` before a request.

    Resolved hosts are remembered for `_RESOLVED_TTL` seconds so a sweep's thousands of
    requests cost one lookup, not one each. `resolve(host, port)` lists a host's addresses
    (default: the system resolver).
    """

    def __init__(self, resolve: Resolver | None = None) -> None:
        self._checked: dict[tuple[str, int], float] = {}
        self._resolve = resolve or _system_addresses

    async def __call__(self, request: httpx.Request) -> None:
        refusal = await self.check(request.url.host, request.url.port or 0)
        if refusal is not None:
            raise BlockedDestination(refusal, request=request)

    async def check(self, host: str, port: int) -> str | None:
        """Why a request to `host`:`port` is refused (a sentence for the user), or None."""
        if link_local_allowed():
            return None
        if self._checked.get((host, port), 0.0) > time.monotonic():
            return None
        reason = blocked_reason(host)
        if reason is None and not _is_ip(host):
            reason = await self._resolved_reason(host, port)
        if reason is not None:
            return _refusal(host, reason)
        self._checked[(host, port)] = time.monotonic() + _RESOLVED_TTL
        return None

    async def _resolved_reason(self, host: str, port: int) -> str | None:
        try:
            addresses = await self._resolve(host, port)
        except OSError:
            return None  # httpx's own connect reports the failed lookup in its usual words
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                return f"it resolves to {reason}"
        return None


async def _system_addresses(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port or None, type=socket.SOCK_STREAM
    )
    return [str(info[4][0]) for info in infos]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """`url` with the password of its `user:password@` part (or a lone token) shown as ***."""

    def hide(match: re.Match[str]) -> str:
        userinfo = match.group(2)
        user, colon, _ = userinfo.partition(":")
        return f"{match.group(1)}{user}:***@" if colon else f"{match.group(1)}***@"

    return _USERINFO.sub(hide, url, count=1)


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries in its userinfo, as a server might echo them back."""
    parsed = httpx.URL(url)
    found = [part for part in (parsed.password,) if part]
    if parsed.username and not parsed.password:
        found.append(parsed.username)
    if parsed.username or parsed.password:
        basic = f"{parsed.username}:{parsed.password}".encode()
        found.append(base64.b64encode(basic).decode())
    return [secret for secret in found if len(secret) >= 4]


def check_base_url(base_url: str) -> str:
    """An endpoint's base URL, stripped of trailing slashes, or BadInput naming the problem."""
    text = base_url.strip()
    shown = redact_url(text)
    if not text:
        raise BadInput("base_url: the base URL is empty")
    if any(char.isspace() or ord(char) < 32 for char in text):
        raise BadInput(f"base_url: {shown!r} contains spaces or control characters")
    if "?" in text or "#" in text:
        raise BadInput(
            f"base_url: {shown!r} has a query or fragment (? or #); give only the base, "
            "e.g. http://127.0.0.1:8080/v1"
        )
    try:
        url = httpx.URL(text)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise BadInput(f"base_url: {shown!r} is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise BadInput(
            f"base_url: must look like http://host:port/v1 (http or https, with a host), "
            f"got {shown!r}"
        )
    if port is not None and not 0 < port < 65536:
        raise BadInput(f"base_url: port {port} is out of range in {shown!r}")
    return text.rstrip("/")
