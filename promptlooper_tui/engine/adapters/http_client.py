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


class EndpointHttp:
    """The adapter's HTTP client: it sends a request built in full by its caller (headers,
    timeouts) through the link-local guard to the transport, and returns the answer unread.

    That is all the adapter asks of an HTTP client, so it does without `httpx.AsyncClient`,
    whose merging of defaults, auth, redirect and cookie handling around each request did
    nothing here (redirects are never followed, no cookies are kept: an API needs none, and a
    hostile endpoint gets no state to plant) and cost a tenth of the engine's CPU per call.
    """

    def __init__(self, max_connections: int) -> None:
        pool = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._transport = AiohttpTransport(limits=pool)
        self._guard = LinkLocalGuard()

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The answer to `request`, its body not yet read: read it, then `aclose()` it."""
        await self._guard(request)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx over aiohttp's connection pool, with aiohttp's errors turned into the httpx errors
    that say what happened (httpx-aiohttp reports a refused or dropped connection as a
    ConnectTimeout, and the user would read "no progress within 60 s").

    The request is handed to aiohttp here rather than by httpx-aiohttp's method, and the body
    read straight from aiohttp's stream: the wrappers and per-request objects that saves are
    ~10% of the client's CPU per call (bench/sweep_speed.py).
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.userinfo:
            # httpx has already turned a URL's credentials into the request's Authorization
            # header (httpcore never sent them either); aiohttp refuses a URL that has both.
            request.url = request.url.copy_with(userinfo=b"")
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)  # aiohttp chunks it itself
        extensions = request.extensions
        with _precise_errors():
            response = await self.client.request(
                request.method,
                str(request.url),
                headers=_aiohttp_headers(request.headers),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(extensions.get("timeout", {})),
                server_hostname=extensions.get("sni_hostname"),
            ).__aenter__()
        extensions = {
            "http_version": b"HTTP/1.1",
            "reason_phrase": (response.reason or "").encode(),
        }
        with _precise_errors():
            body = _arrived_body(response)
            if body is not None:
                await response.__aexit__(None, None, None)
        if body is not None:
            # Given as content, httpx hands it to the reader whole, without the stream's
            # layers of generators.
            return httpx.Response(
                status_code=response.status,
                headers=response.raw_headers,
                content=body,
                request=request,
                extensions=extensions,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseBody(response),
            request=request,
            extensions=extensions,
        )

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        """httpx's timeouts as aiohttp's, made once per distinct setting."""
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return found


def _arrived_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The whole body when it has already arrived and needs no decoding (a small answer
    usually comes with its headers), else None: it is then streamed. What arrived is what
    aiohttp's flow control lets it buffer anyway; the reader still applies the size cap."""
    content = response.content
    if not content.is_eof() or "Content-Encoding" in response.headers:
        return None
    return content.read_nowait()


def _aiohttp_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The request's headers as aiohttp takes them, decoded once (httpx's `items()` costs
    several times as much) and with repeated names kept as they are."""
    encoding = headers.encoding
    return [(key.decode(encoding), value.decode(encoding)) for key, value in headers.raw]


class _ResponseBody(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it, with precise errors."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        with _precise_errors():
            while chunk := await content.readany():
                yield chunk

    async def aclose(self) -> None:
        with _precise_errors():
            await self._response.__aexit__(None, None, None)


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
