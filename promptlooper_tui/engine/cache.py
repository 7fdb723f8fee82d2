"""The call cache: one entry per LLM call, keyed by SHA-256 of the call's canonical JSON.

Lookups that arrive together are answered by one query, identical calls in flight at the same
time are made once (the others wait for it), and an entry is committed as soon as its call
returns, so a crash right after never pays for that call again.

"Made once" holds across processes too: before a process makes a call it claims the call's key
in the `cache_claims` table, and another process (a second `run` of the same experiment, the
daemon) that finds a live claim waits for the entry instead of paying for the call again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..domain.errors import StorageError
from ..domain.records import CacheStats
from ..store import cache as store
from ..store.database import Database, Statement
from .process_identity import ProcessIdentity

log = logging.getLogger(__name__)

#: How long a claim on a call in flight lasts unless renewed. Its owner renews its claims every
#: third of this while it holds any, so this only bounds how long a process that hangs, or
#: dies on another host, keeps others waiting (a dead owner on this host is seen at once).
CLAIM_LEASE_S = 60.0
#: How often a process waiting for another's call looks for its entry.
CLAIM_POLL_S = 0.1


_Wanted = tuple[str, str]  # (key, fresh_since)
_K = TypeVar("_K")
_V = TypeVar("_V")


#: Encoders made once: `json.dumps` with options builds one on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


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


class _Batcher(Generic[_K, _V]):
    """Requests that arrive while a query runs are all answered by the next query."""

    def __init__(self, fetch: Callable[[list[_K]], Awaitable[dict[_K, _V]]]) -> None:
        self._fetch = fetch
        self._waiting: dict[_K, list[asyncio.Future[_V | None]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def get(self, wanted: _K) -> _V | None:
        future: asyncio.Future[_V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(wanted, []).append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                found = await self._fetch(list(batch))
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


@dataclass(frozen=True, slots=True)
class _Claim:
    owner: str
    host: str
    pid: int
    expires_at: float


_Probe = tuple[CachedValue | None, _Claim | None]


class _CallClaims:
    """This process's side of the `cache_claims` table: who is making which call right now.

    A claim names its owner (host, pid and a nonce per CallCache) and lasts CLAIM_LEASE_S,
    renewed while held. It is released in the transaction that stores the call's entry, or
    when the call fails or is cancelled. A claim whose lease ran out, or whose owner is a dead
    process on this host, is stale: whoever wants the key next takes it over.
    """

    def __init__(self, db: Database, identity: ProcessIdentity) -> None:
        self._db = db
        self._identity = identity
        self.owner = identity.owner
        self._held: set[str] = set()
        self._idle = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._pruned = False
        #: Keys to release in the next write; runs stopped together give up theirs in one.
        self._releasing: set[str] = set()

    async def claim(self, key: str) -> None:
        """Claim `key` unless another owner holds a live claim on it; a probe tells which."""
        # The first claim also prunes claims left by processes that died long ago, on keys
        # nobody asked for since.
        prune, self._pruned = not self._pruned, True
        await self._db.write(
            store.claim_key_statements(
                key,
                self.owner,
                self._identity.host,
                self._identity.pid,
                now=time.time(),
                lease_s=CLAIM_LEASE_S,
                prune=prune,
            )
        )

    def is_live_other(self, claim: _Claim | None) -> bool:
        """Whether `claim` is another owner's and still binding (not stale)."""
        if claim is None or claim.owner == self.owner or claim.expires_at < time.time():
            return False
        return self._identity.outlives(claim.host, claim.pid)

    async def drop(self, key: str, claim: _Claim) -> None:
        """Remove a stale claim (unless its owner renewed or replaced it meanwhile)."""
        await self._db.write([store.drop_stale_claim_statement(key, claim.owner, claim.expires_at)])

    def hold(self, key: str) -> None:
        """Keep `key`'s claim renewed until `let_go(key)`."""
        self._held.add(key)
        self._idle.clear()
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="cache-claims-renewal")

    def let_go(self, key: str) -> None:
        self._held.discard(key)
        if not self._held:
            self._idle.set()

    def release_statement(self, key: str) -> Statement:
        return store.release_claim_statement(key, self.owner)

    def release(self, key: str) -> None:
        """Give `key` up (whether or not this owner holds it), without waiting: the keys
        released in one turn of the event loop are deleted by one write."""
        self.let_go(key)
        if not self._releasing:
            asyncio.get_running_loop().call_soon(self._submit_releases)
        self._releasing.add(key)

    def _submit_releases(self) -> None:
        keys, self._releasing = sorted(self._releasing), set()
        done = self._db.submit([store.release_claims_statement(keys, self.owner)])
        done.add_done_callback(_log_release_failure)

    async def _renew(self) -> None:
        while self._held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), CLAIM_LEASE_S / 3)
            if not self._held:
                return
            try:
                await self._db.write(
                    [store.renew_claims_statement(self.owner, time.time() + CLAIM_LEASE_S)]
                )
            except StorageError as exc:
                # The write that failed will say why where it matters; at worst the lease
                # runs out and another process makes one of these calls as well.
                log.debug("claims on calls in flight not renewed: %s", exc)


def _log_release_failure(done: asyncio.Future[None]) -> None:
    # Not a warning: the failed write behind it is reported where it matters, and a claim left
    # behind is stale as soon as this process ends (or its lease does).
    if not done.cancelled() and done.exception() is not None:
        log.debug("claim on a call in flight not released: %s", done.exception())


class CallCache:
    """Get-or-call over the `cache` table. One instance per Workbench."""

    def __init__(self, db: Database, identity: ProcessIdentity | None = None) -> None:
        """`identity`: whose claims this cache's are (default: a new owner in this process)."""
        self._db = db
        self._entries: _Batcher[_Wanted, CachedValue] = _Batcher(self._lookup)
        self._inflight: dict[str, asyncio.Future[CachedValue]] = {}
        #: Entries whose commit is under way: readers see them before the database does.
        self._unsaved: dict[str, CachedValue] = {}
        self._claims = _CallClaims(db, identity or ProcessIdentity.new())
        self._probes: _Batcher[_Wanted, _Probe] = _Batcher(self._probe)
        #: Keys another process is calling, with the futures of those waiting for its entry.
        self._watched: dict[_Wanted, list[asyncio.Future[CachedValue | None]]] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def get(self, key: str, *, fresh_since: str = "") -> CachedValue | None:
        """The entry for `key` (created at or after `fresh_since`), or None."""
        unsaved = self._unsaved.get(key)
        if unsaved is not None:
            return unsaved
        return await self._entries.get((key, fresh_since))

    async def _lookup(self, wanted: Iterable[_Wanted]) -> dict[_Wanted, CachedValue]:
        by_since: dict[str, list[str]] = {}
        for key, since in wanted:
            by_since.setdefault(since, []).append(key)
        found: dict[_Wanted, CachedValue] = {}
        for since, keys in by_since.items():
            for row in await store.lookup_entries(self._db, keys, since):
                found[(row["key"], since)] = CachedValue(
                    json.loads(row["value"]), row["tokens_in"], row["tokens_out"]
                )
        return found

    async def _probe(self, wanted: list[_Wanted]) -> dict[_Wanted, _Probe]:
        """The entry (None if missing) and the claim (None if unclaimed) of every key."""
        by_since: dict[str, list[str]] = {}
        for key, since in wanted:
            by_since.setdefault(since, []).append(key)
        found: dict[_Wanted, _Probe] = {}
        for since, keys in by_since.items():
            for row in await store.probe_keys(self._db, keys, since):
                entry = holder = None
                if row["value"] is not None:
                    entry = CachedValue(
                        json.loads(row["value"]), row["tokens_in"], row["tokens_out"]
                    )
                if row["owner"] is not None:
                    holder = _Claim(row["owner"], row["host"], row["pid"], row["expires_at"])
                found[(row["key"], since)] = (entry, holder)
        return found

    def put(
        self, key: str, kind: str, entry: CachedValue, *, claimed: bool = False
    ) -> asyncio.Future[None]:
        """Store (or replace) an entry; the future resolves once it is committed. With
        `claimed`, this process's claim on `key` is released in the same transaction.

        The entry is served to readers at once, so callers need not wait for the commit.
        """
        self._unsaved[key] = entry
        statements = [
            store.save_entry_statement(
                key,
                kind,
                _COMPACT.encode(entry.value),
                entry.tokens_in,
                entry.tokens_out,
                datetime.now(UTC).isoformat(),
            )
        ]
        if claimed:
            statements.append(self._claims.release_statement(key))
        done = self._db.submit(statements)
        done.add_done_callback(lambda future: self._saved(key, entry, future))
        return done

    def _saved(self, key: str, entry: CachedValue, future: asyncio.Future[None]) -> None:
        if self._unsaved.get(key) is entry:
            del self._unsaved[key]
        if not future.cancelled() and future.exception() is not None:
            # Not an error here: the caller awaits the commit and reports its failure (a sweep
            # fails saying why); a second line would repeat it.
            log.debug("cache entry not saved: %s", future.exception())

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
        Another process's call of the same key is waited for, and its entry returned as a hit.
        """
        shared = self._inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared), True
        future: asyncio.Future[CachedValue] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        claimed = False
        try:
            hit = await self.get(key, fresh_since=fresh_since) if read else None
            if hit is None and read:
                hit = await self._claim_or_wait(key, fresh_since)
                claimed = hit is None
            entry = hit if hit is not None else await call()
            if hit is None:
                # Wait for the commit: once a call has returned and the caller moves on, a
                # crash must not make it pay for that call again.
                await self.put(key, kind, entry, claimed=claimed)
                self._claims.let_go(key)
        except BaseException as exc:
            if claimed:
                self._claims.release(key)
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

    async def _claim_or_wait(self, key: str, fresh_since: str) -> CachedValue | None:
        """None once this process holds the claim on `key` (it must then call and store it,
        or release it), or the entry another process stored while this one looked or waited.

        The entry is looked up again after claiming: another process may have stored it (and
        released its claim, in the same transaction) since this one's first lookup.
        """
        while True:
            try:
                await self._claims.claim(key)
                probe = await self._probes.get((key, fresh_since))
            except BaseException:
                self._claims.release(key)
                raise
            entry, holder = probe or (None, None)
            if holder is not None and holder.owner == self._claims.owner:
                if entry is None:
                    self._claims.hold(key)
                    return None
                self._claims.release(key)
                return entry
            if entry is not None:
                return entry
            if holder is not None and not self._claims.is_live_other(holder):
                await self._claims.drop(key, holder)
                continue
            if holder is None:
                continue  # released (its call failed) between this claim and the look
            entry = await self._wait_for(key, fresh_since)
            if entry is not None:
                return entry

    async def _wait_for(self, key: str, fresh_since: str) -> CachedValue | None:
        """The entry of a call another process makes, or None when it gave up its claim (the
        call failed, the process died or its lease ran out): the caller claims the key then."""
        future: asyncio.Future[CachedValue | None] = asyncio.get_running_loop().create_future()
        self._watched.setdefault((key, fresh_since), []).append(future)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="cache-claims-watch")
        return await future

    async def _watch(self) -> None:
        """Every CLAIM_POLL_S, one look at the entries and claims of every watched key."""
        while self._watched:
            await asyncio.sleep(CLAIM_POLL_S)
            # Waiters that were cancelled need no answer.
            for wanted, futures in list(self._watched.items()):
                if all(future.done() for future in futures):
                    del self._watched[wanted]
            watched = dict(self._watched)
            try:
                probes = await self._probe(list(watched))
            except StorageError as exc:
                for futures in watched.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                for wanted in watched:
                    self._watched.pop(wanted, None)
                continue
            for wanted, futures in watched.items():
                entry, holder = probes.get(wanted) or (None, None)
                if entry is None and self._claims.is_live_other(holder):
                    continue
                for future in futures:
                    if not future.done():
                        future.set_result(entry)
                self._watched.pop(wanted, None)

    async def stats(self) -> CacheStats:
        row = await store.cache_stats(self._db)
        total = row["hits"] + row["misses"]
        return CacheStats(
            hits=row["hits"],
            misses=row["misses"],
            hit_rate=round(row["hits"] / total, 4) if total else 0.0,
            entries=row["entries"],
            bytes=row["bytes"],
        )

    async def clear(self) -> int:
        entries = await store.count_entries(self._db)
        await self._db.write(store.clear_statements())
        return entries
