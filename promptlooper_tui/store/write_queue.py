"""Group commit, for both backends: units of statements, many units to a transaction.

A *unit* is a list of statements that must land together (a finished run with its stage
results and scores). Callers await their unit's commit; one writer task gathers the units that
arrive while it works and commits them in one transaction, which is ~20x faster than a commit
per unit and still durable: a unit's await returns only once it is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from ..domain.errors import StorageError
from .database import Statement

#: Most units gathered into one transaction.
_MAX_GROUP = 512


@dataclass
class _Unit:
    statements: list[Statement]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class Backend:
    """What the queue needs of a backend."""

    #: Commit the statements in one transaction.
    transaction: Callable[[list[Statement]], Awaitable[None]]
    #: The backend's errors, which fail a unit (anything else is a bug and propagates).
    errors: tuple[type[Exception], ...]
    #: The user's words for a failed write.
    describe: Callable[[Exception], StorageError]
    #: Whether an error fails every unit of the group at once, instead of their being tried
    #: one by one so that one bad unit does not sink the others.
    fails_all: Callable[[Exception], bool] = lambda error: False


class WriteQueue:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._queue: asyncio.Queue[_Unit | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._write_loop(), name="db-writer")

    def submit(self, statements: Iterable[Statement]) -> asyncio.Future[None]:
        """Queue `statements` to be committed together; the future resolves once they are."""
        unit = _Unit(list(statements))
        self._queue.put_nowait(unit)
        return unit.done

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            group = [first]
            closing = False
            while len(group) < _MAX_GROUP and not self._queue.empty():
                unit = self._queue.get_nowait()
                if unit is None:
                    closing = True
                    break
                group.append(unit)
            await self._commit_group(group)
            if closing:
                return

    async def _commit_group(self, group: list[_Unit]) -> None:
        backend = self._backend
        try:
            await backend.transaction(_interleave([unit.statements for unit in group]))
        except backend.errors as first_error:
            if len(group) == 1 or backend.fails_all(first_error):
                for unit in group:
                    _settle(unit, backend.describe(first_error))
                return
            # One bad unit must not sink the others: commit them one by one.
            for unit in group:
                try:
                    await backend.transaction(unit.statements)
                except backend.errors as exc:
                    _settle(unit, backend.describe(exc))
                else:
                    _settle(unit, None)
            return
        for unit in group:
            _settle(unit, None)


def _interleave(units: list[list[Statement]]) -> list[Statement]:
    """The statements of many units, ordered so that equal SQL comes together.

    Units are independent of each other (each writes its own rows, or adds to a counter), so
    the k-th statements of all units may run side by side as long as every unit's own order
    is kept: taking them level by level, grouped by SQL within a level, turns a group of N
    similar units into a handful of executemany calls instead of N times as many executes.
    """
    ordered: list[Statement] = []
    depth = max(len(statements) for statements in units)
    for level in range(depth):
        by_sql: dict[str, list[Statement]] = {}
        for statements in units:
            if level < len(statements):
                by_sql.setdefault(statements[level][0], []).append(statements[level])
        for same in by_sql.values():
            ordered.extend(same)
    return ordered


def runs_of_same_sql(statements: list[Statement]) -> Iterable[tuple[str, list[Statement]]]:
    """Consecutive statements with the same SQL, together (each run goes down as one
    executemany)."""
    start = 0
    for index in range(1, len(statements) + 1):
        if index == len(statements) or statements[index][0] != statements[start][0]:
            yield statements[start][0], statements[start:index]
            start = index


def _settle(unit: _Unit, error: StorageError | None) -> None:
    if unit.done.done():
        return
    if error is None:
        unit.done.set_result(None)
    else:
        unit.done.set_exception(error)
