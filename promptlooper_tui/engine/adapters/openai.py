"""Async client for OpenAI-compatible endpoints: chat, embeddings, model list, connection test.

One pooled HTTP client per endpoint (`http_client.py`). Every call goes through one retry loop:

* idle timeouts, connection errors, 5xx, malformed bodies and cut streams are retried with
  exponential backoff and full jitter, up to `RetryPolicy.attempts` attempts in total;
* other 4xx fail at once, and so do answers past the size cap or the per-request deadline
  (`ResponseLimits`): asking again would only cost the same again;
* 429 is the endpoint asking to slow down, not a failure: it uses up no attempt, the wait the
  server asks for is honoured above a growing floor, the limiter is told, a `RateLimitMeter`
  counts it and shows the wait, and the call gives up once the total rate-limit wait would pass
  the meter's `wait_cap` (a sweep's setting), else `RetryPolicy.rate_limit_cap` (see `retry.py`).

Failures surface as `EndpointError`. The API key (and any password in the base URL) never
appears in messages, logs, reprs or kept server text; requests to link-local and cloud-metadata
addresses are refused (`netguard.py`). The pieces live beside this file: `http_client.py`
(aiohttp's pool, and the answers the readers take), `transport.py` (limits, capped reading),
`protocol.py` (the wire format), `retry.py` (the retry policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import aiohttp
import httpx
import yarl

from promptlooper_tui import __version__
from promptlooper_tui.domain.errors import BadInput, EndpointError
from promptlooper_tui.engine.concurrency import AdaptiveLimiter, RateLimitMeter
from promptlooper_tui.engine.netguard import (
    BlockedDestination,
    check_base_url,
    redact_url,
    url_secrets,
)

from .http_client import Answer, EndpointHttp
from .protocol import (
    Quoter,
    Reading,
    read_completion,
    read_embeddings,
    read_models,
    read_stream,
    status_failure,
)
from .retry import RetryPolicy, human_duration
from .transport import (
    DEFAULT_LIMITS,
    AttemptFailure,
    ResponseLimits,
    describe_transport_error,
    read_prefix,
)

__all__ = [
    "DEFAULT_LIMITS",
    "ChatResult",
    "ConnectionReport",
    "EmbeddingResult",
    "OpenAIClient",
    "ResponseLimits",
    "RetryPolicy",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")
_Reader = Callable[[Answer, Reading], Awaitable[T]]

_NO_SLOT = contextlib.nullcontext()
_INCLUDE_USAGE = {"include_usage": True}
#: Connections one client keeps at most: as many calls as a sweep may have in flight (the
#: sweep's limiter is what bounds them; aiohttp's pool costs the same at any size).
MAX_CONNECTIONS = 1024
#: Where a user changes how long calls wait on 429s; said when a call gives up.
_CAP_SETTINGS = "the cap is sweep.rate_limit_wait_s, else the endpoint's --rate-limit-wait"


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One chat completion.

    `attempts` counts attempts used (429 answers use none); `latency_ms` times the successful
    attempt only, from sending the request to the last byte. Token counts come from the
    endpoint's usage, or are estimated (words * 4/3) when it reports none or nonsense;
    `warnings` says what the endpoint sent that was ignored (e.g. a negative token count).
    """

    text: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    finish_reason: str | None
    attempts: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """Embeddings in input order; fields as in `ChatResult`."""

    vectors: list[list[float]]
    tokens_in: int
    latency_ms: float
    attempts: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """Outcome of `test_connection`: `error` is a sentence for the user when `ok` is false.

    `latency_ms` is None when no answer arrived at all (refused, timed out, dropped).
    """

    ok: bool
    latency_ms: float | None
    models: list[str]
    error: str | None


_DEFAULT_RETRY = RetryPolicy()
_BASE_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"promptlooper/{__version__}",
}


class OpenAIClient:
    """Client for one OpenAI-compatible endpoint; `base_url` ends in /v1.

    `limits` bounds each request's size and time. Use as an async context manager or call
    `aclose()` when done.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
        limits: ResponseLimits = DEFAULT_LIMITS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.base_url = check_base_url(base_url)
        #: The base URL as it may be shown: a password in it is replaced by ***.
        self.display_url = redact_url(self.base_url)
        self._api_key = _clean_api_key(api_key)
        self._retry = retry
        self._limits = limits
        self._reading = Reading(limits, Quoter([self._api_key, *url_secrets(self.base_url)]))
        self._chat_url = f"{self.base_url}/chat/completions"
        self._embeddings_url = f"{self.base_url}/embeddings"
        self._models_url = f"{self.base_url}/models"
        #: The URLs parsed once, without the credentials a base URL may carry (they go in the
        #: Authorization header).
        self._parsed = {
            url: yarl.URL(url).with_user(None)
            for url in (self._chat_url, self._embeddings_url, self._models_url)
        }
        headers = dict(_BASE_HEADERS)
        base = yarl.URL(self.base_url)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif base.user is not None:
            # A proxy behind basic auth: the base URL's credentials, sent as curl sends them.
            headers["Authorization"] = aiohttp.encode_basic_auth(base.user, base.password or "")
        tls = self.base_url.lower().startswith("https:")
        self._http = EndpointHttp(max_connections, headers, limits.wait_s(), tls=tls)

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.display_url!r})"

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def chat(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        *,
        stream: bool = False,
        limiter: AdaptiveLimiter | None = None,
        rate_limits: RateLimitMeter | None = None,
    ) -> ChatResult:
        """Run one chat completion; `params` (model, temperature, ...) go in the body as given.

        None-valued params are dropped. With `stream`, the answer is read as server-sent
        events and joined; a stream must end with a finish reason and `[DONE]`, else it was
        cut and the attempt failed. Raises EndpointError once retries are exhausted or on a 4xx.
        """
        body = {key: value for key, value in params.items() if value is not None}
        body["messages"] = messages
        if stream:
            body["stream"] = True
            body["stream_options"] = _INCLUDE_USAGE
        read = read_stream if stream else read_completion
        completion, attempts, latency_ms = await self._call(
            "POST", self._chat_url, _dumps(body), read, limiter, rate_limits
        )
        tokens_in = completion.tokens_in
        if tokens_in is None:
            tokens_in = sum(_approx_tokens(m.get("content") or "") for m in messages)
        tokens_out = completion.tokens_out
        if tokens_out is None:
            tokens_out = _approx_tokens(completion.text)
        return ChatResult(
            completion.text,
            tokens_in,
            tokens_out,
            latency_ms,
            completion.finish_reason,
            attempts,
            completion.warnings,
        )

    async def embed(
        self,
        model: str,
        inputs: list[str],
        *,
        limiter: AdaptiveLimiter | None = None,
        rate_limits: RateLimitMeter | None = None,
    ) -> EmbeddingResult:
        """Embed `inputs` in one request; vectors come back in input order."""
        if not inputs:
            return EmbeddingResult([], 0, 0.0, 0)
        read = partial(read_embeddings, expected=len(inputs))
        content = _dumps({"model": model, "input": inputs})
        (vectors, usage, warnings), attempts, latency_ms = await self._call(
            "POST", self._embeddings_url, content, read, limiter, rate_limits
        )
        tokens_in = usage if usage is not None else sum(_approx_tokens(text) for text in inputs)
        return EmbeddingResult(vectors, tokens_in, latency_ms, attempts, warnings)

    async def list_models(self) -> list[str]:
        """The ids the endpoint's /models lists, in its order (quoted, at most 1,000)."""
        models, _, _ = await self._call("GET", self._models_url, None, read_models, None, None)
        return models

    async def test_connection(self) -> ConnectionReport:
        """Try GET /models once and explain any problem in a sentence; never raises for it.

        An answer that is not OpenAI-shaped is described by its status and content type only:
        its body is never shown (the test must not turn into a way to read other services).
        """
        started = time.perf_counter()
        try:
            models = await self._attempt("GET", self._models_url, None, read_models)
        except AttemptFailure as failure:
            answered = failure.kind not in ("connect", "timeout", "network")
            latency_ms = _elapsed_ms(started) if answered else None
            error = self._reading.quoter.scrub(self._explain(failure))
            return ConnectionReport(False, latency_ms, [], error)
        return ConnectionReport(True, _elapsed_ms(started), models, None)

    async def _call(
        self,
        method: str,
        url: str,
        content: bytes | None,
        read: _Reader[T],
        limiter: AdaptiveLimiter | None,
        rate_limits: RateLimitMeter | None,
    ) -> tuple[T, int, float]:
        """Run `read` on a successful answer, retrying; returns (value, attempts, latency_ms)."""
        policy = self._retry
        cap = policy.rate_limit_cap
        if rate_limits is not None and rate_limits.wait_cap is not None:
            cap = rate_limits.wait_cap
        attempts = 0
        rate_limited_for = 0.0
        rate_limit_hits = 0
        shown_url = redact_url(url)
        while True:
            try:
                value, latency_ms = await self._guarded_attempt(method, url, content, read, limiter)
            except AttemptFailure as failure:
                detail = self._reading.quoter.scrub(failure.detail)
                if failure.kind == "rate_limited":
                    if rate_limits is not None:
                        rate_limits.on_429()
                    delay = self._rate_limit_delay(
                        failure, rate_limit_hits, rate_limited_for, cap, f"{method} {shown_url}"
                    )
                    rate_limited_for += delay
                    rate_limit_hits += 1
                else:
                    attempts += 1
                    if not failure.retryable or attempts >= policy.attempts:
                        raise _final_error(method, shown_url, attempts, detail, failure) from None
                    delay = policy.backoff(attempts - 1)
                _log.info(
                    "%s %s: %s; trying again in %.3f s (%d of %d attempts used)",
                    *(method, shown_url, detail, delay, attempts, policy.attempts),
                )
                if rate_limits is not None and failure.kind == "rate_limited":
                    with rate_limits.waiting(delay):
                        await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(delay)
                continue
            if limiter is not None:
                limiter.on_success()
            return value, attempts + 1, latency_ms

    def _rate_limit_delay(
        self, failure: AttemptFailure, hits: int, waited: float, cap: float, request: str
    ) -> float:
        """How long to wait after a 429; EndpointError when that would pass the wait cap."""
        detail = self._reading.quoter.scrub(failure.detail)
        asked = failure.retry_after
        if asked is not None and asked > cap:
            raise EndpointError(
                f"rate limited by {self.display_url}: the endpoint asked to wait "
                f"{human_duration(asked)}, more than the rate-limit wait cap of "
                f"{human_duration(cap)} allows; giving up ({request}, last answer {detail}; "
                f"{_CAP_SETTINGS})",
                status=429,
                retryable=True,
            )
        delay = self._retry.rate_limit_wait(asked, hits)
        if waited + delay > cap:
            raise EndpointError(
                f"rate limited for {_seconds(cap)} s by {self.display_url}; giving up "
                f"after {hits + 1} answers of HTTP 429 ({request}, last answer {detail}; "
                f"{_CAP_SETTINGS})",
                status=429,
                retryable=True,
            )
        return delay

    async def _guarded_attempt(
        self,
        method: str,
        url: str,
        content: bytes | None,
        read: _Reader[T],
        limiter: AdaptiveLimiter | None,
    ) -> tuple[T, float]:
        """One attempt holding a limiter slot only while the request is in flight."""
        async with limiter.slot() if limiter is not None else _NO_SLOT:
            started = time.perf_counter()
            try:
                value = await self._attempt(method, url, content, read)
            except AttemptFailure as failure:
                if limiter is not None and failure.kind == "rate_limited":
                    # Reported from inside the slot so one burst of 429s halves the limit once.
                    limiter.on_rate_limited()
                raise
            return value, _elapsed_ms(started)

    async def _attempt(self, method: str, url: str, content: bytes | None, read: _Reader[T]) -> T:
        """Send one request and `read` its answer within the deadline; every problem becomes
        an `AttemptFailure`."""
        try:
            async with asyncio.timeout(self._limits.deadline):
                return await self._exchange(method, url, content, read)
        except TimeoutError:
            detail = (
                f"no complete answer within the {_seconds(self._limits.deadline)} s deadline "
                "per request (deadline; not retried)"
            )
            raise AttemptFailure(detail, "timeout", retryable=False) from None

    async def _exchange(self, method: str, url: str, content: bytes | None, read: _Reader[T]) -> T:
        try:
            response = await self._http.send(method, self._parsed[url], content)
            try:
                if response.status_code >= 300:
                    raise status_failure(response, await read_prefix(response), self._reading)
                return await read(response, self._reading)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            idle = _seconds(self._limits.idle_timeout)
            detail = f"no progress within {idle} s (idle timeout; {type(exc).__name__})"
            raise AttemptFailure(detail, "timeout") from None
        except BlockedDestination as exc:
            raise AttemptFailure(str(exc), "connect", retryable=False) from None
        except httpx.ConnectError as exc:
            reason = describe_transport_error(exc)
            detail = f"could not connect to {self.display_url}: {reason}"
            raise AttemptFailure(self._reading.quoter.quote(detail, 400), "connect") from None
        except httpx.HTTPError as exc:
            reason = self._reading.quoter.quote(describe_transport_error(exc))
            raise AttemptFailure(f"connection failed: {reason}", "network") from None

    def _explain(self, failure: AttemptFailure) -> str:
        """A sentence for the user about why GET /models did not work; server bodies are
        quoted only when they are OpenAI-style error messages."""
        base, models_url, status = self.display_url, redact_url(self._models_url), failure.status
        if failure.kind in ("connect", "limit"):
            return failure.detail
        if failure.kind == "timeout":
            if not failure.retryable:
                deadline = _seconds(self._limits.deadline)
                return f"{base} did not finish answering within the {deadline} s deadline"
            return f"{base} did not answer within {_seconds(self._limits.idle_timeout)} s"
        if failure.kind == "network":
            return f"the connection to {base} broke: {failure.detail}"
        if status in (401, 403):
            if self._api_key is None:
                return f"the endpoint requires an API key (HTTP {status}) and none is set"
            return f"the endpoint rejected the API key (HTTP {status})"
        if status == 404:
            return f"{models_url} does not exist (HTTP 404); the base URL should end in /v1"
        if failure.kind == "rate_limited":
            return "the endpoint is rate limiting requests (HTTP 429); try again later"
        if failure.kind == "html":
            return (
                f"{models_url} answered with an HTML page, not an OpenAI-compatible API "
                f"({failure.content_type}); check the base URL (it should end in /v1)"
            )
        if failure.kind == "malformed":
            return (
                f"{models_url} does not look like an OpenAI-compatible API "
                f"({failure.content_type or 'an answer it could not read'})"
            )
        if failure.openai_error:
            return f"{models_url} answered {failure.detail}"
        return f"{models_url} answered {failure.content_type}, not an OpenAI-style error"


def _final_error(
    method: str, url: str, attempts: int, detail: str, failure: AttemptFailure
) -> EndpointError:
    plural = "s" if attempts != 1 else ""
    return EndpointError(
        f"{method} {url} failed after {attempts} attempt{plural}: {detail}",
        status=failure.status,
        retryable=failure.retryable,
    )


def _clean_api_key(api_key: str | None) -> str | None:
    # Keys pasted from files often carry a trailing newline, which HTTP headers cannot hold.
    key = (api_key or "").strip()
    if key and not (key.isascii() and key.isprintable()):
        raise BadInput("the API key contains characters that cannot be sent in an HTTP header")
    return key or None


#: Made once: `json.dumps` with options builds an encoder on every call.
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(body: dict[str, Any]) -> bytes:
    return _BODY_ENCODER.encode(body).encode()


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _seconds(value: float) -> str:
    return f"{round(value, 2):g}"


def _approx_tokens(text: str) -> int:
    """Rough token count for servers that report no usage: about 4 tokens per 3 words."""
    return (len(text.split()) * 4 + 2) // 3
