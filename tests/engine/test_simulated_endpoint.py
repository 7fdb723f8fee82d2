"""The built-in simulated endpoint: deterministic replies, OpenAI wire format, injected faults."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.tokens import estimate_tokens
from promptlooper_tui.simulated.embeddings import EMBEDDING_DIMS, simulate_embedding
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.replies import simulate_chat
from promptlooper_tui.simulated.server import RunningSimulator, simulated_endpoint

QUESTIONS = [
    "How do I enable two-factor authentication in the Google Admin Console?",
    "What causes memory leaks in long-running Python services using asyncio?",
    "How can I speed up PostgreSQL queries that filter on JSONB columns?",
    "Why does my Kubernetes deployment keep restarting with CrashLoopBackOff?",
    "How should I rotate TLS certificates for an Nginx reverse proxy?",
    "What is the difference between Docker volumes and bind mounts?",
    "How do I configure Terraform remote state stored in Amazon S3?",
    "Which settings improve battery life on a Windows laptop during travel?",
    "How can teams reduce flaky integration tests in continuous delivery pipelines?",
    "What should a beginner know about sourdough starter feeding schedules?",
]
JUDGE = (
    "Rate the output against the reference on a scale of 1-10.\n"
    "Question: What is the capital of France?\n"
    "Reference: The capital of France is Paris.\n"
    "Output: {output}"
)


def chat(model: str, prompt: str, **params: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **params}


def keywords(text: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Za-z][\w-]+", text) if len(word) >= 6}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def sse_events(body: str) -> list[str]:
    return [line.removeprefix("data: ") for line in body.split("\n\n") if line]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with simulated_endpoint() as running:
        yield running


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        yield http


async def faulty(options: SimulatorOptions, path: str, body: dict[str, Any]) -> httpx.Response:
    """One request to a fresh endpoint started with `options`."""
    async with simulated_endpoint(options) as running, httpx.AsyncClient() as http:
        return await http.post(running.base_url + path, json=body)


# --- pure behaviour ----------------------------------------------------------------------------


def test_options_reject_out_of_range_values() -> None:
    with pytest.raises(BadInput, match="fail_rate"):
        SimulatorOptions(fail_rate=1.5)
    with pytest.raises(BadInput, match="latency_ms"):
        SimulatorOptions(latency_ms=-1)


def test_large_model_mentions_more_question_keywords_than_small() -> None:
    def coverage(model: str) -> int:
        total = 0
        for question in QUESTIONS:
            reply = simulate_chat(chat(model, question)).text.lower()
            total += sum(word in reply for word in keywords(question))
        return total

    assert coverage("large-model") > coverage("small-model")


def test_model_temperature_and_seed_change_the_reply() -> None:
    base = [simulate_chat(chat("medium-model", q)).text for q in QUESTIONS]
    for variant in ({"model": "large-model"}, {"temperature": 0.2}, {"seed": 7}):
        changed = [simulate_chat({**chat("medium-model", q), **variant}).text for q in QUESTIONS]
        assert changed != base, variant


def test_instructions_change_the_length() -> None:
    question = QUESTIONS[1]
    short = simulate_chat(chat("large-model", "Answer in one sentence. " + question))
    long = simulate_chat(chat("large-model", "Give a detailed answer. " + question))
    assert short.completion_tokens < long.completion_tokens


def test_json_keys_and_values_come_from_the_prompt() -> None:
    prompt = (
        "Extract the fields: name, email, age from the text below. Reply in JSON.\n"
        "Ada Lovelace (ada@example.com) turned 36 this year."
    )
    body = chat("large-model", prompt, response_format={"type": "json_object"})
    assert json.loads(simulate_chat(body).text) == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "age": 36,
    }


def test_json_schema_in_prompt_or_response_format_gives_its_properties() -> None:
    schema = {"type": "object", "properties": {"product": {}, "price": {"type": "number"}}}
    text = 'The "Acme Widget" costs 19.99 today.'
    in_prompt = chat("large-model", f"Answer as JSON following {json.dumps(schema)}\n{text}")
    in_prompt["response_format"] = {"type": "json_object"}
    as_format = chat("large-model", text)
    as_format["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
    for body in (in_prompt, as_format):
        assert json.loads(simulate_chat(body).text) == {"product": "Acme Widget", "price": 19.99}


def test_weak_models_sometimes_botch_json_without_json_mode() -> None:
    def valid(model: str, mode: dict[str, str] | None) -> int:
        count = 0
        for question in QUESTIONS:
            body = chat(model, f"Reply in JSON with keys: topic, summary. {question}")
            if mode:
                body["response_format"] = mode
            with contextlib.suppress(ValueError):
                count += set(json.loads(simulate_chat(body).text)) == {"topic", "summary"}
        return count

    assert valid("tiny-model", {"type": "json_object"}) == len(QUESTIONS)
    assert valid("tiny-model", None) < len(QUESTIONS)


def test_judge_rating_follows_overlap_with_the_reference() -> None:
    def rating(output: str, model: str = "judge-model") -> int:
        text = simulate_chat(chat(model, JUDGE.format(output=output))).text
        match = re.search(r"\b(10|[1-9])\b", text)
        assert match, text
        return int(match.group(1))

    good = rating("The capital of France is Paris.")
    bad = rating("Bananas are yellow.")
    assert 1 <= bad < good <= 10
    only = JUDGE.format(output="Paris") + "\nAnswer with only the number."
    for model in ("small-model", "judge-model", "large-model"):
        assert re.fullmatch(r"10|[1-9]", simulate_chat(chat(model, only)).text)


def test_limits_cut_the_reply() -> None:
    body = chat("large-model", "Explain step by step how to configure Nginx caching.")
    full = simulate_chat(body)
    cut = simulate_chat({**body, "max_tokens": 5})
    assert (cut.finish_reason, full.finish_reason) == ("length", "stop")
    assert full.text.startswith(cut.text) and 0 < cut.completion_tokens <= 5
    stopped = simulate_chat({**body, "stop": ["\n"]})
    assert stopped.finish_reason == "stop" and full.text.startswith(stopped.text)
    assert "\n" not in stopped.text and "\n" in full.text


def test_embeddings_are_normalised_and_semantic() -> None:
    question = simulate_embedding("How do I reset my account password?")
    assert len(question) == EMBEDDING_DIMS
    assert math.isclose(cosine(question, question), 1.0)
    assert simulate_embedding("How do I reset my account password?") == question
    related = cosine(question, simulate_embedding("Steps to reset a forgotten account password"))
    unrelated = cosine(question, simulate_embedding("The best pizza toppings in Naples"))
    assert related > 0.5 > unrelated


# --- over HTTP ---------------------------------------------------------------------------------


async def test_replies_are_byte_for_byte_deterministic(client: httpx.AsyncClient) -> None:
    body = chat("small-model", QUESTIONS[0], temperature=0.7)
    first = await client.post("/chat/completions", json=body)
    second = await client.post("/chat/completions", json=body)
    assert first.status_code == 200 and first.content == second.content
    answer = first.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == simulate_chat(body).text
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_and_non_stream_agree(
    sim: RunningSimulator, client: httpx.AsyncClient
) -> None:
    body = chat("medium-model", QUESTIONS[2])
    plain = (await client.post("/chat/completions", json=body)).json()
    streamed = await client.post(
        "/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(chunks) > 3
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert sim.state.records()[-1]["finished"] is not None


async def test_embeddings_route(client: httpx.AsyncClient) -> None:
    texts = ["reset my password", "reset my password", "pizza in Naples"]
    answer = (
        await client.post("/embeddings", json={"model": "embed-small", "input": texts})
    ).json()
    vectors = [item["embedding"] for item in answer["data"]]
    assert [item["index"] for item in answer["data"]] == [0, 1, 2]
    assert vectors[0] == vectors[1] == simulate_embedding(texts[0])
    assert answer["usage"]["prompt_tokens"] == sum(estimate_tokens(t) for t in texts)
    single = (await client.post("/embeddings", json={"model": "e", "input": "hi"})).json()
    assert len(single["data"]) == 1


async def test_models_and_bad_requests(client: httpx.AsyncClient) -> None:
    models = (await client.get("/models")).json()
    assert "large-model" in [model["id"] for model in models["data"]]
    no_model = await client.post("/chat/completions", json={"messages": []})
    not_json = await client.post("/chat/completions", content=b"{nope")
    for response in (no_model, not_json):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_request_log_fingerprints_counts_and_reset(
    sim: RunningSimulator, client: httpx.AsyncClient
) -> None:
    body = chat("small-model", "Hello there, General Kenobi.")
    for _ in range(2):
        await client.post("/chat/completions", json=body)
    await client.get("/models")
    root = sim.base_url.removesuffix("/v1")
    stats = (await client.get(root + "/_sim/stats")).json()
    assert stats == {
        "requests": 3,
        "by_path": {"/v1/chat/completions": 2, "/v1/models": 1},
        "by_status": {"200": 3},
    }
    log = (await client.get(root + "/_sim/requests")).json()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert (
        log[0]["fingerprint"]
        == log[1]["fingerprint"]
        == hashlib.sha256(canonical.encode()).hexdigest()
    )
    assert [entry["seq"] for entry in log] == [1, 2, 3]
    assert all(entry["started"] <= entry["finished"] for entry in log)
    await client.post(root + "/_sim/reset")
    assert (await client.get(root + "/_sim/stats")).json()["requests"] == 0
    assert sim.state.requests == 0


async def test_api_key_is_enforced() -> None:
    options = SimulatorOptions(api_key="sk-test")
    async with simulated_endpoint(options) as running, httpx.AsyncClient() as http:
        url = running.base_url + "/models"
        refused = await http.get(url, headers={"Authorization": "Bearer wrong"})
        allowed = await http.get(url, headers={"Authorization": "Bearer sk-test"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert allowed.status_code == 200


async def test_injected_server_errors_and_rate_limits() -> None:
    body = chat("small-model", "hi")
    failed = await faulty(SimulatorOptions(fail_rate=1.0), "/chat/completions", body)
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    limited = await faulty(
        SimulatorOptions(rate_limit_rate=1.0, retry_after=0.05),
        "/embeddings",
        {"model": "e", "input": "x"},
    )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "0.05"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


async def test_malformed_bodies_are_not_json() -> None:
    response = await faulty(
        SimulatorOptions(malformed_rate=1.0), "/chat/completions", chat("m", "hi")
    )
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


async def test_cut_streams_end_without_done_or_usage() -> None:
    body = chat("large-model", QUESTIONS[3], stream=True, stream_options={"include_usage": True})
    async with simulated_endpoint(SimulatorOptions(cut_rate=1.0)) as running:
        async with httpx.AsyncClient() as http:
            response = await http.post(running.base_url + "/chat/completions", json=body)
        entry = running.state.records()[-1]
    events = sse_events(response.text)
    assert response.status_code == 200 and events and "[DONE]" not in events
    assert all(json.loads(event)["usage"] is None for event in events)
    assert entry["status"] == 200 and entry["finished"] is None


async def test_latency_is_honoured() -> None:
    options = SimulatorOptions(latency_ms=120)
    async with simulated_endpoint(options) as running, httpx.AsyncClient() as http:
        started = time.perf_counter()
        await http.post(running.base_url + "/chat/completions", json=chat("m", "hi"))
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.12
