"""Whether the daemon still takes work: shutdown closes the gate before it pauses sweeps, so no
request can start a sweep behind its back."""

from __future__ import annotations

from ..domain.errors import PromptLooperError


class ShuttingDown(PromptLooperError):
    """The daemon is stopping; the request changed nothing (HTTP 503, an MCP tool error)."""


class WorkGate:
    """Open until `close()`; front-ends call `check()` before anything that changes state."""

    def __init__(self) -> None:
        self.accepting = True

    def close(self) -> None:
        self.accepting = False

    def check(self) -> None:
        if not self.accepting:
            raise ShuttingDown(
                "the daemon is shutting down; nothing was changed, retry after restart"
            )
