"""Whether the daemon still takes work: shutdown closes the gate, and waits for the changes
already admitted, before it pauses sweeps, so no request can start a sweep behind its back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from ..domain.errors import PromptLooperError


class ShuttingDown(PromptLooperError):
    """The daemon is stopping; the request changed nothing (HTTP 503, an MCP tool error)."""


class WorkGate:
    """Open until `close()`; front-ends run anything that changes state inside `admit()`.

    `changes` counts the changes that have ended (however they ended), so a reader can tell
    whether anything may have changed since it last looked.
    """

    def __init__(self) -> None:
        self.accepting = True
        self.changes = 0
        self._admitted = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Run one change: ShuttingDown once the gate is closed, else counted until it ends."""
        if not self.accepting:
            raise ShuttingDown(
                "the daemon is shutting down; nothing was changed, retry after restart"
            )
        self._admitted += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.changes += 1
            self._admitted -= 1
            if not self._admitted:
                self._idle.set()

    async def close(self, grace: float = 10.0) -> None:
        """Refuse new changes and wait up to `grace` seconds for admitted ones to end."""
        self.accepting = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
