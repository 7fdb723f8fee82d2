"""The OpenAI wire format, read defensively: whatever an endpoint sends becomes either a sane value
or an `AttemptFailure` whose detail is safe to store and show.

Server text that is kept (error messages, model ids, finish reasons, completion text) first has
every secret scrubbed (`Quoter.scrub`), and only then is cut short and stripped of control
characters (`Quoter.quote`): a cut can never leave half a key behind. Token counts are checked:
a negative, fractional, non-finite, non-numeric or absurd count is ignored (the tokens are
estimated instead) and a warning says so.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .http_client import Answer
from .retry import requested_wait
from .transport import (
    AttemptFailure,
    ResponseLimits,
    capped_lines,
    describe_transport_error,
    read_capped,
)

SNIPPET_CHARS = 200
#: Larger token counts than this in one answer are taken as nonsense, not as usage.
MAX_TOKENS_REPORTED = 1_000_000_000
#: A connection test lists at most this many model ids.
MAX_MODELS = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class Quoter:
    """Scrubs known secrets out of server text and quotes it safely for storage and display."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[API key]")
        return text

    def quote(self, text: str, limit: int = SNIPPET_CHARS) -> str:
        """`text` scrubbed, on one line, without control characters, at most `limit` chars."""
        flat = " ".join(_CONTROL.sub(" ", self.scrub(text)).split())
        return flat if len(flat) <= limit else flat[:limit].rstrip() + "..."


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class Reading:
    """What every reader needs: the endpoint's limits and its quoter."""

    limits: ResponseLimits
    quoter: Quoter


def describe(response: Answer, quoter: Quoter) -> str:
    """ "HTTP 200, text/html" — what an answer was, without a word of its body."""
    content_type = quoter.quote(response.headers.get("content-type", ""), 80) or "no content type"
    return f"HTTP {response.status_code}, {content_type}"


def is_html(response: Answer, body: bytes) -> bool:
    return "html" in response.headers.get("content-type", "") or body.lstrip()[:1] == b"<"


def _loads(body: bytes | str) -> Any:
    """JSON, or ValueError (deep nesting included, which json reports as RecursionError)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def status_failure(response: Answer, body: bytes, reading: Reading) -> AttemptFailure:
    """The failure an answer with status >= 300 stands for; `body` is the start of its body."""
    code = response.status_code
    quoter = reading.quoter
    said = _error_message(body)
    if 300 <= code < 400 and "location" in response.headers:
        message = f"redirected to {response.headers['location']}; use that URL instead"
    elif said is not None:
        message = said
    elif is_html(response, body):
        message = "an HTML page"
    else:
        message = _text_snippet(body) or response.reason_phrase or "(empty body)"
    return AttemptFailure(
        f"HTTP {code}: {quoter.quote(message)}",
        "rate_limited" if code == 429 else "http",
        status=code,
        retryable=code >= 500 or code in (408, 429),
        retry_after=requested_wait(response.headers) if code == 429 else None,
        content_type=describe(response, quoter),
        openai_error=said is not None,
    )


def _error_message(body: bytes) -> str | None:
    """The message of an OpenAI-style (or FastAPI-style) error body, if it is one."""
    try:
        return _error_text(_loads(body))
    except ValueError:
        return None


def _error_text(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    for candidate in (
        error.get("message") if isinstance(error, dict) else error,
        data.get("detail"),
        data.get("message"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _text_snippet(body: bytes) -> str:
    # Cut generously before quoting: `quote` makes the real cut after scrubbing.
    return body[: SNIPPET_CHARS * 64].decode("utf-8", "replace")


async def read_json(response: Answer, reading: Reading) -> Any:
    body = await read_capped(response, reading.limits)
    try:
        return _loads(body)
    except ValueError:
        shape = describe(response, reading.quoter)
        if is_html(response, body):
            raise AttemptFailure(
                f"an HTML page instead of JSON ({shape})", "html", content_type=shape
            ) from None
        snippet = reading.quoter.quote(_text_snippet(body))
        raise AttemptFailure(
            f"a body that is not JSON ({shape}): {snippet!r}", "malformed", content_type=shape
        ) from None


@dataclass(slots=True)
class _Usage:
    """Token counts as reported, each checked; `warnings` says what was ignored and why."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    warnings: list[str] = field(default_factory=list)

    def read(self, usage: Any, quoter: Quoter, *, output: bool = True) -> None:
        if not isinstance(usage, dict):
            if usage is not None:
                self.warnings.append("the endpoint's usage is not an object; tokens estimated")
            return
        checked = _token_count(usage, "prompt_tokens", quoter, self.warnings)
        self.tokens_in = checked if checked is not None else self.tokens_in
        if output:
            checked = _token_count(usage, "completion_tokens", quoter, self.warnings)
            self.tokens_out = checked if checked is not None else self.tokens_out


def _token_count(
    usage: dict[str, Any], name: str, quoter: Quoter, warnings: list[str]
) -> int | None:
    if name not in usage:
        return None
    value = usage[name]
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        count = int(value)
    if count is not None and 0 <= count <= MAX_TOKENS_REPORTED:
        return count
    shown = quoter.quote(json.dumps(value) if _jsonable(value) else repr(value), 40)
    warnings.append(
        f"the endpoint reported usage.{name} = {shown}, not a plausible token count; "
        "estimated instead"
    )
    return None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _finish_reason(value: Any, quoter: Quoter) -> str | None:
    return quoter.quote(value, 40) or None if isinstance(value, str) else None


async def read_completion(response: Answer, reading: Reading) -> Completion:
    data = await read_json(response, reading)
    quoter = reading.quoter
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        finish_reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AttemptFailure("a chat completion without choices[0].message", "malformed") from None
    if not isinstance(text, str):
        raise AttemptFailure("a chat completion whose content is not text", "malformed")
    usage = _Usage()
    usage.read(data.get("usage"), quoter)
    return Completion(
        quoter.scrub(text),
        _finish_reason(finish_reason, quoter),
        usage.tokens_in,
        usage.tokens_out,
        tuple(usage.warnings),
    )


class _StreamAccumulator:
    """Joins the content deltas of a chat completion stream, one `data:` payload at a time."""

    __slots__ = ("chunks", "finish_reason", "parts", "quoter", "usage")

    def __init__(self, quoter: Quoter) -> None:
        self.chunks = 0
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage = _Usage()
        self.quoter = quoter

    def add(self, payload: str) -> None:
        try:
            chunk = _loads(payload)
        except ValueError:
            raise AttemptFailure(
                f"stream chunk {self.chunks + 1} is not JSON: {self.quoter.quote(payload)!r}",
                "malformed",
            ) from None
        self.chunks += 1
        if not isinstance(chunk, dict):
            raise AttemptFailure(f"stream chunk {self.chunks} is not a JSON object", "malformed")
        if "error" in chunk:
            message = _error_text(chunk) or "(no message)"
            raise AttemptFailure(
                f"the stream reported an error: {self.quoter.quote(message)}", "network"
            )
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                self.parts.append(content)
            self.finish_reason = _finish_reason(choice.get("finish_reason"), self.quoter) or (
                self.finish_reason
            )
        if "usage" in chunk and chunk["usage"] is not None:
            self.usage.read(chunk["usage"], self.quoter)

    def finished(self) -> Completion:
        """The joined answer once `[DONE]` came; a stream that never said why it ended (no
        finish reason) was cut somewhere on the way and is no answer."""
        if self.finish_reason is None:
            raise AttemptFailure(
                f"stream ended after {self.chunks} chunks without a finish reason "
                "(cut before the model finished)",
                "network",
            )
        usage = self.usage
        text = self.quoter.scrub("".join(self.parts))
        return Completion(
            text,
            self.finish_reason,
            usage.tokens_in,
            usage.tokens_out,
            tuple(dict.fromkeys(usage.warnings)),
        )


async def read_stream(response: Answer, reading: Reading) -> Completion:
    if "text/event-stream" not in response.headers.get("content-type", ""):
        # Some servers ignore `stream: true` and answer with one JSON completion.
        return await read_completion(response, reading)
    stream = _StreamAccumulator(reading.quoter)
    try:
        async for line in capped_lines(response, reading.limits):
            if not line.startswith("data:"):
                continue  # blank separators, `event:` lines and `:` keep-alive comments
            payload = line[5:].strip()
            if payload == "[DONE]":
                return stream.finished()
            stream.add(payload)
    except httpx.TimeoutException:
        raise  # the client words timeouts, with the limits that applied
    except httpx.HTTPError as exc:
        reason = reading.quoter.quote(describe_transport_error(exc))
        raise AttemptFailure(
            f"stream cut after {stream.chunks} chunks: {reason}", "network"
        ) from exc
    raise AttemptFailure(
        f"stream cut after {stream.chunks} chunks: no [DONE] before the end", "network"
    )


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value
    )


async def read_embeddings(
    response: Answer, reading: Reading, expected: int
) -> tuple[list[list[float]], int | None, tuple[str, ...]]:
    data = await read_json(response, reading)
    try:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = [item["embedding"] for item in items]
    except (KeyError, TypeError, AttributeError):
        raise AttemptFailure("an embeddings answer without data[].embedding", "malformed") from None
    if len(vectors) != expected:
        raise AttemptFailure(f"{len(vectors)} embeddings for {expected} inputs", "malformed")
    if not all(_is_vector(v) for v in vectors):
        raise AttemptFailure("an embedding that is not a list of finite numbers", "malformed")
    usage = _Usage()
    usage.read(data.get("usage"), reading.quoter, output=False)
    return vectors, usage.tokens_in, tuple(usage.warnings)


async def read_models(response: Answer, reading: Reading) -> list[str]:
    data = await read_json(response, reading)
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list):
        shape = describe(response, reading.quoter)
        raise AttemptFailure(
            f"JSON without a 'data' list of models ({shape})", "malformed", content_type=shape
        )
    ids = (m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str))
    quoted = (reading.quoter.quote(model_id) for model_id in ids)
    return list(itertools.islice((model_id for model_id in quoted if model_id), MAX_MODELS))
