"""What one request to an endpoint may cost: bytes, total time, silence; and how bodies are read.

Every answer is read incrementally and abandoned the moment it passes `ResponseLimits.max_bytes`
(never `response.read()` of a body of unknown size), so a 50 MB answer, an endless body or an
endless event stream costs at most the cap in memory. The read timeout is the idle timeout (the
longest silence between two reads); the client wraps each attempt in `deadline`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .http_client import Answer

MIB = 1024 * 1024
#: An error answer is read this far for its message; the rest is left unread.
ERROR_BODY_BYTES = 64 * 1024

FailureKind = Literal[
    "connect", "timeout", "network", "http", "rate_limited", "malformed", "html", "limit"
]


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """Per-endpoint bounds on one request (one attempt). Sizes in bytes, times in seconds.

    `max_bytes` caps an answer's body (default 8 MiB); `deadline` bounds a whole request from
    connecting to its last byte (default 300 s); `idle_timeout` bounds each wait for the next
    bytes (default 60 s), so a stream that keeps producing tokens is never cut by it.
    """

    max_bytes: int = 8 * MIB
    deadline: float = 300.0
    idle_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "deadline", "idle_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def wait_s(self) -> float:
        """The longest any one wait may last (connecting, for a pooled connection, for the
        next bytes): the idle timeout, within the deadline."""
        return min(self.idle_timeout, self.deadline)

    def describe_cap(self) -> str:
        return f"{self.max_bytes / MIB:g} MiB"


DEFAULT_LIMITS = ResponseLimits()


class AttemptFailure(Exception):
    """Why one attempt failed; `kind` drives retrying and the connection-test wording.

    `detail` must already be fit to show: secrets scrubbed, server text quoted and cut.
    """

    def __init__(
        self,
        detail: str,
        kind: FailureKind,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        content_type: str = "",
        openai_error: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        #: "HTTP 200, text/html": what the answer was, without its body.
        self.content_type = content_type
        #: Whether the detail quotes an OpenAI-style error message (not just any body).
        self.openai_error = openai_error


def describe_transport_error(exc: BaseException) -> str:
    """The root cause of a transport error, in words."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running and listening on that port?)"
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _over_cap(limits: ResponseLimits, read: int) -> AttemptFailure:
    return AttemptFailure(
        f"the answer passed the {limits.describe_cap()} response size cap after "
        f"{read:,} bytes (max_response_mb; not retried)",
        "limit",
        retryable=False,
    )


async def read_capped(response: Answer, limits: ResponseLimits) -> bytes:
    """The whole body, or AttemptFailure (kind "limit") as soon as it passes the cap."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _over_cap(limits, int(declared))
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise _over_cap(limits, size)
        parts.append(chunk)
    return b"".join(parts)


async def read_prefix(response: Answer, limit: int = ERROR_BODY_BYTES) -> bytes:
    """At most `limit` bytes of the body (an error answer's message lives at its start)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(parts)[:limit]


async def capped_lines(response: Answer, limits: ResponseLimits) -> AsyncIterator[str]:
    """The body's lines (an event stream), failing once the body as a whole passes the cap."""
    size = 0
    pending = bytearray()
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise _over_cap(limits, size)
        start = len(pending)
        pending += chunk
        # Only the new bytes are searched, so one endless line costs linear time, not square.
        end = pending.rfind(b"\n", start)
        if end < 0:
            continue
        complete = bytes(pending[:end])
        del pending[: end + 1]
        for line in complete.split(b"\n"):
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")
