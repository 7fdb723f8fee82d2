"""OpenAIClient against a real scripted server on 127.0.0.1: answers, retries, 429s, faults."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import json
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from promptlooper_tui import __version__
from promptlooper_tui.domain.errors import BadInput, EndpointError
from promptlooper_tui.engine.adapters.openai import OpenAIClient, ResponseLimits, RetryPolicy
from promptlooper_tui.engine.concurrency import AdaptiveLimiter
from tests.fixtures.fake_llm import (
    MODELS,
    FakeLLM,
    Reply,
    fake_llm_fixture,  # noqa: F401  (provides the `fake_llm` fixture)
    html_page,
    json_body,
    malformed_json,
    no_usage,
    rate_limited,
    slow,
    status,
    stream_cut,
    stream_without_done,
)

KEY = "sk-test-0123456789abcdef"
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limit_floor=0.001)
MESSAGES = [{"role": "user", "content": "Say hello"}]
PARAMS = {"model": "fake-chat", "temperature": 0.2, "seed": None}


@pytest_asyncio.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[OpenAIClient]:
    async with OpenAIClient(fake_llm.base_url, KEY, retry=FAST) as client:
        yield client


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- answers -------------------------------------------------------------------------------


async def test_chat_parses_answer_and_usage(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    result = await client.chat(MESSAGES, PARAMS)
    assert (result.text, result.tokens_in, result.tokens_out) == (
        "Hello from the fake model",
        11,
        5,
    )
    assert (result.finish_reason, result.attempts) == ("stop", 1)
    assert result.latency_ms > 0
    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.json == {"model": "fake-chat", "temperature": 0.2, "messages": MESSAGES}


async def test_chat_stream_joins_deltas_and_reads_usage(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(Reply(text="one two three", prompt_tokens=9, completion_tokens=3))
    result = await client.chat(MESSAGES, PARAMS, stream=True)
    assert (result.text, result.tokens_in, result.tokens_out) == ("one two three", 9, 3)
    assert (result.finish_reason, result.attempts) == ("stop", 1)
    body = fake_llm.requests[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_missing_usage_is_estimated(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    stream: bool,
) -> None:
    fake_llm.script(no_usage())
    result = await client.chat(MESSAGES, PARAMS, stream=stream)
    assert result.text == "Hello from the fake model"
    assert (result.tokens_in, result.tokens_out, result.attempts) == (3, 7, 1)


async def test_bearer_token_is_sent_and_trailing_slash_tolerated(fake_llm: FakeLLM) -> None:
    async with OpenAIClient(fake_llm.base_url + "/", KEY, retry=FAST) as client:
        await client.chat(MESSAGES, PARAMS)
    async with OpenAIClient(fake_llm.base_url, retry=FAST) as anonymous:
        await anonymous.chat(MESSAGES, PARAMS)
    with_key, without_key = fake_llm.requests
    assert with_key.path == "/v1/chat/completions"
    assert with_key.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in without_key.headers


async def test_embed_returns_vectors_in_input_order(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    result = await client.embed("fake-embed", ["a", "bb", "ccc"])
    assert [vector[0] for vector in result.vectors] == [1.0, 2.0, 3.0]
    assert (result.tokens_in, result.attempts) == (11, 1)
    assert fake_llm.requests[0].json == {"model": "fake-embed", "input": ["a", "bb", "ccc"]}


async def test_embed_retries_on_the_shared_loop(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    fake_llm.script(503)
    result = await client.embed("fake-embed", ["a"])
    assert result.attempts == 2


async def test_list_models(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    assert await client.list_models() == MODELS
    assert fake_llm.paths() == ["/v1/models"]


# --- retries -------------------------------------------------------------------------------


async def test_server_errors_are_retried(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    fake_llm.script(500, 500)
    result = await client.chat(MESSAGES, PARAMS)
    assert result.attempts == 3
    assert len(fake_llm.requests) == 3


async def test_gives_up_after_three_attempts(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    fake_llm.script(*[status(500, "upstream exploded")] * 3)
    with pytest.raises(EndpointError) as caught:
        await client.chat(MESSAGES, PARAMS)
    assert str(caught.value) == (
        f"POST {fake_llm.base_url}/chat/completions failed after 3 attempts: "
        "HTTP 500: upstream exploded"
    )
    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert len(fake_llm.requests) == 3


@pytest.mark.parametrize(
    "fault",
    [malformed_json(), json_body({"choices": []}), json_body({"id": "x"}), stream_cut(2)],
    ids=["malformed-json", "empty-choices", "missing-choices", "cut-stream"],
)
async def test_bad_answers_are_retried(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    fault: Reply,
) -> None:
    fake_llm.script(fault)
    result = await client.chat(MESSAGES, PARAMS, stream=fault.cut_after is not None)
    assert (result.text, result.attempts) == ("Hello from the fake model", 2)


async def test_malformed_json_every_time_is_reported(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(*[malformed_json()] * 3)
    with pytest.raises(EndpointError, match="after 3 attempts: a body that is not JSON"):
        await client.chat(MESSAGES, PARAMS)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (stream_cut(2), "stream cut after 2 chunks"),
        (stream_without_done(), r"stream cut after 8 chunks: no \[DONE\]"),
    ],
    ids=["dropped", "no-done"],
)
async def test_cut_streams_are_retried_then_reported(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    fault: Reply,
    message: str,
) -> None:
    fake_llm.script(fault, fault, fault)
    with pytest.raises(EndpointError, match=f"after 3 attempts: {message}") as caught:
        await client.chat(MESSAGES, PARAMS, stream=True)
    assert caught.value.retryable


async def test_timeouts_are_retried_then_reported(fake_llm: FakeLLM) -> None:
    # Long enough that the answered attempt cannot miss it on a loaded machine.
    limits = ResponseLimits(idle_timeout=0.5)
    async with OpenAIClient(fake_llm.base_url, KEY, retry=FAST, limits=limits) as client:
        fake_llm.script(slow(30))
        assert (await client.chat(MESSAGES, PARAMS)).attempts == 2
        fake_llm.script(slow(30), slow(30), slow(30))
        with pytest.raises(EndpointError, match=r"after 3 attempts: no progress within 0\.5 s"):
            await client.chat(MESSAGES, PARAMS)


async def test_refused_connection_is_retried_then_reported() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    async with OpenAIClient(base_url, KEY, retry=FAST) as client:
        with pytest.raises(EndpointError) as caught:
            await client.chat(MESSAGES, PARAMS)
    message = str(caught.value)
    assert message.startswith(f"POST {base_url}/chat/completions failed after 3 attempts: ")
    assert "connection refused" in message


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    code: int,
) -> None:
    fake_llm.script(status(code, "model 'nope' does not exist"))
    with pytest.raises(EndpointError) as caught:
        await client.chat(MESSAGES, PARAMS)
    assert f"HTTP {code}: model 'nope' does not exist" in str(caught.value)
    assert (caught.value.status, caught.value.retryable) == (code, False)
    assert len(fake_llm.requests) == 1


# --- rate limits ---------------------------------------------------------------------------


async def test_rate_limits_use_no_attempts_and_halve_the_limiter(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    limiter = AdaptiveLimiter(8)
    fake_llm.script(*[rate_limited(0.05)] * 4)
    started = time.perf_counter()
    result = await client.chat(MESSAGES, PARAMS, limiter=limiter)
    assert result.attempts == 1
    assert len(fake_llm.requests) == 5
    assert limiter.limit < 8
    assert limiter.in_flight == 0
    # Retry-After was honoured: FAST's own backoff would be far shorter than 4 x 0.05 s.
    assert time.perf_counter() - started >= 0.2


async def test_rate_limits_and_failures_share_one_call(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(500, rate_limited(0), rate_limited(), 500)
    result = await client.chat(MESSAGES, PARAMS)
    assert result.attempts == 3
    assert len(fake_llm.requests) == 5


async def test_retry_after_as_http_date(client: OpenAIClient, fake_llm: FakeLLM) -> None:
    fake_llm.script(rate_limited(email.utils.formatdate(time.time() - 5, usegmt=True)))
    assert (await client.chat(MESSAGES, PARAMS)).attempts == 1


async def test_one_burst_of_429s_halves_the_limiter_once(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    limiter = AdaptiveLimiter(8)
    fake_llm.script(*[rate_limited(0.01)] * 8)
    results = await asyncio.gather(
        *(client.chat(MESSAGES, PARAMS, limiter=limiter) for _ in range(8))
    )
    assert [r.attempts for r in results] == [1] * 8
    assert limiter.limit == 4


async def test_rate_limit_cap_gives_up_clearly(fake_llm: FakeLLM) -> None:
    policy = RetryPolicy(
        base_delay=0.001, max_delay=0.01, rate_limit_cap=0.1, rate_limit_floor=0.001
    )
    fake_llm.script(*[rate_limited(0.04)] * 10)
    async with OpenAIClient(fake_llm.base_url, KEY, retry=policy) as client:
        with pytest.raises(EndpointError) as caught:
            await client.chat(MESSAGES, PARAMS)
    message = str(caught.value)
    assert message.startswith(f"rate limited for 0.1 s by {fake_llm.base_url}; giving up")
    assert "HTTP 429" in message
    assert caught.value.status == 429
    assert len(fake_llm.requests) == 3


async def test_limiter_caps_requests_at_the_server(
    client: OpenAIClient,
    fake_llm: FakeLLM,
) -> None:
    limiter = AdaptiveLimiter(2)
    fake_llm.script(*[slow(0.05)] * 10)
    await asyncio.gather(*(client.chat(MESSAGES, PARAMS, limiter=limiter) for _ in range(10)))
    assert fake_llm.peak_in_flight == 2
    assert limiter.in_flight == 0


# --- secrets -------------------------------------------------------------------------------


async def test_api_key_never_leaks(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    echo = f"Incorrect API key provided: {KEY}"
    caplog.set_level(logging.DEBUG)
    fake_llm.script(status(500, echo), status(401, echo), status(401, echo))
    with pytest.raises(EndpointError) as caught:
        await client.chat(MESSAGES, PARAMS)
    report = await client.test_connection()
    texts = [str(caught.value), repr(caught.value), caplog.text, repr(client), str(report)]
    assert caplog.text, "the retry should have been logged"
    assert all(KEY not in text for text in texts)
    assert "Incorrect API key provided: [API key]" in str(caught.value)
    assert repr(client) == f"OpenAIClient(base_url={fake_llm.base_url!r})"


@pytest.mark.parametrize("padding", range(180, 200, 3))
async def test_a_key_echoed_where_the_quote_is_cut_is_not_half_shown(
    client: OpenAIClient, fake_llm: FakeLLM, padding: int
) -> None:
    body = ("x" * padding + f" token={KEY} was refused").encode()
    fake_llm.script(*[Reply(status=400, raw=body, content_type="text/plain")] * 3)
    with pytest.raises(EndpointError) as caught:
        await client.chat(MESSAGES, PARAMS)
    message = str(caught.value)
    assert all(KEY[:n] not in message for n in range(6, len(KEY) + 1)), message


# --- connection test -----------------------------------------------------------------------


async def test_connection_ok(client: OpenAIClient) -> None:
    report = await client.test_connection()
    assert (report.ok, report.models, report.error) == (True, MODELS, None)
    assert report.latency_ms is not None


async def test_connection_refused() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    async with OpenAIClient(base_url, KEY, retry=FAST) as client:
        report = await client.test_connection()
    assert (report.ok, report.latency_ms, report.models) == (False, None, [])
    assert report.error is not None
    assert report.error.startswith(f"could not connect to {base_url}: connection refused")


async def test_connection_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(slow(5))
    limits = ResponseLimits(idle_timeout=0.05)
    async with OpenAIClient(fake_llm.base_url, limits=limits) as client:
        report = await client.test_connection()
    assert (report.ok, report.latency_ms) == (False, None)
    assert report.error == f"{fake_llm.base_url} did not answer within 0.05 s"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (401, "the endpoint rejected the API key (HTTP 401)"),
        (403, "the endpoint rejected the API key (HTTP 403)"),
        (html_page(), "/models answered with an HTML page, not an OpenAI-compatible API"),
        (json_body({"models": []}), "does not look like an OpenAI-compatible API"),
        (404, "/models does not exist (HTTP 404); the base URL should end in /v1"),
        (500, "/models answered HTTP 500: scripted failure"),
    ],
    ids=["401", "403", "html", "no-data", "404", "500"],
)
async def test_connection_problems_are_explained(
    client: OpenAIClient,
    fake_llm: FakeLLM,
    fault: Reply | int,
    expected: str,
) -> None:
    fake_llm.script(fault)
    report = await client.test_connection()
    assert (report.ok, report.models) == (False, [])
    assert report.error is not None
    assert expected in report.error
    assert report.latency_ms is not None
    assert len(fake_llm.requests) == 1


async def test_connection_without_a_key_says_one_is_needed(fake_llm: FakeLLM) -> None:
    fake_llm.script(401)
    async with OpenAIClient(fake_llm.base_url) as client:
        report = await client.test_connection()
    assert report.error == "the endpoint requires an API key (HTTP 401) and none is set"


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["localhost:8080/v1", "ftp://host/v1", "http:///v1"])
def test_rejects_unusable_base_urls(base_url: str) -> None:
    with pytest.raises(BadInput):
        OpenAIClient(base_url)


def test_rejects_a_key_that_cannot_be_a_header() -> None:
    with pytest.raises(BadInput) as caught:
        OpenAIClient("http://127.0.0.1:1/v1", "sk-bad\nkey")
    assert "sk-bad" not in str(caught.value)


async def test_requests_name_promptlooper_and_carry_the_key(fake_llm: FakeLLM) -> None:
    # Proxies and servers log the User-Agent: it says who is calling.
    async with OpenAIClient(fake_llm.base_url, KEY, retry=FAST) as client:
        await client.chat(MESSAGES, PARAMS)
    headers = fake_llm.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["user-agent"] == f"promptlooper/{__version__}"
    assert headers["content-type"] == "application/json"


async def test_a_base_urls_credentials_go_as_basic_auth_and_are_never_shown(
    fake_llm: FakeLLM,
) -> None:
    # An endpoint behind a proxy with basic auth: http://user:pass@host/v1.
    base = fake_llm.base_url.replace("http://", "http://team:s3cret-pw@")
    async with OpenAIClient(base, retry=FAST) as client:
        await client.chat(MESSAGES, PARAMS)
        assert "s3cret-pw" not in repr(client)
    sent = fake_llm.requests[0].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"team:s3cret-pw").decode()


# --- answers that arrive whole ----------------------------------------------------------------


async def test_an_answer_that_arrived_whole_is_still_held_to_the_cap(fake_llm: FakeLLM) -> None:
    # A small answer comes with its headers and is handed to the reader whole.
    limits = ResponseLimits(max_bytes=64)
    async with OpenAIClient(fake_llm.base_url, KEY, retry=FAST, limits=limits) as client:
        with pytest.raises(EndpointError, match="response size cap"):
            await client.chat(MESSAGES, PARAMS)
    assert len(fake_llm.requests) == 1


async def test_a_compressed_answer_is_decoded() -> None:
    body = gzip.compress(
        json.dumps(
            {"choices": [{"message": {"content": "unzipped"}, "finish_reason": "stop"}]}
        ).encode()
    )
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, OpenAIClient(f"http://127.0.0.1:{port}/v1", KEY, retry=FAST) as client:
        result = await client.chat(MESSAGES, PARAMS)
    assert result.text == "unzipped"
