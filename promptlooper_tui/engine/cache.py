"""The call cache: one entry per LLM call, keyed by SHA-256 of the call's canonical JSON.

Lookups that arrive together are answered by one query, identical calls in flight at the same
time are made once (the others wait for it), and an entry is committed as soon as its call
returns, so a crash right after never pays for that call again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..domain.records import CacheStats
from ..store.database import Database

log = logging.getLogger(__name__)

#: Most keys in one lookup query (SQLite's default variable limit is far above this).
_LOOKUP_CHUNK = 500


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    *,
    base_url: str,
    model: str,
    messages: Sequence[Mapping[str, str]] | None = None,
    params: Mapping[str, Any] | None = None,
    repeat: int = 0,
    kind: str = "chat",
    inputs: Sequence[str] | None = None,
) -> str:
    """SHA-256 hex of the call: endpoint, model, full messages, every request parameter, repeat.

    Dict order never matters; any change to any of these gives a new key.
    """
    payload = {
        "kind": kind,
        "base_url": base_url.rstrip("/"),
        "model": model,
        "messages": messages,
        "params": {k: v for k, v in (params or {}).items() if v is not None and k != "model"},
        "repeat": repeat,
        "inputs": inputs,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedValue:
    value: dict[str, Any]
    tokens_in: int
    tokens_out: int


class CallCache:
    """Get-or-call over the `cache` table. One instance per Workbench."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: dict[tuple[str, str], list[asyncio.Future[CachedValue | None]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Future[CachedValue]] = {}
        #: Entries whose commit is under way: readers see them before the database does.
        self._unsaved: dict[str, CachedValue] = {}

    async def get(self, key: str, *, fresh_since: str = "") -> CachedValue | None:
        """The entry for `key` (created at or after `fresh_since`), or None."""
        unsaved = self._unsaved.get(key)
        if unsaved is not None:
            return unsaved
        future: asyncio.Future[CachedValue | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((key, fresh_since), []).append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # Everything asked for while a query runs is answered by the next query.
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                found = await self._lookup(batch.keys())
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for wanted, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(wanted))

    async def _lookup(self, wanted: Any) -> dict[tuple[str, str], CachedValue]:
        by_since: dict[str, list[str]] = {}
        for key, since in wanted:
            by_since.setdefault(since, []).append(key)
        found: dict[tuple[str, str], CachedValue] = {}
        for since, keys in by_since.items():
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = await self._db.fetchall(
                    f"SELECT key, value, tokens_in, tokens_out FROM cache "
                    f"WHERE key IN ({marks}) AND created_at >= ?",
                    [*chunk, since],
                )
                for row in rows:
                    found[(row["key"], since)] = CachedValue(
                        json.loads(row["value"]), row["tokens_in"], row["tokens_out"]
                    )
        return found

    def put(self, key: str, kind: str, entry: CachedValue) -> asyncio.Future[None]:
        """Store (or replace) an entry; the future resolves once it is committed.

        The entry is served to readers at once, so callers need not wait for the commit.
        """
        self._unsaved[key] = entry
        done = self._db.submit(
            [
                (
                    "INSERT OR REPLACE INTO cache (key, kind, value, tokens_in, tokens_out, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        kind,
                        json.dumps(entry.value, separators=(",", ":")),
                        entry.tokens_in,
                        entry.tokens_out,
                        datetime.now(UTC).isoformat(),
                    ),
                )
            ]
        )
        done.add_done_callback(lambda future: self._saved(key, entry, future))
        return done

    def _saved(self, key: str, entry: CachedValue, future: asyncio.Future[None]) -> None:
        if self._unsaved.get(key) is entry:
            del self._unsaved[key]
        if not future.cancelled() and future.exception() is not None:
            log.error("cache entry not saved: %s", future.exception())

    async def flush(self) -> None:
        """Wait until every entry put so far is committed."""
        if self._unsaved:
            await self._db.write([])

    async def get_or_call(
        self,
        key: str,
        kind: str,
        call: Callable[[], Awaitable[CachedValue]],
        *,
        read: bool = True,
        fresh_since: str = "",
    ) -> tuple[CachedValue, bool]:
        """The cached entry and True, or the result of `call()` (stored first) and False.

        Concurrent requests for the same key share one lookup and one call: the key is claimed
        before the lookup, so a second request can never miss an entry that the first is
        saving (a lookup that started before the save would not see it in the database).
        """
        shared = self._inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared), True
        future: asyncio.Future[CachedValue] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            hit = await self.get(key, fresh_since=fresh_since) if read else None
            entry = hit if hit is not None else await call()
            if hit is None:
                # Wait for the commit: once a call has returned and the caller moves on, a
                # crash must not make it pay for that call again.
                await self.put(key, kind, entry)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark it retrieved: there may be no waiter
            raise
        else:
            future.set_result(entry)
        finally:
            del self._inflight[key]
        return entry, hit is not None

    async def stats(self) -> CacheStats:
        row = await self._db.fetchone(
            "SELECT (SELECT count(*) FROM cache) AS entries, "
            "(SELECT coalesce(sum(length(value)) + sum(length(key)), 0) FROM cache) AS bytes, "
            "hits, misses FROM cache_counters WHERE id = 1"
        )
        assert row is not None
        total = row["hits"] + row["misses"]
        return CacheStats(
            hits=row["hits"],
            misses=row["misses"],
            hit_rate=round(row["hits"] / total, 4) if total else 0.0,
            entries=row["entries"],
            bytes=row["bytes"],
        )

    async def clear(self) -> int:
        row = await self._db.fetchone("SELECT count(*) AS n FROM cache")
        await self._db.write(
            [
                ("DELETE FROM cache", ()),
                ("UPDATE cache_counters SET hits = 0, misses = 0 WHERE id = 1", ()),
            ]
        )
        return int(row["n"]) if row else 0
