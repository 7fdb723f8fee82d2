"""Webhooks end to end: a real Workbench and SQLite file, real receivers over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from promptlooper_tui import __version__
from promptlooper_tui.asgi import serve_app
from promptlooper_tui.domain.errors import BadInput, NotFound
from promptlooper_tui.engine.webhooks import WebhookDispatcher
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import BASE_EXPERIMENT, experiment_yaml


@dataclass
class Receiver:
    """Records every request's headers and raw body; answers with `statuses` in turn, then 200.

    A gated receiver holds every request until `release()`: deliveries to it stay pending.
    """

    statuses: list[int] = field(default_factory=list)
    gate: asyncio.Event | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        if self.gate is not None:
            await self.gate.wait()
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

    def release(self) -> None:
        if self.gate is not None:
            self.gate.set()

    def events(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.requests]


@dataclass
class Harness:
    wb: Workbench
    stack: contextlib.AsyncExitStack
    receivers: list[Receiver] = field(default_factory=list)

    async def receiver(self, *statuses: int, gated: bool = False) -> Receiver:
        receiver = Receiver(list(statuses), asyncio.Event() if gated else None)
        app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
        port = await self.stack.enter_async_context(serve_app(app))
        receiver.url = f"http://127.0.0.1:{port}/hook"
        self.receivers.append(receiver)
        return receiver

    async def flush(self) -> None:
        """Close the dispatcher, letting every queued delivery (and its retries) finish."""
        await self.wb.webhooks.aclose(grace=5.0)


@pytest.fixture
async def hooks(workbench: Workbench) -> AsyncIterator[Harness]:
    """The workbench with a dispatcher using tiny backoff delays, plus receivers to start."""
    await workbench.webhooks.aclose()
    workbench.webhooks = WebhookDispatcher(
        workbench.db, workbench.bus, workbench.secrets, base_delay=0.001
    )
    await workbench.webhooks.start()
    async with contextlib.AsyncExitStack() as stack:
        harness = Harness(workbench, stack)
        try:
            yield harness
        finally:
            for receiver in harness.receivers:
                receiver.release()
            await workbench.webhooks.aclose(grace=1.0)


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def start_sweep(wb: Workbench, **overrides: object) -> str:
    """A sweep of the test experiment cut to one item: 4 configs, 4 runs."""
    imported = await wb.import_text(experiment_yaml(dataset=BASE_EXPERIMENT["dataset"][:1]))
    return await wb.create_sweep(imported.id, SweepOverrides(**overrides))


# -- delivery ------------------------------------------------------------------------------------


async def test_a_signed_delivery_verifies_against_the_raw_body(hooks: Harness) -> None:
    receiver = await hooks.receiver()
    secret = "whsec-" + uuid.uuid4().hex
    hook = await hooks.wb.add_webhook(receiver.url, None, secret)
    event = hooks.wb.bus.publish(
        "run.completed", "exp_1", sweep_id="sw_1", run_id="run_1", data={"note": "héllo ✓"}
    )
    await hooks.flush()

    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-promptlooper-signature"], expected)
    assert json.loads(body) == event.as_dict()
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"PromptLooper/{__version__}"
    assert headers["x-promptlooper-event"] == "run.completed"
    [delivery] = await hooks.wb.webhook_deliveries(hook.id)
    assert (delivery.event_seq, delivery.event_type) == (event.seq, "run.completed")
    assert (delivery.attempt, delivery.status_code, delivery.delivered) == (1, 200, True)
    assert delivery.error is None and delivery.latency_ms > 0


async def test_only_the_chosen_event_types_are_delivered(hooks: Harness) -> None:
    only_final, everything = await hooks.receiver(), await hooks.receiver()
    await hooks.wb.add_webhook(only_final.url, ["sweep.completed"], None)
    await hooks.wb.add_webhook(everything.url, [], None)
    for event_type in ("sweep.started", "run.completed", "sweep.completed"):
        hooks.wb.bus.publish(event_type, "exp_1", sweep_id="sw_1")
    await hooks.flush()

    assert [e["type"] for e in only_final.events()] == ["sweep.completed"]
    assert [e["type"] for e in everything.events()] == [
        "sweep.started",
        "run.completed",
        "sweep.completed",
    ]
    assert all("x-promptlooper-signature" not in h for h, _ in everything.requests)


@pytest.mark.parametrize("statuses", [(500, 500, 200), (429, 503, 200)])
async def test_server_errors_and_429_are_retried_until_delivered(
    hooks: Harness, statuses: tuple[int, ...]
) -> None:
    receiver = await hooks.receiver(*statuses)
    hook = await hooks.wb.add_webhook(receiver.url, None, None)
    hooks.wb.bus.publish("sweep.completed", "exp_1", sweep_id="sw_1")
    await hooks.flush()

    attempts = sorted(await hooks.wb.webhook_deliveries(hook.id), key=lambda d: d.attempt)
    assert [(d.attempt, d.status_code, d.delivered) for d in attempts] == [
        (1, statuses[0], False),
        (2, statuses[1], False),
        (3, 200, True),
    ]
    assert attempts[0].error is not None and attempts[0].error.startswith(f"HTTP {statuses[0]}")
    assert len({body for _, body in receiver.requests}) == 1, "every attempt sends the same bytes"


async def test_a_client_error_is_not_retried(hooks: Harness) -> None:
    receiver = await hooks.receiver(400)
    hook = await hooks.wb.add_webhook(receiver.url, None, None)
    hooks.wb.bus.publish("sweep.completed", "exp_1", sweep_id="sw_1")
    await hooks.flush()

    [delivery] = await hooks.wb.webhook_deliveries(hook.id)
    assert (delivery.attempt, delivery.status_code, delivery.delivered) == (1, 400, False)
    assert delivery.error == "HTTP 400 Bad Request"
    assert len(receiver.requests) == 1


async def test_slow_and_dead_receivers_never_hold_up_a_sweep(hooks: Harness) -> None:
    wb = hooks.wb
    baseline = await wb.run_sweep(await start_sweep(wb, no_cache=True))
    slow = await hooks.receiver(gated=True)
    slow_hook = await wb.add_webhook(slow.url, None, None)
    dead_hook = await wb.add_webhook(closed_port_url(), None, None)

    summary = await wb.run_sweep(await start_sweep(wb, no_cache=True))

    # The sweep behaved exactly as without webhooks, and every run is committed...
    assert summary.status == baseline.status == "completed"
    assert summary.runs == baseline.runs and summary.runs.completed == 4
    assert (await wb.list_runs(sweep=summary.sweep_id)).total == 4
    # ...while the slow receiver still holds its first delivery.
    assert len(slow.requests) <= 1
    assert await wb.webhook_deliveries(slow_hook.id) == []

    slow.release()
    await hooks.flush()
    sent = [e.seq for e in wb.bus.replay() if e.sweep_id == summary.sweep_id]
    assert [e["seq"] for e in slow.events()] == sent
    dead = await wb.webhook_deliveries(dead_hook.id, limit=1000)
    assert len(dead) == 3 * len(sent)
    assert all(d.status_code is None and not d.delivered for d in dead)
    assert all(d.error and d.error.startswith("request failed") for d in dead)


async def test_aclose_delivers_the_final_sweep_completed(hooks: Harness) -> None:
    receiver = await hooks.receiver(gated=True)
    hook = await hooks.wb.add_webhook(receiver.url, ["sweep.completed"], None)
    summary = await hooks.wb.run_sweep(await start_sweep(hooks.wb))
    assert await hooks.wb.webhook_deliveries(hook.id) == [], "still in flight at shutdown"

    receiver.release()
    await hooks.wb.webhooks.aclose(grace=5.0)

    assert [(e["type"], e["sweep_id"]) for e in receiver.events()] == [
        ("sweep.completed", summary.sweep_id)
    ]
    [delivery] = await hooks.wb.webhook_deliveries(hook.id)
    assert delivery.delivered


async def test_aclose_gives_up_after_the_grace_period(hooks: Harness) -> None:
    receiver = await hooks.receiver(gated=True)
    hook = await hooks.wb.add_webhook(receiver.url, None, None)
    hooks.wb.bus.publish("sweep.completed", "exp_1", sweep_id="sw_1")
    await hooks.wb.webhooks.aclose(grace=0.05)
    assert await hooks.wb.webhook_deliveries(hook.id) == []


@pytest.mark.sqlite_only("reads the database file's bytes")
async def test_the_secret_never_reaches_the_database_file(hooks: Harness) -> None:
    receiver = await hooks.receiver()
    secret = "plsecret-" + uuid.uuid4().hex
    hook = await hooks.wb.add_webhook(receiver.url, None, secret)
    hooks.wb.bus.publish("sweep.completed", "exp_1", sweep_id="sw_1")
    await hooks.flush()
    assert [d.delivered for d in await hooks.wb.webhook_deliveries(hook.id)] == [True]

    db_path = hooks.wb.settings.db_path
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    stored = b"".join(path.read_bytes() for path in files if path.exists())
    assert hook.id.encode() in stored, "the files read do hold the webhook"
    assert secret.encode() not in stored


# -- management ----------------------------------------------------------------------------------


async def test_webhooks_are_listed_without_their_secret_and_removed(hooks: Harness) -> None:
    wb = hooks.wb
    signed = await wb.add_webhook(" https://example.com/a ", ["run.failed", "run.failed"], "s3")
    plain = await wb.add_webhook("http://127.0.0.1:9/b", None, None)
    assert (signed.url, signed.events, signed.has_secret) == (
        "https://example.com/a",
        ["run.failed"],
        True,
    )
    listed = await wb.list_webhooks()
    assert {w.id: w.has_secret for w in listed} == {signed.id: True, plain.id: False}
    assert "s3" not in json.dumps([w.model_dump() for w in listed])

    await wb.remove_webhook(signed.id)
    assert [w.id for w in await wb.list_webhooks()] == [plain.id]
    with pytest.raises(NotFound):
        await wb.remove_webhook(signed.id)
    with pytest.raises(NotFound):
        await wb.webhook_deliveries(signed.id)


async def test_a_removed_webhook_gets_nothing_more(hooks: Harness) -> None:
    receiver = await hooks.receiver()
    hook = await hooks.wb.add_webhook(receiver.url, None, None)
    await hooks.wb.remove_webhook(hook.id)
    hooks.wb.bus.publish("sweep.completed", "exp_1", sweep_id="sw_1")
    await hooks.flush()
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "example.com/hook", "http://", "https:///p", "http://a b/", ""],
)
async def test_only_http_urls_with_a_host_are_accepted(workbench: Workbench, url: str) -> None:
    with pytest.raises(BadInput, match="invalid webhook URL"):
        await workbench.add_webhook(url, None, None)


async def test_unknown_event_types_are_refused_naming_the_valid_ones(
    workbench: Workbench,
) -> None:
    with pytest.raises(BadInput) as caught:
        await workbench.add_webhook("https://example.com/a", ["run.done"], None)
    assert "'run.done'" in str(caught.value) and "sweep.completed" in str(caught.value)
    assert await workbench.list_webhooks() == []
