"""An evolve sweep as a user runs it, on a real store (SQLite and PostgreSQL) and the built-in
simulated endpoint, which also plays the proposer: the lineage it keeps, the leaderboard it
ranks by held-out items, the proposer's calls cached, counted and charged, a stop and a resume
in the middle, a budget that cannot pay the proposer, a proposer that is down, an experiment
evolve cannot rewrite, and the dry run."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptlooper_tui.domain.errors import BadInput, NotFound
from promptlooper_tui.domain.records import Evolution
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.workbench import SweepOverrides, Workbench
from tests.fixtures.evolve_sweep import evolve_spec

from ..fixtures.fake_llm import FakeLLM, Reply, fake_llm_fixture  # noqa: F401
from ..helpers import free_port

ITEMS = [
    json.loads(line)
    for line in (Path(__file__).parents[2] / "sample_experiments" / "release_notes.jsonl")
    .read_text()
    .splitlines()[:15]
]
EXPERIMENT = evolve_spec("evolving", ITEMS, holdout=0.3)
#: round(15 * 0.3) items held out.
HELD_OUT = 4
GENERATION_CALLS = (
    "SELECT generation, cached, paid_tokens FROM evolve_generations WHERE sweep_id = ? "
    "ORDER BY generation"
)


def experiment(**sweep: Any) -> str:
    spec = copy.deepcopy(EXPERIMENT)
    spec["sweep"].update(sweep)
    return yaml.safe_dump(spec, sort_keys=False)


async def new_sweep(wb: Workbench, text: str, **overrides: Any) -> str:
    imported = await wb.import_text(text)
    return await wb.create_sweep(imported.id, SweepOverrides(**overrides))


async def proposer_calls(wb: Workbench, sweep_id: str) -> list[tuple[int, bool, int]]:
    """(generation, cached, paid tokens) of each proposer call the sweep stored."""
    rows = await wb.db.fetchall(GENERATION_CALLS, (sweep_id,))
    return [(r["generation"], bool(r["cached"]), r["paid_tokens"]) for r in rows]


def lineage(evolution: Evolution) -> list[tuple[int, str | None, str, str | None]]:
    return [
        (p.generation, p.name, p.template, p.reason)
        for g in evolution.generations
        for p in g.proposals
    ]


async def test_an_evolve_sweep_keeps_its_lineage_and_ranks_by_held_out_items(
    workbench: Workbench,
) -> None:
    sweep_id = await new_sweep(workbench, experiment())
    events = workbench.bus.subscribe(accept=lambda e: e.type == "sweep.generation")
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"

    evolution = await workbench.evolution(sweep_id)
    assert evolution.parameter == "prompt"
    assert evolution.prompts == EXPERIMENT["prompts"]
    assert len(evolution.holdout_items) == HELD_OUT
    assert set(evolution.holdout_items) <= set(range(len(ITEMS)))
    assert [g.generation for g in evolution.generations] == [1, 2]
    known = set(EXPERIMENT["prompts"])
    accepted = 0
    for generation in evolution.generations:
        assert generation.model == "large-model" and generation.tokens > 0
        assert not generation.cached and generation.error is None
        assert 1 <= len(generation.proposals) <= 3
        for proposal in generation.proposals:
            assert set(proposal.parents) <= known and proposal.parents
            if proposal.status == "accepted":
                accepted += 1
                assert proposal.name is not None and proposal.reason is None
                assert re.fullmatch(rf"g{generation.generation}\.[1-3]", proposal.name)
                assert evolution.template(proposal.name) == proposal.template
            else:
                assert proposal.name is None and proposal.reason
        known |= {p.name for p in generation.proposals if p.name}
    assert accepted > 0

    # One event a generation, naming what it proposed.
    announced = events.drain()
    assert [e.data["generation"] for e in announced] == [1, 2]
    for event, generation in zip(announced, evolution.generations, strict=True):
        assert [p["name"] for p in event.data["proposals"]] == [
            p.name for p in generation.proposals
        ]

    board = await workbench.leaderboard(sweep_id, sweep=sweep_id, top=100)
    leader = board[0]
    assert leader.holdout_score is not None and leader.holdout_n == HELD_OUT
    assert leader.train_score is not None and leader.train_n
    finalists = [e for e in board if e.holdout_score is not None]
    assert finalists == board[: len(finalists)]  # finalists rank first...
    held = [e.holdout_score for e in finalists]
    assert held == sorted(held, reverse=True)  # ...by their held-out score
    assert all(e.train_score is not None for e in board)
    # A proposal ran as a config of its own, under its name.
    names = {e.config["prompt"] for e in board}
    assert any(re.fullmatch(r"g[12]\.\d", str(n)) for n in names)

    # The proposer's two calls are counted with the runs'.
    runs = summary.runs.completed + summary.runs.failed
    assert summary.calls.requested == runs + 2


async def test_a_new_sweep_gets_the_proposers_answers_from_the_cache(
    workbench: Workbench,
) -> None:
    first = await new_sweep(workbench, experiment())
    await workbench.run_sweep(first)
    paid = await proposer_calls(workbench, first)
    assert [(g, cached) for g, cached, _ in paid] == [(1, False), (2, False)]
    assert all(tokens > 0 for _, _, tokens in paid)

    again = await new_sweep(workbench, experiment())
    summary = await workbench.run_sweep(again)
    assert summary.status == "completed"
    assert await proposer_calls(workbench, again) == [(1, True, 0), (2, True, 0)]
    # Every call of the second sweep, the proposer's included, came from the cache.
    assert summary.calls.cache_hits == summary.calls.requested
    first_lineage = lineage(await workbench.evolution(first))
    assert lineage(await workbench.evolution(again)) == first_lineage


async def test_a_sweep_stopped_after_a_generation_resumes_with_the_same_proposals(
    workbench: Workbench,
) -> None:
    # Without the cache: a second proposer call for a stored generation would be paid anew.
    whole = await new_sweep(workbench, experiment(), no_cache=True)
    await workbench.run_sweep(whole)
    expected = lineage(await workbench.evolution(whole))

    sweep_id = await new_sweep(workbench, experiment(), no_cache=True)
    events = workbench.bus.subscribe(
        accept=lambda e: e.sweep_id == sweep_id and e.type == "sweep.generation"
    )
    task = await workbench.start_sweep(sweep_id)
    first = await asyncio.wait_for(events.get(), timeout=60)
    assert first.data["generation"] == 1
    await workbench.stop_sweep(sweep_id)
    assert await task == "stopped"
    stored = lineage(await workbench.evolution(sweep_id))
    assert stored and {g for g, *_ in stored} == {1}

    resumed = await workbench.run_sweep(sweep_id)
    assert resumed.status == "completed"
    calls = await proposer_calls(workbench, sweep_id)
    assert [g for g, _, _ in calls] == [1, 2]  # generation 1 was asked once
    assert lineage(await workbench.evolution(sweep_id)) == expected
    assert resumed.calls.requested == resumed.runs.completed + resumed.runs.failed + 2


async def test_a_budget_that_cannot_pay_the_proposer_ends_the_sweep_budget_exhausted(
    workbench: Workbench,
) -> None:
    # Generation 0's runs fit in 50,000 tokens; a proposer call that may write 200,000 does not.
    text = experiment(proposer={"model": "large-model", "params": {"max_tokens": 200_000}})
    sweep_id = await new_sweep(workbench, text, max_tokens=50_000)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "budget_exhausted"
    assert summary.runs.completed > 0 and summary.runs.failed == 0
    assert (await workbench.evolution(sweep_id)).generations == []
    assert await proposer_calls(workbench, sweep_id) == []
    # With a budget that pays for it, the sweep goes on from there.
    finished = await workbench.run_sweep(sweep_id, max_tokens=10_000_000)
    assert finished.status == "completed"
    assert [g for g, _, _ in await proposer_calls(workbench, sweep_id)] == [1, 2]


async def test_a_proposer_that_is_down_fails_the_sweep_naming_it_and_it_resumes(
    workbench: Workbench,
) -> None:
    port = free_port()
    down = {"endpoint": {"base_url": f"http://127.0.0.1:{port}/v1"}, "model": "large-model"}
    sweep_id = await new_sweep(workbench, experiment(proposer=down))
    failed = await workbench.run_sweep(sweep_id)
    assert failed.status == "failed"
    record = await workbench.get_sweep(sweep_id)
    assert record.error is not None
    assert "proposer" in record.error and "generation 1" in record.error
    done_before = failed.runs.completed
    assert done_before > 0

    async with simulated_endpoint(port=port):
        resumed = await workbench.run_sweep(sweep_id)
    assert resumed.status == "completed"
    assert resumed.runs.completed > done_before
    assert [g for g, _, _ in await proposer_calls(workbench, sweep_id)] == [1, 2]


async def test_an_experiment_without_a_prompt_parameter_cannot_evolve(
    workbench: Workbench,
) -> None:
    spec = copy.deepcopy(EXPERIMENT)
    spec["parameters"] = {"model": ["small-model", "medium-model"]}
    spec["pipeline"] = [{"name": "summary", "user": "Summarise: {{ item.input.change }}"}]
    spec["sweep"]["strategy"] = "grid"
    imported = await workbench.import_text(yaml.safe_dump(spec))
    with pytest.raises(BadInput, match="exactly one parameter that picks among `prompts:`"):
        await workbench.create_sweep(imported.id, SweepOverrides(strategy="evolve"))
    del spec["sweep"]["proposer"]
    bare = await workbench.import_text(yaml.safe_dump({**spec, "name": "bare"}))
    with pytest.raises(BadInput, match="needs a proposer"):
        await workbench.create_sweep(bare.id, SweepOverrides(strategy="evolve"))
    assert await workbench.list_sweeps() == []
    # Its grid sweep has no lineage to show; an unknown sweep is not found.
    grid = await workbench.create_sweep(imported.id)
    with pytest.raises(BadInput, match="not an evolve sweep"):
        await workbench.evolution(grid)
    with pytest.raises(NotFound):
        await workbench.evolution("sw_0000000000")


async def test_the_dry_run_counts_a_proposer_call_a_generation(workbench: Workbench) -> None:
    imported = await workbench.import_text(experiment(generations=3))
    plan = await workbench.plan(imported.id)
    assert plan.proposer_calls == 3
    assert plan.calls == plan.runs + 3  # one stage a run, no judge
    assert 0 < plan.proposer_tokens < plan.estimated_tokens
    assert plan.upper_bound


# --- a proposer that is not the simulated one ---------------------------------------------------


def scripted_proposer(fake_llm: FakeLLM, *templates: str) -> str:
    """The experiment with `fake_llm` as its proposer, answering generation 1 with
    `templates` (and generation 2 with its default text, which holds no JSON)."""
    answer = {"proposals": [{"template": t, "parent": "plain"} for t in templates]}
    fake_llm.script(Reply(text="Here you are:\n```json\n" + json.dumps(answer) + "\n```"))
    proposer = {"endpoint": {"base_url": fake_llm.base_url}, "model": "fake-chat"}
    return experiment(proposer=proposer, proposals=len(templates))


async def test_a_proposers_bad_templates_are_rejected_with_reasons_and_the_sweep_goes_on(
    workbench: Workbench,
    fake_llm: FakeLLM,
) -> None:
    text = scripted_proposer(
        fake_llm,
        "In one sentence, with every product name: {{ item.input.change }}",
        "{{ item.input.change }} Hint: {{ item.keywords }}",
        "{{ item.input.change ",
        EXPERIMENT["prompts"]["plain"],
    )
    sweep_id = await new_sweep(workbench, text)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"
    first, second = (await workbench.evolution(sweep_id)).generations
    assert [p.name for p in first.proposals] == ["g1.1", None, None, None]
    reasons = [p.reason or "" for p in first.proposals[1:]]
    assert "item.keywords" in reasons[0]
    assert "syntax" in reasons[1]
    assert reasons[2] == "the same text as prompt 'plain'"
    assert second.proposals == [] and second.error == "the answer holds no JSON"

    # The proposer saw training items only: its failures name none of the held-out ones.
    held = set((await workbench.evolution(sweep_id)).holdout_items)
    shown_items = set()
    for request in fake_llm.requests:
        content = "".join(m["content"] for m in request.json["messages"])
        shown_items |= {int(i) for i in re.findall(r'<failure [^>]*item="(\d+)"', content)}
        for index in held:
            assert ITEMS[index]["input"]["change"] not in content
    assert shown_items and shown_items.isdisjoint(held)


async def test_a_template_whose_render_raises_value_error_is_rejected_not_fatal(
    workbench: Workbench,
    fake_llm: FakeLLM,
) -> None:
    text = scripted_proposer(fake_llm, "{{ item.input.change | wordwrap(0) }}")
    sweep_id = await new_sweep(workbench, text)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"
    (proposal,) = (await workbench.evolution(sweep_id)).generations[0].proposals
    assert proposal.name is None
    assert proposal.reason is not None and "does not render" in proposal.reason


async def test_a_hand_written_winner_of_an_unswept_prompt_parameter_applies_nothing(
    workbench: Workbench,
    fake_llm: FakeLLM,
) -> None:
    """With `prompt: plain` fixed and every proposal rejected, the hand-written prompt wins:
    the leaderboard names it, and applying the sweep says so instead of failing."""
    text = scripted_proposer(fake_llm, "{{ item.reference }}")
    spec = yaml.safe_load(text)
    spec["parameters"]["prompt"] = "plain"
    sweep_id = await new_sweep(workbench, yaml.safe_dump(spec, sort_keys=False))
    assert (await workbench.run_sweep(sweep_id)).status == "completed"
    board = await workbench.ranking(spec["name"], sweep=sweep_id)
    assert board.entries[0].config["prompt"] == "plain"
    applied = await workbench.apply_evolution(sweep_id)
    assert (applied.applied, applied.prompt) == (False, "plain")
