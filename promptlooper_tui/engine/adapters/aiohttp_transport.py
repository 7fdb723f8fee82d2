"""httpx over aiohttp's connection pool: the adapter's default transport.

Against httpcore's pool it halves the client's CPU per request (bench/sweep_speed.py, at 32-64
calls in flight); it never follows redirects, and httpx's request hooks (the link-local guard)
and timeouts apply as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import httpx_aiohttp


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
