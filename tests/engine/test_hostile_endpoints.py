"""OpenAIClient against a hostile server on 127.0.0.1 (tests/fixtures/hostile_llm.py): answers too
big, too slow or endless; 429 storms; nonsense usage; keys echoed back. Every call must end with
a clear error within its bounds, in bounded memory, and keep no secret.

Time bounds here are lower bounds that sleeping guarantees, or upper bounds far above what the
code needs, so a loaded machine cannot make them flaky.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.domain.errors import EndpointError
from promptlooper_tui.engine.adapters.openai import OpenAIClient, ResponseLimits, RetryPolicy
from promptlooper_tui.engine.adapters.retry import duration_seconds, human_duration, requested_wait
from promptlooper_tui.settings import Settings
from promptlooper_tui.workbench import SweepOverrides, open_workbench

from ..fixtures.hostile_llm import (
    MIB,
    HostileLLM,
    bad_usage,
    drip,
    echo_key,
    endless_body,
    endless_sse,
    hostile_fixture,  # noqa: F401
    huge_body,
    ok,
    page,
    rate_limited,
)
from ..helpers import cli

KEY = "sk-hostile-" + "0123456789abcdef" * 2
MESSAGES = [{"role": "user", "content": "Say hello"}]
PARAMS = {"model": "hostile-chat"}
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limit_floor=0.001)
#: Generous: what a loaded 2-core machine needs at worst for calls that take well under 1 s.
SLACK = 20.0


async def _fails(
    base_url: str,
    *,
    limits: ResponseLimits | None = None,
    retry: RetryPolicy = FAST,
    stream: bool = False,
) -> tuple[str, float]:
    """The error message of one chat call, and how long the call took."""
    started = time.perf_counter()
    async with OpenAIClient(base_url, KEY, retry=retry, limits=limits or ResponseLimits()) as c:
        with pytest.raises(EndpointError) as caught:
            await c.chat(MESSAGES, PARAMS, stream=stream)
    return str(caught.value), time.perf_counter() - started


# --- size cap ------------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
async def test_a_50_mb_answer_is_cut_at_the_cap_in_bounded_memory(
    hostile: HostileLLM, declare_length: bool
) -> None:
    url = hostile.base_url(huge_body(50 * MIB, declare_length=declare_length))
    tracemalloc.start()
    try:
        message, _ = await _fails(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "8 MiB response size cap" in message and "not retried" in message, message
    assert "failed after 1 attempt:" in message
    # The body is read up to the 8 MiB cap and dropped: never the 50 MB.
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert len(hostile.requests(url)) == 1


@pytest.mark.parametrize(
    ("scenario", "stream"),
    [(endless_body(), False), (endless_sse(), True)],
    ids=["endless-body", "endless-sse"],
)
async def test_an_endless_answer_ends_at_a_configured_cap(
    hostile: HostileLLM, scenario: object, stream: bool
) -> None:
    url = hostile.base_url(scenario)  # type: ignore[arg-type]
    limits = ResponseLimits(max_bytes=1 * MIB, deadline=60)
    tracemalloc.start()
    try:
        message, took = await _fails(url, limits=limits, stream=stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "1 MiB response size cap" in message, message
    assert took < 60, "the cap, not the deadline, should have ended it"
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"


async def test_a_drip_slower_than_the_idle_timeout_is_retried_then_reported(
    hostile: HostileLLM,
) -> None:
    # One byte per 100 s is the real-world shape; 5 s against a 0.2 s idle timeout is the same.
    url = hostile.base_url(drip(interval=5.0))
    message, took = await _fails(url, limits=ResponseLimits(idle_timeout=0.2, deadline=60))
    assert "failed after 3 attempts: no progress within 0.2 s (idle timeout" in message, message
    assert len(hostile.requests(url)) == 3
    assert took < SLACK


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_drip_faster_than_the_idle_timeout_ends_at_the_deadline(
    hostile: HostileLLM, stream: bool
) -> None:
    url = hostile.base_url(drip(interval=0.02, sse=stream))
    limits = ResponseLimits(idle_timeout=30, deadline=0.5)
    message, took = await _fails(url, limits=limits, stream=stream)
    assert "failed after 1 attempt: no complete answer within the 0.5 s deadline" in message
    assert "not retried" in message
    assert 0.5 <= took < SLACK


# --- 429 storms -----------------------------------------------------------------------------


async def test_retry_after_zero_never_retries_faster_than_the_growing_floor(
    hostile: HostileLLM,
) -> None:
    url = hostile.base_url(rate_limited({"Retry-After": "0"}))
    policy = RetryPolicy(rate_limit_floor=0.25, rate_limit_floor_max=1.0, rate_limit_cap=2.0)
    message, took = await _fails(url, retry=policy)
    arrivals = [a.at for a in hostile.requests(url)]
    # Waits 0.25, 0.5, 1.0 (each + up to 10% jitter) = at most 1.925 s; the next 1.0 s would
    # pass the 2 s cap, so the call gives up after 4 answers.
    assert len(arrivals) == 4
    assert message.startswith(f"rate limited for 2 s by {url}; giving up after 4 answers"), message
    assert took >= 0.25 + 0.5 + 1.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # Half the floor leaves room for a late arrival on a busy machine; 0 s is what Retry-After
    # asked for.
    assert all(gap >= floor / 2 for gap, floor in zip(gaps, [0.25, 0.5, 1.0], strict=True)), gaps


async def test_a_huge_retry_after_is_reported_truthfully_and_not_waited(
    hostile: HostileLLM,
) -> None:
    url = hostile.base_url(rate_limited({"Retry-After": "1000000000"}))
    message, took = await _fails(url, retry=RetryPolicy())
    assert "the endpoint asked to wait 11,574 days" in message, message
    assert "giving up" in message and "HTTP 429" in message
    assert len(hostile.requests(url)) == 1
    assert took < SLACK


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after-ms": "300"},
        {"llm_provider-retry-after": "0.3"},
        {"x-ratelimit-reset-requests": "0.3s", "x-ratelimit-remaining-requests": "0"},
    ],
    ids=["retry-after-ms", "litellm", "openai-reset"],
)
async def test_rate_limit_header_variants_are_honoured(
    hostile: HostileLLM, headers: dict[str, str]
) -> None:
    url = hostile.base_url(rate_limited(headers))
    policy = RetryPolicy(rate_limit_floor=0.001, rate_limit_cap=0.5)
    message, took = await _fails(url, retry=policy)
    # 0.3 s asked: one wait fits the 0.5 s cap, the second does not.
    assert len(hostile.requests(url)) == 2, message
    assert took >= 0.3


def test_requested_wait_reads_every_header_shape() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"  # in the past: no wait
    assert requested_wait({"retry-after": "7"}) == 7
    assert requested_wait({"retry-after": date}) == 0
    assert requested_wait({"retry-after-ms": "1500", "retry-after": "60"}) == 1.5
    assert requested_wait({"llm_provider-retry-after": "60"}) == 60
    assert requested_wait({"retry-after": "nan"}) is None
    assert requested_wait({"retry-after": "-3"}) == 0
    assert requested_wait({"retry-after": "soon"}) is None
    assert requested_wait({}) is None
    both = {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}
    assert requested_wait(both) == 360
    exhausted = {**both, "x-ratelimit-remaining-requests": "0"}
    assert requested_wait(exhausted) == 1
    assert duration_seconds("1h2m3.5s") == 3723.5
    assert duration_seconds("20ms") == 0.02
    assert duration_seconds("6m0sx") is None
    assert human_duration(1e9) == "11,574 days"
    assert human_duration(45) == "45 s"


# --- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("raw", ["-5", "1e308", '"abc"', "NaN", "Infinity", "12.5", "true"])
async def test_nonsense_usage_is_ignored_with_a_warning(
    hostile: HostileLLM, raw: str, stream: bool
) -> None:
    url = hostile.base_url(bad_usage(raw))
    async with OpenAIClient(url, KEY, retry=FAST) as client:
        result = await client.chat(MESSAGES, PARAMS, stream=stream)
    # Estimated from the words instead: small, whole and finite.
    assert 0 <= result.tokens_in < 100 and 0 < result.tokens_out < 100
    assert result.warnings and "not a plausible token count" in result.warnings[0]
    assert "usage.prompt_tokens" in result.warnings[0]


async def test_plausible_usage_is_kept_without_warnings(hostile: HostileLLM) -> None:
    async with OpenAIClient(hostile.base_url(ok()), KEY, retry=FAST) as client:
        result = await client.chat(MESSAGES, PARAMS)
    assert (result.tokens_in, result.tokens_out, result.warnings) == (7, 5, ())


def test_a_sweep_against_nonsense_usage_leaves_every_command_working(
    tmp_path: Path, hostile: HostileLLM
) -> None:
    url = hostile.base_url(bad_usage("-5", "1e308", '"abc"', "NaN", "123456789012345678901"))
    home = tmp_path / "home"
    spec = {
        "name": "nonsense-usage",
        "endpoint": {"base_url": url},
        "parameters": {"model": ["m"], "temperature": [0.0, 0.5], "max_tokens": 20},
        "pipeline": [{"name": "reply", "user": "Question {{ item.input.n }}?"}],
        "dataset": [{"input": {"n": n}} for n in range(5)],
        "scorers": [{"type": "format", "format": "length", "min_tokens": 1, "max_tokens": 50}],
        "sweep": {"max_concurrency": 2},
    }
    path = tmp_path / "usage.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = cli(home, "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["runs"]["completed"] == 10
    assert 0 < summary["tokens"]["input"] < 10_000
    assert summary["cost"] is None and summary["unpriced_models"] == ["m"]  # no price given
    for args in (
        ("experiments", "list"),
        ("experiments", "list", "--json"),
        ("sweeps", "list"),
        ("sweeps", "list", "--json"),
        ("leaderboard", "nonsense-usage", "--json"),
        *(("export", "nonsense-usage", "--format", f) for f in ("json", "report", "csv", "jsonl")),
    ):
        done = cli(home, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr and "NaN" not in done.stdout, args


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "stream"),
    [
        ("error", False),
        ("text_error", False),
        ("stream_error", True),
        ("redirect", False),
    ],
)
async def test_a_key_echoed_in_an_error_is_scrubbed_before_it_is_cut(
    hostile: HostileLLM, where: str, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Ours at DEBUG; httpcore's own DEBUG traces print raw response headers (off by default).
    caplog.set_level(logging.DEBUG, logger="promptlooper_tui")
    message, _ = await _fails(hostile.base_url(echo_key(where)), stream=stream)
    for text in (message, caplog.text):
        assert all(KEY[:n] not in text for n in range(8, len(KEY) + 1)), text


@pytest.mark.parametrize(("where", "stream"), [("text", False), ("stream_text", True)])
async def test_a_key_echoed_in_the_completion_text_is_scrubbed(
    hostile: HostileLLM, where: str, stream: bool
) -> None:
    async with OpenAIClient(hostile.base_url(echo_key(where)), KEY, retry=FAST) as client:
        result = await client.chat(MESSAGES, PARAMS, stream=stream)
    assert KEY not in result.text and "[API key]" in result.text


async def test_a_key_echoed_in_model_ids_is_scrubbed_and_ids_are_bounded(
    hostile: HostileLLM,
) -> None:
    async with OpenAIClient(hostile.base_url(echo_key("models")), KEY, retry=FAST) as client:
        models = await client.list_models()
        report = await client.test_connection()
    for listed in (models, report.models):
        assert listed[:2] == ["gpt-fake", "leak-[API key]"]
        assert all(KEY[:8] not in model and len(model) <= 203 for model in listed), listed


async def test_a_password_in_the_base_url_is_never_shown(hostile: HostileLLM) -> None:
    url = hostile.base_url(echo_key("error"))
    with_password = url.replace("http://", "http://alice:pw-0123456789@")
    message, _ = await _fails(with_password)
    assert "pw-0123456789" not in message
    assert "http://alice:***@127.0.0.1" in message
    async with OpenAIClient(with_password, KEY) as client:
        assert "pw-0123456789" not in repr(client)


# --- the connection test ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (
            page(200, "text/html", b"<html><body>internal admin SECRET-BODY</body></html>"),
            "answered with an HTML page, not an OpenAI-compatible API (HTTP 200, text/html)",
        ),
        (
            page(200, "application/json", b'{"instance": "SECRET-BODY"}'),
            "does not look like an OpenAI-compatible API (HTTP 200, application/json)",
        ),
        (
            page(200, "text/plain", b"SECRET-BODY"),
            "does not look like an OpenAI-compatible API (HTTP 200, text/plain)",
        ),
        (
            page(500, "text/plain", b"SECRET-BODY"),
            "answered HTTP 500, text/plain, not an OpenAI-style error",
        ),
    ],
    ids=["html", "other-json", "text", "500-text"],
)
async def test_a_non_openai_answer_is_described_by_status_and_type_only(
    hostile: HostileLLM, scenario: object, expected: str, tmp_path: Path
) -> None:
    url = hostile.base_url(scenario)  # type: ignore[arg-type]
    async with open_workbench(Settings(tmp_path / "home")) as wb:
        await wb.add_endpoint("internal", url)
        result = await wb.test_endpoint("internal")
    assert not result.ok and result.error is not None
    assert expected in result.error, result.error
    assert "SECRET-BODY" not in result.error


async def test_an_echoed_key_and_a_url_password_reach_no_file_output_or_webhook(
    tmp_path: Path, hostile: HostileLLM
) -> None:
    """The server quotes the key in completion text, model ids and error bodies; one endpoint's
    URL carries a password. Neither appears in the database (nor its WAL), exports, webhook
    bodies, events or anything the CLI prints."""
    home, exports = tmp_path / "home", tmp_path / "exports"
    exports.mkdir()
    password = "pw-" + "9" * 12
    bodies: list[bytes] = []

    async def receive(request: Request) -> Response:
        bodies.append(await request.body())
        return Response()

    texts = hostile.base_url(echo_key("text"))
    failing = hostile.base_url(echo_key("error")).replace("http://", f"http://al:{password}@")
    models = hostile.base_url(echo_key("models"))
    spec = {
        "name": "echoes",
        "endpoint": "texts",
        "parameters": {"model": ["m"], "temperature": [0.0, 0.5], "max_tokens": 20},
        "pipeline": [{"name": "reply", "user": "Question {{ item.input.n }}?"}],
        "dataset": [{"input": {"n": n}, "keywords": ["Settings"]} for n in range(3)],
        "scorers": [{"type": "keyword", "required_present_from": "keywords"}],
        "sweep": {"max_concurrency": 2},
    }
    path = tmp_path / "echoes.yaml"
    path.write_text(yaml.safe_dump(spec))
    failing_path = tmp_path / "failing.yaml"
    failing_path.write_text(yaml.safe_dump({**spec, "name": "fails", "endpoint": "failing"}))
    outputs: list[str] = []

    async def run(*args: str, stdin: str | None = None) -> str:
        done = await asyncio.to_thread(cli, home, *args, stdin=stdin)
        outputs.append(done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    async with serve_app(app) as port:
        for name, url in (("texts", texts), ("failing", failing), ("models", models)):
            await run("endpoints", "add", name, "--base-url", url, "--api-key-stdin", stdin=KEY)
        await run("webhooks", "add", f"http://al:{password}@127.0.0.1:{port}/hook")
        await run("webhooks", "list")
        await run("endpoints", "list")
        await run("endpoints", "list", "--json")
        for name in ("models", "failing"):
            await run("endpoints", "test", name)
            await run("endpoints", "test", name, "--json")
        await run("run", str(path), "--json")
        await run("run", str(failing_path), "--json")
        for ref in ("echoes", "fails"):
            runs = json.loads(await run("runs", "list", "--experiment", ref, "--json"))["items"]
            await run("runs", "show", runs[0]["id"])
            await run("runs", "show", runs[0]["id"], "--json")
            await run("export", ref, "--format", "jsonl", "-o", str(exports / f"{ref}.jsonl"))
            await run("export", ref, "--format", "report")
        await run("sweeps", "list", "--json")
        await run("webhooks", "deliveries", "--json")
        async with open_workbench(Settings(home)) as wb:
            sweep_id = await wb.create_sweep("echoes", SweepOverrides(no_cache=True))
            await wb.run_sweep(sweep_id)
            events = [json.dumps(event.as_dict()) for event in wb.bus.replay()]
            live = {p: p.read_bytes() for p in home.iterdir() if p.is_file()}

    assert any(b"[API key]" in content for content in live.values()), "no scrubbed echo stored"
    assert any(p.name.endswith("-wal") for p in live) and bodies and events
    files = {p: p.read_bytes() for p in [*home.rglob("*"), *exports.rglob("*")] if p.is_file()}
    haystacks = {
        **{f"file {p}": c for p, c in files.items()},
        **{f"live {p}": c for p, c in live.items()},
        **{f"webhook body {i}": b for i, b in enumerate(bodies)},
        **{f"event {i}": e.encode() for i, e in enumerate(events)},
        **{f"output {i}": o.encode() for i, o in enumerate(outputs)},
    }
    leaks = [where for where, text in haystacks.items() if KEY.encode() in text]
    assert not leaks, f"the echoed key leaked into {leaks}"
    # The password is in the endpoint and webhook rows themselves (they need it), nowhere else.
    shown = [where for where, text in haystacks.items() if password.encode() in text]
    assert all(where.startswith(("file", "live")) for where in shown), shown
    assert any("al:***@127.0.0.1" in output for output in outputs)
