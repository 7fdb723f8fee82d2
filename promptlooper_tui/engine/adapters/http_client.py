"""The adapter's HTTP client: httpx's API over aiohttp's connection pool, keeping no cookies,
with the link-local guard on every request.

Against httpcore's pool, aiohttp's halves the client's CPU per request (bench/sweep_speed.py, at
32-64 calls in flight). Redirects are never followed (the transport never does, nor does httpx),
and httpx's timeouts apply as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import httpx_aiohttp

from promptlooper_tui.engine.netguard import LinkLocalGuard


def endpoint_http_client(
    timeout: httpx.Timeout,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A client for one endpoint: `transport` (tests choose one) or aiohttp's pool."""
    pool = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return _CookielessClient(
        transport=transport or AiohttpTransport(limits=pool),
        timeout=timeout,
        limits=pool,
        event_hooks={"request": [LinkLocalGuard()]},
    )


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return


class _CookielessClient(httpx.AsyncClient):
    """An httpx client that keeps no cookies: an API needs none, a hostile endpoint gets no
    state to plant, and reading every answer's Set-Cookie costs ~45 us a request."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES


_NO_COOKIES = _NoCookies()


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx over aiohttp's connection pool, with aiohttp's errors turned into the httpx errors
    that say what happened (httpx-aiohttp reports a refused or dropped connection as a
    ConnectTimeout, and the user would read "no progress within 60 s")."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.userinfo:
            # httpx has already turned a URL's credentials into the request's Authorization
            # header (httpcore never sent them either); aiohttp refuses a URL that has both.
            request.url = request.url.copy_with(userinfo=b"")
        with _precise_errors():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _PreciseStream(response.stream)
        return response


class _PreciseStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _precise_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _precise_errors():
            await self._stream.aclose()


@contextlib.contextmanager
def _precise_errors() -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
        if not isinstance(cause, aiohttp.ClientError):
            raise
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            raise httpx.ConnectTimeout(str(cause)) from cause
        if isinstance(cause, aiohttp.ServerTimeoutError):
            raise httpx.ReadTimeout(str(cause)) from cause
        if isinstance(cause, aiohttp.ClientConnectorError):
            raise httpx.ConnectError(str(cause)) from cause
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            raise httpx.RemoteProtocolError(str(cause)) from cause
        raise httpx.ReadError(str(cause) or type(cause).__name__) from cause
