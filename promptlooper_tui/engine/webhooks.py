"""Webhooks: POST matching events to registered URLs, signed, retried and logged, never in the way.

The dispatcher listens to the event bus through a bounded subscription, so publishing never
waits for it. One fan-out task hands each event to a bounded queue per webhook, and one task per
webhook delivers from its queue in order, so a slow or dead receiver only delays its own
deliveries. A full queue drops the event (for that webhook) and counts it in `dropped`: memory
stays bounded and the engine never slows down. Every attempt is a row in `webhook_deliveries`.

Each event is serialised once; the `X-PromptLooper-Signature` HMAC covers exactly those bytes.
Secrets are stored encrypted (SecretBox) and only decrypted into memory to sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from .. import __version__
from ..domain.errors import BadInput, StorageError
from ..domain.events import EVENT_TYPES, Event
from ..domain.records import DeliveryRecord, WebhookRecord
from ..keystore import SecretBox
from ..store import webhooks as stored_webhooks
from ..store.database import Database, Row
from ..store.timestamps import now_iso
from .events import EventBus, Subscription

if TYPE_CHECKING:
    import httpx

    from .adapters.protocol import Quoter

log = logging.getLogger(__name__)

EVENT_HEADER = "X-PromptLooper-Event"
SIGNATURE_HEADER = "X-PromptLooper-Signature"
_USER_AGENT = f"PromptLooper/{__version__}"


@cache
def _quoter() -> Quoter:
    """Quotes what a receiver says (its reason phrase, an error) safely into the delivery log."""
    from .adapters.protocol import Quoter

    return Quoter(())


# -- validation and records (used by the Workbench) ----------------------------------------------


def check_url(url: str) -> str:
    """`url` stripped, if it is an http(s) URL with a host; otherwise BadInput."""
    import httpx

    text = url.strip()
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or any(char.isspace() for char in text)
        or (parsed.port is not None and not 0 < parsed.port < 65536)
    ):
        raise BadInput(
            f"invalid webhook URL {url!r}: expected http:// or https:// followed by a host, "
            "e.g. https://example.com/hooks/promptlooper"
        )
    return text


def check_event_types(events: Sequence[str] | None) -> list[str]:
    """The event types to deliver, deduplicated (empty = every type); unknown names: BadInput."""
    wanted = list(dict.fromkeys(events or ()))
    unknown = [name for name in wanted if name not in EVENT_TYPES]
    if unknown:
        raise BadInput(
            f"unknown event type{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
            f"valid types: {', '.join(EVENT_TYPES)}"
        )
    return wanted


def sign(key: bytes, body: bytes) -> str:
    """The `X-PromptLooper-Signature` value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def webhook_record(row: Row) -> WebhookRecord:
    """What may be shown of a webhook: never its secret, and its URL's password as ***."""
    from .netguard import redact_url

    return WebhookRecord(
        id=row["id"],
        url=redact_url(row["url"]),
        events=json.loads(row["events"]),
        has_secret=row["secret_encrypted"] is not None,
        created_at=row["created_at"],
    )


def delivery_record(row: Row) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_seq=row["event_seq"],
        event_type=row["event_type"],
        attempt=row["attempt"],
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        delivered=bool(row["delivered"]),
        created_at=row["created_at"],
    )


# -- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hook:
    id: str
    url: str
    events: frozenset[str]
    key: bytes | None
    #: Why a stored secret cannot be used; such a hook is never sent unsigned.
    key_error: str | None = None

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


@dataclass(frozen=True, slots=True)
class _Delivery:
    seq: int
    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    latency_ms: float
    error: str | None
    delivered: bool
    retryable: bool


class _HookWorker:
    """One webhook's bounded queue and the task delivering from it, in order."""

    def __init__(self, hook: _Hook, maxsize: int) -> None:
        self.hook = hook
        self.queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None


class WebhookDispatcher:
    """Delivers bus events to the stored webhooks in the background.

    `await start()` loads the webhooks and subscribes; call `await reload()` after adding or
    removing one; `await aclose(grace)` stops taking events and lets queued deliveries finish
    for up to `grace` seconds. `queue_size` bounds both the bus subscription and each webhook's
    queue; `attempts`, `base_delay` (seconds, doubled per retry, plus jitter) and `timeout`
    (seconds per attempt) shape the retries. The client this creates refuses link-local and
    cloud-metadata destinations (see `netguard`); a passed-in `http` is used as it is.
    """

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        secrets: SecretBox,
        *,
        http: httpx.AsyncClient | None = None,
        queue_size: int = 10_000,
        attempts: int = 3,
        base_delay: float = 0.5,
        timeout: float = 10.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._secrets = secrets
        self._owns_http = http is None
        #: Made by the first delivery when not passed in: most processes never deliver one.
        self._http = http
        self._queue_size = queue_size
        self._attempts = attempts
        self._base_delay = base_delay
        self._timeout = timeout
        self._hooks: dict[str, _Hook] = {}
        self._workers: dict[str, _HookWorker] = {}
        self._subscription: Subscription | None = None
        self._fan_out_task: asyncio.Task[None] | None = None
        self._dropped = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        """Events lost because the dispatcher or a webhook's queue was full."""
        on_bus = self._subscription.dropped if self._subscription is not None else 0
        return on_bus + self._dropped

    async def start(self) -> None:
        """Load the webhooks and start delivering events published from now on."""
        await self.reload()
        self._subscription = self._bus.subscribe(maxsize=self._queue_size, accept=self._wanted)
        self._fan_out_task = asyncio.create_task(self._fan_out(), name="webhooks-fan-out")

    async def reload(self) -> None:
        """Read the webhooks again; a removed webhook's queued deliveries are abandoned."""
        rows = await stored_webhooks.delivery_targets(self._db)
        hooks = {row["id"]: self._load_hook(row) for row in rows}
        for hook_id in self._workers.keys() - hooks.keys():
            worker = self._workers.pop(hook_id)
            if worker.task is not None:
                worker.task.cancel()
        for hook_id, worker in self._workers.items():
            worker.hook = hooks[hook_id]
        self._hooks = hooks

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop taking events; deliver what is queued for up to `grace` seconds, then cancel.

        Safe to call more than once, and without `start()`.
        """
        if self._closed:
            return
        self._closed = True
        if self._subscription is not None:
            self._subscription.close()
            await _cancel(self._fan_out_task)
            for event in self._subscription.drain():
                self._dispatch(event)
        workers = list(self._workers.values())
        if workers:
            await self._finish(workers, grace)
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    async def _finish(self, workers: list[_HookWorker], grace: float) -> None:
        joins = {asyncio.ensure_future(w.queue.join()): w for w in workers}
        _, late = await asyncio.wait(joins, timeout=grace)
        # A worker that has not drained its queue has one delivery in flight besides the rest.
        abandoned = sum(joins[join].queue.qsize() + 1 for join in late)
        if abandoned:
            log.warning("webhooks: %d deliveries abandoned at shutdown", abandoned)
        for join in late:
            join.cancel()
        for worker in workers:
            await _cancel(worker.task)

    # -- fan-out -------------------------------------------------------------------------------

    def _wanted(self, event: Event) -> bool:
        # Runs inside `publish`: with no matching webhook the event is never even queued. An
        # event relayed in from another process is that process's to deliver.
        if event.origin is not None:
            return False
        return any(hook.wants(event.type) for hook in self._hooks.values())

    async def _fan_out(self) -> None:
        assert self._subscription is not None
        while True:
            self._dispatch(await self._subscription.get())

    def _dispatch(self, event: Event) -> None:
        hooks = [hook for hook in self._hooks.values() if hook.wants(event.type)]
        if not hooks:
            return
        try:
            body = json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError):
            log.exception("webhooks: event %d (%s) cannot be serialised", event.seq, event.type)
            return
        delivery = _Delivery(seq=event.seq, type=event.type, body=body)
        for hook in hooks:
            worker = self._workers.get(hook.id) or self._start_worker(hook)
            try:
                worker.queue.put_nowait(delivery)
            except asyncio.QueueFull:
                worker.dropped += 1
                self._dropped += 1
                if worker.dropped == 1:
                    log.warning("webhook %s: queue full, events are being dropped", hook.id)

    def _start_worker(self, hook: _Hook) -> _HookWorker:
        worker = _HookWorker(hook, self._queue_size)
        worker.task = asyncio.create_task(self._work(worker), name=f"webhook-{hook.id}")
        self._workers[hook.id] = worker
        return worker

    async def _work(self, worker: _HookWorker) -> None:
        while True:
            delivery = await worker.queue.get()
            try:
                await self._deliver(worker.hook, delivery)
            except Exception:
                # One bad delivery must not stop this webhook's later ones.
                log.exception(
                    "webhook %s: delivery of event %d failed", worker.hook.id, delivery.seq
                )
            finally:
                worker.queue.task_done()

    # -- one delivery ----------------------------------------------------------------------------

    async def _deliver(self, hook: _Hook, delivery: _Delivery) -> None:
        if hook.key_error is not None:
            await self._record(hook, delivery, 1, _Outcome(None, 0.0, hook.key_error, False, False))
            return
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            EVENT_HEADER: delivery.type,
        }
        if hook.key is not None:
            headers[SIGNATURE_HEADER] = sign(hook.key, delivery.body)
        for attempt in range(1, self._attempts + 1):
            outcome = await self._attempt(hook.url, delivery.body, headers)
            await self._record(hook, delivery, attempt, outcome)
            if not outcome.retryable or attempt == self._attempts:
                return
            await asyncio.sleep(self._backoff(attempt))

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            from .netguard import LinkLocalGuard

            self._http = httpx.AsyncClient(
                follow_redirects=False, event_hooks={"request": [LinkLocalGuard()]}
            )
        return self._http

    async def _attempt(self, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
        import httpx

        from .netguard import BlockedDestination

        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            # The whole attempt is bounded, and the answer's body is never read: a receiver
            # that answers slowly, endlessly or hugely costs one timeout and no memory.
            async with asyncio.timeout(self._timeout):
                async with self._client().stream(
                    "POST", url, content=body, headers=headers, timeout=self._timeout
                ) as response:
                    status, phrase = response.status_code, response.reason_phrase
        except (httpx.TimeoutException, TimeoutError):
            return _Outcome(None, elapsed(), f"timed out after {self._timeout:g} s", False, True)
        except BlockedDestination as exc:
            return _Outcome(None, elapsed(), str(exc), False, False)
        except httpx.RequestError as exc:
            reason = _quoter().quote(str(exc) or type(exc).__name__)
            return _Outcome(None, elapsed(), f"request failed: {reason}", False, True)
        if 200 <= status < 300:
            return _Outcome(status, elapsed(), None, True, False)
        error = f"HTTP {status} {_quoter().quote(phrase, 80)}".rstrip()
        return _Outcome(status, elapsed(), error, False, status == 429 or status >= 500)

    def _backoff(self, attempt: int) -> float:
        delay = self._base_delay * 2 ** (attempt - 1)
        # Jitter spreads the retries of many events that failed at the same moment.
        return delay + random.uniform(0.0, delay / 2)

    async def _record(
        self, hook: _Hook, delivery: _Delivery, attempt: int, outcome: _Outcome
    ) -> None:
        try:
            await self._db.write(
                [
                    stored_webhooks.attempt_statement(
                        hook.id,
                        delivery.seq,
                        delivery.type,
                        attempt,
                        status_code=outcome.status_code,
                        latency_ms=round(outcome.latency_ms, 3),
                        error=outcome.error,
                        delivered=outcome.delivered,
                        created_at=now_iso(),
                    )
                ]
            )
        except StorageError as exc:
            # The webhook may have just been removed (its rows cascade away): keep delivering.
            log.warning("webhook %s: delivery attempt not logged: %s", hook.id, exc)

    def _load_hook(self, row: Row) -> _Hook:
        events = frozenset(json.loads(row["events"]))
        if row["secret_encrypted"] is None:
            return _Hook(row["id"], row["url"], events, None)
        try:
            key = self._secrets.decrypt(row["secret_encrypted"]).encode()
        except BadInput:
            error = (
                "the webhook's secret cannot be decrypted: the secret key ($PROMPTLOOPER_SECRET "
                "or the key file) changed since it was stored; remove the webhook and add it again"
            )
            log.warning("webhook %s: %s", row["id"], error)
            return _Hook(row["id"], row["url"], events, None, error)
        return _Hook(row["id"], row["url"], events, key)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
