"""Async client for OpenAI-compatible endpoints: chat, embeddings, model list, connection test.

One pooled `httpx.AsyncClient` per endpoint. Every call goes through one retry loop:

* timeouts, connection errors, 5xx, malformed bodies and cut streams are retried with
  exponential backoff and full jitter, up to `RetryPolicy.attempts` attempts in total;
* other 4xx fail at once;
* 429 is the endpoint asking to slow down, not a failure: it uses up no attempt, `Retry-After`
  is honoured, the limiter is told, and the call gives up only once the total rate-limit wait
  would pass `RetryPolicy.rate_limit_cap`.

Failures surface as `EndpointError`; the API key never appears in messages, logs or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

import httpx

from promptlooper_tui.domain.errors import BadInput, EndpointError
from promptlooper_tui.engine.concurrency import AdaptiveLimiter

_log = logging.getLogger(__name__)

T = TypeVar("T")
_Reader = Callable[[httpx.Response], Awaitable[T]]
_Kind = Literal["connect", "timeout", "network", "http", "rate_limited", "malformed", "html"]

_NO_SLOT = contextlib.nullcontext()
#: Connections per httpx pool; the client spreads requests over several small pools.
_CONNECTIONS_PER_POOL = 4
_INCLUDE_USAGE = {"include_usage": True}
_SNIPPET_CHARS = 200
# Caps the backoff exponent so a long run of 429s cannot overflow the float maths.
_MAX_BACKOFF_EXPONENT = 32


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One chat completion.

    `attempts` counts attempts used (429 answers use none); `latency_ms` times the successful
    attempt only, from sending the request to the last byte. Token counts come from the
    endpoint's usage, or are estimated (words * 4/3) when it reports none.
    """

    text: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    finish_reason: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """Embeddings in input order; fields as in `ChatResult`."""

    vectors: list[list[float]]
    tokens_in: int
    latency_ms: float
    attempts: int


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """Outcome of `test_connection`: `error` is a sentence for the user when `ok` is false.

    `latency_ms` is None when no answer arrived at all (refused, timed out, dropped).
    """

    ok: bool
    latency_ms: float | None
    models: list[str]
    error: str | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Delays are in seconds.

    `timeout` bounds each wait for progress (connecting, sending, or the next bytes of the
    answer), so a long stream that keeps producing tokens is never cut by it.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    rate_limit_cap: float = 600.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")


_DEFAULT_RETRY = RetryPolicy()


class _Failure(Exception):
    """Why one attempt failed; `kind` drives retrying and the connection-test wording."""

    def __init__(
        self,
        detail: str,
        kind: _Kind,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Completion:
    text: str
    finish_reason: str | None
    usage: tuple[int, int] | None


class OpenAIClient:
    """Client for one OpenAI-compatible endpoint; `base_url` ends in /v1.

    Pass `http` to share an existing httpx client (it is then not closed by `aclose`), or
    `transport` to route the client this object creates. Use as an async context manager or
    call `aclose()` when done.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = _DEFAULT_RETRY,
        max_connections: int = 64,
    ) -> None:
        if http is not None and transport is not None:
            raise ValueError("pass either http or transport, not both")
        self.base_url = _normalise_base_url(base_url)
        self._api_key = _clean_api_key(api_key)
        self._retry = retry
        self._chat_url = f"{self.base_url}/chat/completions"
        self._embeddings_url = f"{self.base_url}/embeddings"
        self._models_url = f"{self.base_url}/models"
        self._headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._timeout = httpx.Timeout(retry.timeout)
        self._owns_http = http is None
        if http is not None:
            self._pool = [http]
        else:
            # httpcore checks every idle connection of a pool (a syscall each) whenever it
            # assigns a request, so one big pool costs O(connections) per request. Small pools
            # keep that constant: at 64 calls in flight, 16 pools of 4 cut the client's CPU per
            # request from ~3 ms to ~1 ms (bench/sweep_speed.py).
            shards = 1 if transport is not None else -(-max_connections // _CONNECTIONS_PER_POOL)
            per_pool = -(-max_connections // shards)
            # One TLS context for all pools: building one reads the CA bundle (~25 ms).
            tls = httpx.create_ssl_context()
            self._pool = [
                httpx.AsyncClient(
                    transport=transport,
                    verify=tls,
                    timeout=self._timeout,
                    limits=httpx.Limits(
                        max_connections=per_pool, max_keepalive_connections=per_pool
                    ),
                )
                for _ in range(shards)
            ]
        #: Requests in flight per pool; each request goes to the least busy one.
        self._busy = [0] * len(self._pool)

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in as `http`)."""
        if self._owns_http:
            for http in self._pool:
                await http.aclose()

    async def chat(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        *,
        stream: bool = False,
        limiter: AdaptiveLimiter | None = None,
    ) -> ChatResult:
        """Run one chat completion; `params` (model, temperature, ...) go in the body as given.

        None-valued params are dropped. With `stream`, the answer is read as server-sent
        events and joined. Raises EndpointError once retries are exhausted or on a 4xx.
        """
        body = {key: value for key, value in params.items() if value is not None}
        body["messages"] = messages
        if stream:
            body["stream"] = True
            body["stream_options"] = _INCLUDE_USAGE
        read = _read_stream if stream else _read_completion
        completion, attempts, latency_ms = await self._call(
            "POST", self._chat_url, _dumps(body), read, limiter
        )
        tokens_in, tokens_out = completion.usage or (
            sum(_approx_tokens(m.get("content") or "") for m in messages),
            _approx_tokens(completion.text),
        )
        return ChatResult(
            completion.text, tokens_in, tokens_out, latency_ms, completion.finish_reason, attempts
        )

    async def embed(
        self, model: str, inputs: list[str], *, limiter: AdaptiveLimiter | None = None
    ) -> EmbeddingResult:
        """Embed `inputs` in one request; vectors come back in input order."""
        if not inputs:
            return EmbeddingResult([], 0, 0.0, 0)
        read = partial(_read_embeddings, expected=len(inputs))
        (vectors, usage), attempts, latency_ms = await self._call(
            "POST", self._embeddings_url, _dumps({"model": model, "input": inputs}), read, limiter
        )
        tokens_in = usage if usage is not None else sum(_approx_tokens(text) for text in inputs)
        return EmbeddingResult(vectors, tokens_in, latency_ms, attempts)

    async def list_models(self) -> list[str]:
        """The ids the endpoint's /models lists, in its order."""
        models, _, _ = await self._call("GET", self._models_url, None, _read_models, None)
        return models

    async def test_connection(self) -> ConnectionReport:
        """Try GET /models once and explain any problem in a sentence; never raises for it."""
        started = time.perf_counter()
        try:
            models = await self._attempt("GET", self._models_url, None, _read_models)
        except _Failure as failure:
            answered = failure.kind not in ("connect", "timeout", "network")
            latency_ms = _elapsed_ms(started) if answered else None
            return ConnectionReport(False, latency_ms, [], self._scrub(self._explain(failure)))
        return ConnectionReport(True, _elapsed_ms(started), models, None)

    async def _call(
        self,
        method: str,
        url: str,
        content: bytes | None,
        read: _Reader[T],
        limiter: AdaptiveLimiter | None,
    ) -> tuple[T, int, float]:
        """Run `read` on a successful answer, retrying; returns (value, attempts, latency_ms)."""
        policy = self._retry
        attempts = 0
        rate_limited_for = 0.0
        rate_limit_hits = 0
        while True:
            try:
                value, latency_ms = await self._guarded_attempt(method, url, content, read, limiter)
            except _Failure as failure:
                detail = self._scrub(failure.detail)
                if failure.kind == "rate_limited":
                    delay = self._rate_limit_delay(failure, rate_limit_hits, rate_limited_for)
                    if delay is None:
                        raise self._rate_limit_error(method, url, detail) from failure
                    rate_limited_for += delay
                    rate_limit_hits += 1
                else:
                    attempts += 1
                    if not failure.retryable or attempts >= policy.attempts:
                        raise _final_error(method, url, attempts, detail, failure) from failure
                    delay = _backoff(policy, attempts - 1)
                _log.info(
                    "%s %s: %s; trying again in %.3f s (%d of %d attempts used)",
                    *(method, url, detail, delay, attempts, policy.attempts),
                )
                await asyncio.sleep(delay)
                continue
            if limiter is not None:
                limiter.on_success()
            return value, attempts + 1, latency_ms

    def _rate_limit_delay(self, failure: _Failure, hits: int, waited: float) -> float | None:
        """How long to wait after a 429, or None when that would pass the rate-limit cap."""
        delay = failure.retry_after
        if delay is None:
            delay = _backoff(self._retry, hits)
        return None if waited + delay > self._retry.rate_limit_cap else delay

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
            except _Failure as failure:
                if limiter is not None and failure.kind == "rate_limited":
                    # Reported from inside the slot so one burst of 429s halves the limit once.
                    limiter.on_rate_limited()
                raise
            return value, _elapsed_ms(started)

    async def _attempt(self, method: str, url: str, content: bytes | None, read: _Reader[T]) -> T:
        """Send one request and `read` its answer; every problem becomes a `_Failure`."""
        headers = self._json_headers if content is not None else self._headers
        busy = self._busy
        shard = busy.index(min(busy))
        busy[shard] += 1
        try:
            async with self._pool[shard].stream(
                method, url, content=content, headers=headers, timeout=self._timeout
            ) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise _status_failure(response)
                return await read(response)
        except httpx.TimeoutException as exc:
            detail = f"no progress within {_seconds(self._retry.timeout)} s ({type(exc).__name__})"
            raise _Failure(detail, "timeout") from exc
        except httpx.ConnectError as exc:
            detail = f"could not connect to {self.base_url}: {_reason(exc)}"
            raise _Failure(detail, "connect") from exc
        except httpx.HTTPError as exc:
            raise _Failure(f"connection failed: {_reason(exc)}", "network") from exc
        finally:
            busy[shard] -= 1

    def _rate_limit_error(self, method: str, url: str, detail: str) -> EndpointError:
        cap = _seconds(self._retry.rate_limit_cap)
        return EndpointError(
            f"rate limited for {cap} s by {self.base_url}; giving up "
            f"({method} {url}, last answer {detail})",
            status=429,
            retryable=True,
        )

    def _explain(self, failure: _Failure) -> str:
        """A sentence for the user about why GET /models did not work."""
        base, models_url, status = self.base_url, self._models_url, failure.status
        if failure.kind == "connect":
            return failure.detail
        if failure.kind == "timeout":
            return f"{base} did not answer within {_seconds(self._retry.timeout)} s"
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
                f"{models_url} answered with an HTML page, not an OpenAI-compatible API; "
                "check the base URL (it should end in /v1)"
            )
        if failure.kind == "malformed":
            return f"{models_url} does not look like an OpenAI-compatible API: {failure.detail}"
        return f"{models_url} answered {failure.detail}"

    def _scrub(self, text: str) -> str:
        """Remove the API key from text that quotes the server (some echo what they got)."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "[API key]")
        return text


def _final_error(
    method: str, url: str, attempts: int, detail: str, failure: _Failure
) -> EndpointError:
    plural = "s" if attempts != 1 else ""
    return EndpointError(
        f"{method} {url} failed after {attempts} attempt{plural}: {detail}",
        status=failure.status,
        retryable=failure.retryable,
    )


def _normalise_base_url(base_url: str) -> str:
    cleaned = base_url.strip().rstrip("/")
    try:
        url = httpx.URL(cleaned)
    except httpx.InvalidURL as exc:
        raise BadInput(f"endpoint URL {cleaned!r} is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise BadInput(f"endpoint URL must look like http://host:port/v1, got {cleaned!r}")
    return cleaned


def _clean_api_key(api_key: str | None) -> str | None:
    # Keys pasted from files often carry a trailing newline, which HTTP headers cannot hold.
    key = (api_key or "").strip()
    if key and not (key.isascii() and key.isprintable()):
        raise BadInput("the API key contains characters that cannot be sent in an HTTP header")
    return key or None


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _backoff(policy: RetryPolicy, exponent: int) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2**exponent)]."""
    ceiling = policy.base_delay * 2.0 ** min(exponent, _MAX_BACKOFF_EXPONENT)
    return random.uniform(0.0, min(policy.max_delay, ceiling))


def _seconds(value: float) -> str:
    return f"{round(value, 2):g}"


def _approx_tokens(text: str) -> int:
    """Rough token count for servers that report no usage: about 4 tokens per 3 words."""
    return (len(text.split()) * 4 + 2) // 3


def _reason(exc: BaseException) -> str:
    """The root cause of a transport error, in words."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running and listening on that port?)"
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), if usable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_failure(response: httpx.Response) -> _Failure:
    code = response.status_code
    detail = f"HTTP {code}: {_server_message(response)}"
    if code == 429:
        retry_after = _retry_after(response.headers.get("retry-after"))
        return _Failure(detail, "rate_limited", status=code, retry_after=retry_after)
    return _Failure(detail, "http", status=code, retryable=code >= 500 or code == 408)


def _server_message(response: httpx.Response) -> str:
    """The error message an error answer carries, whatever shape the server uses."""
    if 300 <= response.status_code < 400 and "location" in response.headers:
        return f"redirected to {response.headers['location']}; use that URL instead"
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        for candidate in (
            error.get("message") if isinstance(error, dict) else error,
            body.get("detail"),
            body.get("message"),
        ):
            if isinstance(candidate, str) and candidate:
                return candidate
    if _is_html(response, response.content):
        return "an HTML page"
    return _snippet(response.content) or response.reason_phrase or "(empty body)"


def _is_html(response: httpx.Response, body: bytes) -> bool:
    return "html" in response.headers.get("content-type", "") or body.lstrip()[:1] == b"<"


#: A character of a "word" a snippet must not split: anything but space, quotes and brackets.
_WORD_CHAR = re.compile(r"[^\s\"'<>,;{}\[\]()]")
_TRAILING_WORD = re.compile(r"[^\s\"'<>,;{}\[\]()]+$")


def _snippet(body: bytes) -> str:
    """The start of `body` on one line. A cut never splits a word, so a secret the server
    echoes is either quoted whole (and scrubbed later) or not at all."""
    text = " ".join(body.decode("utf-8", "replace").split())
    if len(text) <= _SNIPPET_CHARS:
        return text
    cut = text[:_SNIPPET_CHARS]
    if _WORD_CHAR.match(text[_SNIPPET_CHARS]):
        cut = _TRAILING_WORD.sub("", cut)
    return cut + "..."


async def _read_json(response: httpx.Response) -> Any:
    body = await response.aread()
    try:
        return json.loads(body)
    except ValueError:
        if _is_html(response, body):
            raise _Failure("an HTML page instead of JSON", "html") from None
        raise _Failure(f"a body that is not JSON: {_snippet(body)!r}", "malformed") from None


def _usage_pair(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


async def _read_completion(response: httpx.Response) -> _Completion:
    data = await _read_json(response)
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        finish_reason = choice.get("finish_reason")
        usage = _usage_pair(data.get("usage"))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Failure("a chat completion without choices[0].message", "malformed") from None
    if not isinstance(text, str):
        raise _Failure("a chat completion whose content is not text", "malformed")
    return _Completion(text, finish_reason, usage)


class _StreamAccumulator:
    """Joins the content deltas of a chat completion stream, one `data:` payload at a time."""

    __slots__ = ("chunks", "finish_reason", "parts", "usage")

    def __init__(self) -> None:
        self.chunks = 0
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: tuple[int, int] | None = None

    def add(self, payload: str) -> None:
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise _Failure(
                f"stream chunk {self.chunks + 1} is not JSON: {payload[:_SNIPPET_CHARS]!r}",
                "malformed",
            ) from None
        self.chunks += 1
        if not isinstance(chunk, dict):
            raise _Failure(f"stream chunk {self.chunks} is not a JSON object", "malformed")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise _Failure(f"the stream reported an error: {message}", "network")
        choices = chunk.get("choices")
        if choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                self.parts.append(content)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.usage = _usage_pair(chunk.get("usage")) or self.usage

    def result(self) -> _Completion:
        return _Completion("".join(self.parts), self.finish_reason, self.usage)


async def _read_stream(response: httpx.Response) -> _Completion:
    if "text/event-stream" not in response.headers.get("content-type", ""):
        # Some servers ignore `stream: true` and answer with one JSON completion.
        return await _read_completion(response)
    stream = _StreamAccumulator()
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, `event:` lines and `:` keep-alive comments
            payload = line[5:].strip()
            if payload == "[DONE]":
                return stream.result()
            stream.add(payload)
    except httpx.HTTPError as exc:
        raise _Failure(
            f"stream cut after {stream.chunks} chunks: {_reason(exc)}", "network"
        ) from exc
    raise _Failure(f"stream cut after {stream.chunks} chunks: no [DONE] before the end", "network")


async def _read_embeddings(
    response: httpx.Response, expected: int
) -> tuple[list[list[float]], int | None]:
    data = await _read_json(response)
    try:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = [item["embedding"] for item in items]
        usage = data.get("usage") or {}
        tokens = usage.get("prompt_tokens")
    except (KeyError, TypeError, AttributeError):
        raise _Failure("an embeddings answer without data[].embedding", "malformed") from None
    if len(vectors) != expected or not all(isinstance(v, list) for v in vectors):
        raise _Failure(f"{len(vectors)} embeddings for {expected} inputs", "malformed")
    return vectors, tokens if isinstance(tokens, int) else None


async def _read_models(response: httpx.Response) -> list[str]:
    data = await _read_json(response)
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise _Failure("JSON without a 'data' list of models", "malformed")
    return [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]
