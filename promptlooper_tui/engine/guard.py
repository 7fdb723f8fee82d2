"""Experiment checks in a worker process, bounded in time and memory (DESIGN §9).

Parsing, validating and trial-rendering an experiment is CPU work on text that may come from
anyone holding the daemon's token. Done on the event loop, one hostile file would freeze every
other request; done in a thread, it could not be stopped. So the daemon, the MCP server and the
app's editor hand the text to a worker process: its address space is capped
(`check_memory_mb`), the caller waits at most `check_seconds` without blocking its loop, and a
worker past either bound is killed and replaced. Workers fork from multiprocessing's fork
server, which has the loader imported already, so a replacement costs milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..domain.errors import Issue, ValidationError
from ..domain.trust import CallerPolicy
from .limits import Limits, TooExpensive, default_limits
from .loader import LoadedExperiment, load_experiment_text

_MIB = 1024 * 1024


class CheckGuard:
    """Runs `load_experiment_text` in worker processes; one check per worker at a time."""

    def __init__(self, limits: Limits | None = None, workers: int = 1) -> None:
        self.limits = limits or default_limits()
        self._workers = workers
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def load_text(
        self,
        text: str,
        *,
        source: str,
        base_dir: Path | None = None,
        policy: CallerPolicy | None = None,
    ) -> LoadedExperiment:
        """`load_experiment_text` within the time and memory bound: the loaded experiment,
        or ValidationError / TooExpensive as the loader (or the bound) says."""
        request = (text, source, base_dir, policy or CallerPolicy.local(), self.limits)
        kind, value = await self._call(request, source)
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if kind == "invalid":
            raise ValidationError(value)
        if kind == "expensive":
            raise TooExpensive(value, source=source)
        raise ValidationError([Issue(f"the check failed: {value}", source=source)])

    def start(self) -> None:
        """Start the workers now (the daemon does, so its first request does not wait)."""
        while len(self._idle) + len(self._busy) < self._workers:
            self._idle.append(_Worker(self.limits))

    async def aclose(self) -> None:
        """Kill every worker; a check in progress ends with TooExpensive."""
        self._closed = True
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        self._idle.clear()

    async def _call(self, request: tuple[Any, ...], source: str) -> tuple[str, Any]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        async with self._slots:
            if self._closed:
                raise TooExpensive("the server is shutting down", source=source)
            worker = self._idle.pop() if self._idle else _Worker(self.limits)
            self._busy.add(worker)
            healthy = False
            try:
                reply = await worker.ask(request, self.limits.check_seconds)
                healthy = reply[0] != "expensive"
                return reply
            except TimeoutError:
                raise TooExpensive(
                    f"checking took longer than {self.limits.check_seconds:g} s "
                    "(PROMPTLOOPER_LIMIT_CHECK_SECONDS)",
                    source=source,
                ) from None
            except (EOFError, OSError):
                raise TooExpensive(
                    "the check ran out of memory or crashed (its limit is "
                    f"{self.limits.check_memory_mb:,} MiB: PROMPTLOOPER_LIMIT_CHECK_MEMORY_MB)",
                    source=source,
                ) from None
            finally:
                self._busy.discard(worker)
                if healthy and not self._closed:
                    self._idle.append(worker)
                else:
                    worker.kill()


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, limits: Limits) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, limits.check_memory_mb), daemon=True, name="pl-check"
        )
        # Starting the fork server hands it stderr's descriptor; under a full-screen app
        # sys.stderr is a stand-in without one (fileno -1), so use the process's real one.
        with contextlib.redirect_stderr(sys.__stderr__):
            self.process.start()
        child.close()

    async def ask(self, request: tuple[Any, ...], seconds: float) -> tuple[str, Any]:
        """Send one request and wait for its reply without blocking the event loop."""
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.to_thread(self.conn.send, request)
            async with asyncio.timeout(seconds):
                await readable
            reply: tuple[str, Any] = self.conn.recv()
            return reply
        finally:
            loop.remove_reader(fd)

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _serve(conn: Connection, memory_mb: int) -> None:
    """The worker's loop: one request in, one `(kind, value)` reply out."""
    limit = memory_mb * _MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            text, source, base_dir, policy, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            loaded = load_experiment_text(
                text, source=source, base_dir=base_dir, policy=policy, limits=limits
            )
            reply: tuple[str, Any] = ("ok", loaded)
        except TooExpensive as exc:
            reply = ("expensive", exc.reason)
        except ValidationError as exc:
            reply = ("invalid", exc.issues)
        except MemoryError:
            reply = ("expensive", f"it needs more than {memory_mb:,} MiB of memory")
        except RecursionError:
            reply = ("expensive", "it is nested too deeply to check")
        except Exception as exc:  # reported as a problem with the text, never a crash
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
