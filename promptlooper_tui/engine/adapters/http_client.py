"""The adapter's HTTP client: aiohttp's connection pool, keeping no cookies, with the link-local
guard on every request, and its errors as httpx's exceptions that say what happened.

Against httpcore's pool, aiohttp's halves the client's CPU per request (bench/sweep_speed.py, at
32-64 calls in flight). Redirects are never followed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict

from promptlooper_tui.engine.netguard import BlockedDestination, LinkLocalGuard

#: How long an idle pooled connection is kept open (httpx's default).
_KEEPALIVE_S = 5.0


class EndpointHttp:
    """The adapter's HTTP client for one endpoint: `send(method, url, content)` with the
    endpoint's headers, made once, and returns the answer unread.

    That is all the adapter asks of an HTTP client, so each request goes to aiohttp's pool as
    it is: no per-request httpx request, header merging, auth, redirect or cookie handling (an
    API needs no cookies, and a hostile endpoint gets no state to plant). Every wait (connect,
    pool, each read) is bounded by `wait_s`; `tls` says whether the endpoint speaks https.
    """

    def __init__(
        self, max_connections: int, headers: Mapping[str, str], wait_s: float, *, tls: bool
    ) -> None:
        self._max_connections = max_connections
        self._headers = dict(headers)
        self._json = CIMultiDict({"Content-Type": "application/json"})
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=wait_s, sock_read=wait_s, connect=wait_s
        )
        # Made only for https (~20 ms of CPU: it loads the CA bundle).
        self._ssl = httpx.create_ssl_context() if tls else None
        self._session: aiohttp.ClientSession | None = None
        self._guard = LinkLocalGuard()

    async def send(self, method: str, url: yarl.URL, content: bytes | None) -> Answer:
        """The answer to a request (JSON `content`, if any), its body not yet read: read it,
        then `aclose()` it. `url` carries no userinfo."""
        refusal = await self._guard.check(url.host or "", url.port or 0)
        if refusal is not None:
            raise BlockedDestination(refusal)
        session = self._session or self._open()
        with _precise_errors():
            response = await session.request(
                method,
                url,
                headers=self._json if content is not None else None,
                data=content,
                allow_redirects=False,
                timeout=self._timeout,
            ).__aenter__()
            return Answer(response, _arrived_body(response))

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=_KEEPALIVE_S,
            ssl=self._ssl if self._ssl is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class Answer:
    """An endpoint's answer as the readers take it: `status_code`, `reason_phrase`, `headers`
    (names case-insensitive) and the body, decoded, from `aiter_bytes()`; `aclose()` it."""

    __slots__ = ("_arrived", "_response", "headers", "reason_phrase", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, arrived: bytes | None) -> None:
        self._response = response
        self._arrived = arrived
        self.status_code = response.status
        self.reason_phrase = response.reason or ""
        self.headers = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._arrived is not None:
            if self._arrived:
                yield self._arrived
            return
        content = self._response.content
        with _precise_errors():
            while chunk := await content.readany():
                yield chunk

    async def aclose(self) -> None:
        with _precise_errors():
            await self._response.__aexit__(None, None, None)


def _arrived_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The whole body when it has already arrived (a small answer usually comes with its
    headers), else None: it is then streamed. What arrived is what aiohttp's flow control lets
    it buffer anyway, decoded included (aiohttp inflates gzip and deflate in bounded steps and
    stops reading while its buffer is full, so a compression bomb cannot grow); the reader
    still applies the size cap."""
    content = response.content
    return content.read_nowait() if content.is_eof() else None


@contextlib.contextmanager
def _precise_errors() -> Iterator[None]:
    """aiohttp's errors as the httpx errors that say what happened (a refused or dropped
    connection must not read as a timeout)."""
    try:
        yield
    except aiohttp.ClientError as exc:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            raise httpx.ConnectTimeout(str(exc)) from exc
        if isinstance(exc, aiohttp.ServerTimeoutError):
            raise httpx.ReadTimeout(str(exc)) from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise httpx.ConnectError(str(exc)) from exc
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            raise httpx.RemoteProtocolError(str(exc)) from exc
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
