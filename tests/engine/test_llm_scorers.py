"""The embedding and LLM-judge scorers: unit behaviour, and sweeps through the Workbench against
the real simulated endpoint over HTTP (the calls go through the cache and count in the budget)."""

from __future__ import annotations

import math
import socket
import time
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import EmbeddingScorerSpec, LlmJudgeScorerSpec
from promptlooper_tui.engine.adapters.openai import OpenAIClient
from promptlooper_tui.engine.scorers import (
    EmbeddingScorer,
    LlmJudgeScorer,
    ScoreContext,
    ScorerError,
    build_scorer,
)
from promptlooper_tui.engine.scorers.judge import JUDGE_SYSTEM
from promptlooper_tui.simulated.server import RunningSimulator
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml

JUDGE_PROMPT = (
    "Rate 1-10 how well the Output matches the Reference.\n"
    "Reference: {{ reference }}\nOutput: {{ output }}"
)


class FakeLLM:
    """Answers chat with `answer` and embed with `vectors`; records every call."""

    def __init__(self, answer: str = "", vectors: list[list[float]] | None = None) -> None:
        self.answer = answer
        self.vectors = vectors or []
        self.chats: list[tuple[Any, list[dict[str, str]], dict[str, Any]]] = []
        self.embeds: list[tuple[Any, str, list[str]]] = []

    async def chat(
        self, endpoint: Any, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> str:
        self.chats.append((endpoint, messages, params))
        return self.answer

    async def embed(self, endpoint: Any, model: str, texts: list[str]) -> list[list[float]]:
        self.embeds.append((endpoint, model, texts))
        return self.vectors


class ClientLLM:
    """A scorer's LLM access straight over an OpenAIClient (no cache, no budget)."""

    def __init__(self, client: OpenAIClient) -> None:
        self.client = client

    async def embed(self, endpoint: Any, model: str, texts: list[str]) -> list[list[float]]:
        return (await self.client.embed(model, texts)).vectors


def ctx(
    item: dict[str, Any], llm: Any = None, params: dict[str, Any] | None = None
) -> ScoreContext:
    return ScoreContext(item=item, params=params or {}, stage_outputs={}, llm=llm)


def embedding(**spec: Any) -> EmbeddingScorer:
    scorer = build_scorer(EmbeddingScorerSpec.model_validate({"type": "embedding", **spec}))
    assert isinstance(scorer, EmbeddingScorer)
    return scorer


def judge(**spec: Any) -> LlmJudgeScorer:
    fields = {"type": "llm_judge", "model": "judge-model", "prompt": JUDGE_PROMPT, **spec}
    scorer = build_scorer(LlmJudgeScorerSpec.model_validate(fields))
    assert isinstance(scorer, LlmJudgeScorer)
    return scorer


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- embedding, unit ------------------------------------------------------------------------


async def test_embedding_sends_output_and_reference_in_one_call() -> None:
    llm = FakeLLM(vectors=[[1.0, 0.0], [1.0, 1.0]])
    scorer = embedding(model="embed-small", endpoint="local")
    value = await scorer.score(None, "the output", ctx({"reference": "the reference"}, llm))
    assert llm.embeds == [("local", "embed-small", ["the output", "the reference"])]
    assert value == pytest.approx((math.cos(math.pi / 4) + 1) / 2)


@pytest.mark.parametrize(
    ("vectors", "expected"),
    [
        ([[0.3, 0.4], [0.3, 0.4]], 1.0),
        ([[0.3, 0.4], [6.0, 8.0]], 1.0),
        ([[1.0, 0.0], [0.0, 2.0]], 0.5),
        ([[1.0, 2.0], [-1.0, -2.0]], 0.0),
    ],
)
async def test_embedding_maps_cosine_to_unit_interval(
    vectors: list[list[float]], expected: float
) -> None:
    value = await embedding(model="m").score(
        None, "a", ctx({"reference": "b"}, FakeLLM("", vectors))
    )
    assert value == pytest.approx(expected)


async def test_embedding_reads_the_configured_reference_field() -> None:
    llm = FakeLLM(vectors=[[1.0], [1.0]])
    scorer = embedding(model="m", reference_field="gold")
    assert await scorer.score(None, "out", ctx({"gold": "expected"}, llm)) == 1.0
    assert llm.embeds[0][2] == ["out", "expected"]


@pytest.mark.parametrize("item", [{}, {"reference": None}, {"reference": "  \n"}])
async def test_embedding_without_a_reference_is_a_scorer_error(item: dict[str, Any]) -> None:
    llm = FakeLLM(vectors=[[1.0], [1.0]])
    with pytest.raises(ScorerError, match="'reference'"):
        await embedding(model="m").score(None, "out", ctx(item, llm))
    assert llm.embeds == [], "no tokens spent on an item that cannot be scored"


async def test_embedding_of_a_non_text_reference_is_a_scorer_error() -> None:
    with pytest.raises(ScorerError, match="must be a string, got list"):
        await embedding(model="m").score(None, "out", ctx({"reference": ["a"]}, FakeLLM()))


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([[0.0, 0.0], [1.0, 0.0]], "embedding of the output is a zero vector"),
        ([[1.0, 0.0], [0.0, 0.0]], "embedding of the reference is a zero vector"),
        ([[1.0, 0.0], [1.0, 0.0, 0.0]], r"different lengths \(2 and 3\)"),
        ([[], []], "empty embeddings"),
        ([[1.0, math.nan], [1.0, 0.0]], "not finite"),
        ([[1.0, 0.0]], "expected 2 embeddings from m, got 1"),
    ],
)
async def test_embedding_rejects_unusable_vectors(vectors: list[list[float]], message: str) -> None:
    with pytest.raises(ScorerError, match=message):
        await embedding(model="m").score(None, "out", ctx({"reference": "r"}, FakeLLM("", vectors)))


async def test_embedding_of_a_blank_output_scores_zero_without_a_call() -> None:
    llm = FakeLLM(vectors=[[1.0], [1.0]])
    assert await embedding(model="m").score(None, " ", ctx({"reference": "r"}, llm)) == 0.0
    assert llm.embeds == []


async def test_llm_scorers_need_llm_access() -> None:
    with pytest.raises(ScorerError, match="needs LLM access"):
        await embedding(model="m").score(None, "out", ctx({"reference": "r"}))
    with pytest.raises(ScorerError, match="needs LLM access"):
        await judge().score(None, "out", ctx({"reference": "r"}))


async def test_equal_texts_score_exactly_one_with_real_embeddings(sim: RunningSimulator) -> None:
    async with OpenAIClient(sim.base_url) as client:
        llm = ClientLLM(client)
        scorer = embedding(model="embed-small")
        text = "Open Settings, then Security, then Reset password."
        same = await scorer.score(None, text, ctx({"reference": text}, llm))
        close = await scorer.score(
            None, "Open Settings and Security.", ctx({"reference": text}, llm)
        )
        far = await scorer.score(None, "Bananas grow in bunches.", ctx({"reference": text}, llm))
    assert same == 1.0
    assert 0.0 <= far < close < 1.0


# --- judge, unit ----------------------------------------------------------------------------


async def test_judge_renders_the_prompt_and_normalises_the_rating() -> None:
    llm = FakeLLM("Rating: 7/10")
    scorer = judge(
        endpoint={"base_url": "http://judge.example/v1"},
        prompt="{{ params.model }}|{{ input.q }}|{{ item.id }}|{{ reference }}|{{ output }}",
        params={"max_tokens": 20},
    )
    item = {"id": 3, "input": {"q": "why?"}, "reference": "because"}
    value = await scorer.score(None, "an answer", ctx(item, llm, {"model": "small-model"}))
    assert value == pytest.approx(6 / 9)
    endpoint, messages, params = llm.chats[0]
    assert endpoint.base_url == "http://judge.example/v1"
    assert messages == [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": "small-model|why?|3|because|an answer"},
    ]
    assert params == {"model": "judge-model", "temperature": 0, "max_tokens": 20}


@pytest.mark.parametrize(("answer", "expected"), [("1", 0.0), ("**10**", 1.0), ("5.5/10", 0.5)])
async def test_judge_maps_one_to_ten_onto_unit_interval(answer: str, expected: float) -> None:
    value = await judge().score(None, "out", ctx({"reference": "r"}, FakeLLM(answer)))
    assert value == pytest.approx(expected)


async def test_judge_params_override_the_default_temperature() -> None:
    llm = FakeLLM("8")
    await judge(params={"temperature": 0.7}).score(None, "out", ctx({}, llm))
    assert llm.chats[0][2] == {"model": "judge-model", "temperature": 0.7}


async def test_an_unparseable_judge_answer_is_a_scorer_error_quoting_it() -> None:
    answer = "I cannot evaluate this output without more context about the task. " * 3
    with pytest.raises(ScorerError) as raised:
        await judge().score(None, "out", ctx({"reference": "r"}, FakeLLM(answer)))
    message = str(raised.value)
    assert "no 1-10 rating" in message and "I cannot evaluate this output" in message
    assert len(message) < 160


async def test_judge_prompt_errors() -> None:
    with pytest.raises(BadInput, match="syntax error"):
        judge(prompt="{{ output ")
    llm = FakeLLM("8")
    with pytest.raises(ScorerError, match="template error"):
        await judge(prompt="{{ item.missing }}").score(None, "out", ctx({}, llm))
    assert llm.chats == []


# --- end to end through the Workbench -------------------------------------------------------

DATASET = [
    {
        "input": {"question": "How do I reset my password?"},
        "reference": "Open Settings, choose Security, press Reset.",
    },
    {
        "input": {"question": "Can I export invoices?"},
        "reference": "Invoices are under Billing; press Export.",
    },
    {
        "input": {"question": "How do I invite a teammate?"},
        "reference": "Go to Team and press Invite.",
    },
]


def llm_experiment(base_url: str, judge_endpoint: Any = None, **changes: Any) -> str:
    judge_spec: dict[str, Any] = {
        "type": "llm_judge",
        "model": "judge-model",
        "prompt": JUDGE_PROMPT,
    }
    if judge_endpoint is not None:
        judge_spec["endpoint"] = judge_endpoint
    return experiment_yaml(
        endpoint={"base_url": base_url},
        pipeline=[{"name": "reply", "user": "Answer briefly: {{ item.input.question }}"}],
        dataset=DATASET,
        scorers=[
            {"type": "format", "format": "length", "min_tokens": 3, "max_tokens": 80},
            {"type": "embedding", "model": "embed-small"},
            judge_spec,
        ],
        **changes,
    )


async def sweep(workbench: Workbench, text: str) -> Any:
    imported = await workbench.import_text(text)
    return await workbench.run_sweep(await workbench.create_sweep(imported.id, SweepOverrides()))


async def run_details(workbench: Workbench, sweep_id: str) -> list[Any]:
    page = await workbench.list_runs(sweep=sweep_id, limit=100)
    return [await workbench.get_run(run.id) for run in page.items]


async def test_sweep_scores_every_run_and_charges_the_scorer_calls(
    workbench: Workbench, sim: RunningSimulator
) -> None:
    summary = await sweep(workbench, llm_experiment(sim.base_url))
    assert summary.status == "completed"
    runs = summary.runs.total
    assert runs == summary.runs.completed == 12  # 2 models x 2 temperatures x 3 items
    assert summary.calls.requested == runs * (1 + 2)
    assert sim.state.requests == summary.calls.requested - summary.calls.cache_hits
    assert sim.state.by_path["/v1/embeddings"] >= 1
    stage_tokens = 0
    for run in await run_details(workbench, summary.sweep_id):
        scores = {s.scorer: s for s in run.scores}
        for name in ("embedding", "llm_judge"):
            assert scores[name].error is None, scores[name].error
            assert scores[name].value is not None and 0.0 <= scores[name].value <= 1.0
        assert run.calls == 3
        assert run.tokens_in > sum(stage.tokens_in for stage in run.stages)
        stage_tokens += sum(stage.tokens_in + stage.tokens_out for stage in run.stages)
    assert summary.tokens.input + summary.tokens.output > stage_tokens


async def test_a_repeated_sweep_serves_judge_and_embedding_calls_from_the_cache(
    workbench: Workbench, sim: RunningSimulator
) -> None:
    text = llm_experiment(sim.base_url)
    first = await sweep(workbench, text)
    requests = sim.state.requests
    second = await sweep(workbench, text)
    assert sim.state.requests == requests, "no judge or embedding call was paid twice"
    assert second.calls.requested == second.calls.cache_hits == first.calls.requested
    assert second.tokens.input == second.tokens.output == 0
    assert [e.score for e in second.leaderboard] == [e.score for e in first.leaderboard]


async def test_the_plan_counts_judge_and_embedding_calls(
    workbench: Workbench, sim: RunningSimulator
) -> None:
    await workbench.import_text(llm_experiment(sim.base_url))
    await workbench.import_text(experiment_yaml(name="plain", endpoint={"base_url": sim.base_url}))
    with_llm = await workbench.plan("support")
    plain = await workbench.plan("plain")
    assert with_llm.runs == plain.runs == 12
    assert with_llm.calls == 12 * 3 and plain.calls == 12
    assert with_llm.estimated_tokens > plain.estimated_tokens
    assert sim.state.requests == 0, "planning spends nothing"


async def test_an_unreachable_judge_records_a_scorer_error_and_other_scores_count(
    workbench: Workbench, sim: RunningSimulator
) -> None:
    down = f"http://127.0.0.1:{closed_port()}/v1"
    text = llm_experiment(
        sim.base_url,
        judge_endpoint={"base_url": down},
        parameters={"model": "large-model", "temperature": 0.0, "max_tokens": 60},
    )
    started = time.monotonic()
    summary = await sweep(workbench, text)
    assert time.monotonic() - started < 3.0, "retries against a closed port stay short"
    assert summary.status == "completed" and summary.runs.completed == 3
    for run in await run_details(workbench, summary.sweep_id):
        scores = {s.scorer: s for s in run.scores}
        assert scores["llm_judge"].value is None
        assert down in (scores["llm_judge"].error or "")
        assert scores["embedding"].value is not None and scores["format:length"].value is not None
        counted = [scores["embedding"], scores["format:length"]]
        expected = sum(s.value * s.weight for s in counted) / sum(s.weight for s in counted)
        assert run.score == pytest.approx(expected)
