"""What an endpoint does beyond answering reaches the user: 429s and waits, answers cut at
max_tokens, streams that end without saying why, usage that was ignored. Real servers on
127.0.0.1 (the scripted fake, the built-in simulated endpoint)."""

from __future__ import annotations

import csv
import email.utils
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pydantic
import pytest
import pytest_asyncio

from promptlooper_tui.domain.errors import EndpointError
from promptlooper_tui.domain.events import Event
from promptlooper_tui.domain.experiment import SweepSettings
from promptlooper_tui.engine.adapters.openai import OpenAIClient, RetryPolicy
from promptlooper_tui.engine.adapters.retry import requested_wait
from promptlooper_tui.engine.concurrency import RateLimitMeter
from promptlooper_tui.engine.events import Subscription
from promptlooper_tui.workbench import SweepOverrides, Workbench
from tests.fixtures.fake_llm import (
    FakeLLM,
    Reply,
    fake_llm_fixture,  # noqa: F401  (provides the `fake_llm` fixture)
    json_body,
    rate_limited,
)

from ..conftest import experiment_yaml

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limit_floor=0.001)
MESSAGES = [{"role": "user", "content": "Say hello"}]
PARAMS = {"model": "fake-chat"}
ITEM = {"input": {"question": "Q?", "article": "A."}, "keywords": ["Hello"]}


@pytest_asyncio.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[OpenAIClient]:
    async with OpenAIClient(fake_llm.base_url, retry=FAST) as client:
        yield client


def sse(*chunks: dict[str, Any], done: bool = True) -> Reply:
    """An event stream of exactly these chunks (then `[DONE]` when `done`), closed cleanly."""
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    body += "data: [DONE]\n\n" if done else ""
    return Reply(raw=body.encode(), content_type="text/event-stream")


def delta(content: str, finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}
    return {"choices": [choice]}


def fake_experiment(fake_llm: FakeLLM, items: int = 1, **changes: Any) -> str:
    """One config of the fake model over `items` distinct items, no scorers."""
    return experiment_yaml(
        endpoint=changes.pop("endpoint", {"base_url": fake_llm.base_url}),
        parameters={"model": "fake-chat", "max_tokens": 60},
        dataset=[{**ITEM, "input": {"question": f"Q{i}?", "article": "A."}} for i in range(items)],
        scorers=[],
        **changes,
    )


async def new_sweep(wb: Workbench, text: str, **overrides: Any) -> str:
    imported = await wb.import_text(text)
    return await wb.create_sweep(imported.id, SweepOverrides(**overrides))


async def next_event(events: Subscription, type: str, **wanted: Any) -> Event:
    """The next event of `type` whose data holds `wanted`."""
    while True:
        event = await events.get()
        if event.type == type and all(event.data.get(k) == v for k, v in wanted.items()):
            return event


# --- streams that end without saying why ----------------------------------------------------


async def test_a_stream_with_done_but_no_finish_reason_is_retried_as_a_cut_stream(
    client: OpenAIClient, fake_llm: FakeLLM
) -> None:
    cut = sse(delta("Hello"), delta(" wor"))
    fake_llm.script(cut, Reply())
    result = await client.chat(MESSAGES, PARAMS, stream=True)
    assert (result.text, result.attempts, result.finish_reason) == (
        "Hello from the fake model",
        2,
        "stop",
    )
    fake_llm.script(cut, cut, cut)
    with pytest.raises(EndpointError, match="after 3 attempts: stream ended after 2 chunks "):
        await client.chat(MESSAGES, PARAMS, stream=True)


async def test_a_stream_closed_cleanly_without_finish_reason_or_done_is_an_error(
    client: OpenAIClient, fake_llm: FakeLLM
) -> None:
    cut = sse(delta("Hello"), delta(" wor"), done=False)
    fake_llm.script(cut, cut, cut)
    with pytest.raises(EndpointError, match="stream cut after 2 chunks: no \\[DONE\\]") as caught:
        await client.chat(MESSAGES, PARAMS, stream=True)
    assert caught.value.retryable


async def test_a_stream_that_stops_at_max_tokens_says_length(
    client: OpenAIClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(sse(delta("Hello"), delta(" wor", "length")))
    result = await client.chat(MESSAGES, PARAMS, stream=True)
    assert (result.text, result.finish_reason, result.attempts) == ("Hello wor", "length", 1)


async def test_a_cut_stream_is_never_cached_and_fails_its_run(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    cut = sse(delta("Hello"), delta(" wor"))
    fake_llm.script(cut, cut, cut)
    sweep_id = await new_sweep(workbench, fake_experiment(fake_llm, sweep={"stream": True}))
    summary = await workbench.run_sweep(sweep_id)
    assert summary.runs.failed == 1
    (run,) = (await workbench.list_runs(sweep=sweep_id)).items
    assert "without a finish reason" in (run.error or "")
    assert (await workbench.cache_stats()).entries == 0
    asked = len(fake_llm.requests)
    again = await workbench.run_sweep(sweep_id, retry_failed=True)
    assert again.runs.completed == 1 and len(fake_llm.requests) == asked + 1
    detail = await workbench.get_run(run.id)
    assert detail.stages[0].output == "Hello from the fake model"
    assert detail.stages[0].finish_reason == "stop" and not detail.truncated


# --- truncation ------------------------------------------------------------------------------


async def test_an_answer_cut_at_max_tokens_marks_the_run_truncated_cached_or_not(
    workbench: Workbench,
) -> None:
    # The built-in simulated endpoint stops at max_tokens with finish_reason "length".
    text = experiment_yaml(parameters={"model": "small-model", "max_tokens": 2})
    events = workbench.bus.subscribe(accept=lambda e: e.type == "run.completed")
    first = await workbench.run_sweep(await new_sweep(workbench, text))
    assert first.runs.completed == 3
    assert all(event.data["truncated"] is True for event in events.drain())
    second_id = await new_sweep(workbench, text)
    second = await workbench.run_sweep(second_id)
    assert second.runs.cached == 3
    page = await workbench.list_runs(sweep=second_id)
    assert [run.truncated for run in page.items] == [True] * 3
    detail = await workbench.get_run(page.items[0].id)
    (stage,) = detail.stages
    assert stage.cached and stage.finish_reason == "length"
    rows = await workbench.db.fetchall(
        "SELECT count(*) AS n FROM runs WHERE sweep_id = ? AND truncated = 1", (second_id,)
    )
    assert rows[0]["n"] == 3
    out = io.StringIO()
    await workbench.export("support", "jsonl", out, sweep=second_id)
    assert [json.loads(line)["truncated"] for line in out.getvalue().splitlines()] == [True] * 3
    csv_out = io.StringIO()
    await workbench.export("support", "csv", csv_out, sweep=second_id)
    rows_csv = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    assert [row["truncated"] for row in rows_csv] == ["true"] * 3


async def test_a_complete_answer_is_not_truncated(workbench: Workbench) -> None:
    sweep_id = await new_sweep(workbench, experiment_yaml())
    await workbench.run_sweep(sweep_id)
    page = await workbench.list_runs(sweep=sweep_id, limit=100)
    assert not any(run.truncated for run in page.items)
    detail = await workbench.get_run(page.items[0].id)
    assert detail.stages[0].finish_reason == "stop"


# --- usage warnings --------------------------------------------------------------------------


async def test_usage_warnings_are_kept_on_the_stage_cached_or_not(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    answer = {
        "choices": [{"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": -5, "completion_tokens": 2},
    }
    fake_llm.script(json_body(answer))
    text = fake_experiment(fake_llm)
    for _ in range(2):  # the second sweep is served from the cache
        sweep_id = await new_sweep(workbench, text)
        await workbench.run_sweep(sweep_id)
        (run,) = (await workbench.list_runs(sweep=sweep_id)).items
        (stage,) = (await workbench.get_run(run.id)).stages
        assert stage.warnings == [
            "the endpoint reported usage.prompt_tokens = -5, not a plausible token count; "
            "estimated instead"
        ]
    assert stage.cached and len(fake_llm.requests) == 1


# --- rate limits -----------------------------------------------------------------------------


async def test_a_rate_limited_sweep_shows_its_429s_and_wait_in_events_and_status(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    fake_llm.script(rate_limited(30))
    sweep_id = await new_sweep(workbench, fake_experiment(fake_llm), concurrency=1)
    events = workbench.bus.subscribe(accept=lambda e: e.sweep_id == sweep_id)
    task = await workbench.start_sweep(sweep_id)
    event = await next_event(events, "sweep.rate_limited", waiting_calls=1)
    assert event.data["responses_429"] == 1 and 20 < event.data["waiting_s"] <= 33
    status = await workbench.sweep_summary(sweep_id)
    assert status.rate_limits.responses_429 == 1 and status.rate_limits.waiting_calls == 1
    assert 20 < status.rate_limits.waiting_s <= 33
    dumped = status.model_dump(mode="json")["rate_limits"]
    assert set(dumped) == {"responses_429", "waiting_s", "waiting_calls"}
    await workbench.stop_sweep(sweep_id)
    assert await task == "stopped"
    stopped = await workbench.sweep_summary(sweep_id)
    assert stopped.rate_limits.model_dump() == {
        "responses_429": 1,
        "waiting_s": 0.0,
        "waiting_calls": 0,
    }
    resumed = await workbench.run_sweep(sweep_id)
    assert resumed.status == "completed" and resumed.rate_limits.responses_429 == 1


async def test_rate_limit_events_come_at_most_once_a_second_and_end_with_the_totals(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    fake_llm.script(*[rate_limited(0)] * 6)
    sweep_id = await new_sweep(workbench, fake_experiment(fake_llm, items=6), concurrency=6)
    events = workbench.bus.subscribe(accept=lambda e: e.type == "sweep.rate_limited")
    summary = await workbench.run_sweep(sweep_id)
    assert summary.runs.completed == 6 and summary.rate_limits.responses_429 == 6
    noted = events.drain()
    stamps = [datetime.fromisoformat(event.ts) for event in noted]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)]
    assert noted and all(gap >= 0.9 for gap in gaps), gaps
    assert noted[-1].data == {"responses_429": 6, "waiting_s": 0.0, "waiting_calls": 0}


async def test_the_sweep_setting_caps_the_wait_and_wins_over_the_endpoint(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    await workbench.add_endpoint("capped", fake_llm.base_url, rate_limit_wait_s=1)
    # The endpoint's cap alone: a 5 s Retry-After is more than 1 s allows, so it gives up.
    fake_llm.script(rate_limited(5))
    text = fake_experiment(fake_llm, endpoint="capped")
    failed = await workbench.run_sweep(await new_sweep(workbench, text))
    (run,) = (await workbench.list_runs(sweep=failed.sweep_id)).items
    assert "more than the rate-limit wait cap of 1 s allows" in (run.error or "")
    assert "sweep.rate_limit_wait_s" in (run.error or "")
    # The sweep's setting wins: 1.2 s asked, 10 s allowed.
    fake_llm.script(rate_limited(1.2))
    text = fake_experiment(fake_llm, endpoint="capped", sweep={"rate_limit_wait_s": 10})
    done = await workbench.run_sweep(await new_sweep(workbench, text))
    assert done.runs.completed == 1 and done.rate_limits.responses_429 == 1
    # ...and when it is the smaller one.
    await workbench.add_endpoint("patient", fake_llm.base_url, rate_limit_wait_s=3600)
    fake_llm.script(rate_limited(5))
    text = fake_experiment(fake_llm, endpoint="patient", sweep={"rate_limit_wait_s": 1})
    asked = len(fake_llm.requests)
    short = await workbench.run_sweep(await new_sweep(workbench, text, no_cache=True))
    (run,) = (await workbench.list_runs(sweep=short.sweep_id)).items
    assert "more than the rate-limit wait cap of 1 s allows" in (run.error or "")
    assert len(fake_llm.requests) == asked + 1, "gave up at once, without waiting 5 s"


@pytest.mark.parametrize("value", [0, 0.5, 86_401, -1])
def test_the_rate_limit_wait_setting_has_bounds(value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match="rate_limit_wait_s"):
        SweepSettings(rate_limit_wait_s=value)
    assert SweepSettings(rate_limit_wait_s=1).rate_limit_wait_s == 1
    assert SweepSettings().rate_limit_wait_s is None


def test_the_meter_knows_who_waits_and_for_how_long() -> None:
    now = [100.0]
    meter = RateLimitMeter(clock=lambda: now[0])
    changes: list[int] = []
    meter.on_change = lambda: changes.append(meter.waiting_calls)
    meter.on_429()
    with meter.waiting(12.0), meter.waiting(3.0):
        now[0] += 2
        assert (meter.waiting_calls, meter.waiting_s()) == (2, 10.0)
    assert (meter.responses_429, meter.waiting_calls, meter.waiting_s()) == (1, 0, 0.0)
    assert changes == [0, 1, 2, 1, 0]


# --- the wait headers providers send ---------------------------------------------------------


def test_wait_headers_of_azure_dates_ahead_and_unix_reset_times_are_read() -> None:
    ahead = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (requested_wait({"retry-after": ahead}) or 0) <= 30
    assert requested_wait({"x-ms-retry-after-ms": "2500"}) == 2.5
    # Some proxies send the reset as a Unix time instead of a duration.
    reset = requested_wait({"x-ratelimit-reset-requests": str(int(time.time()) + 20)})
    assert reset is not None and 15 <= reset <= 20
    assert requested_wait({"x-ratelimit-reset-tokens": "1700000000"}) == 0  # in the past


async def test_a_retry_after_date_ahead_is_waited_for(
    client: OpenAIClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(rate_limited(email.utils.formatdate(time.time() + 2, usegmt=True)))
    meter = RateLimitMeter()
    started = time.monotonic()
    result = await client.chat(MESSAGES, PARAMS, rate_limits=meter)
    # HTTP dates have whole seconds: "2 s from now" is between 1 and 2 s away.
    assert result.attempts == 1 and time.monotonic() - started >= 0.9
    assert meter.responses_429 == 1 and meter.waiting_calls == 0
