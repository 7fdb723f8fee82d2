"""Sweeps end to end through the Workbench: real SQLite file, real simulated endpoint over HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput, Conflict, NotFound
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml


async def start(wb: Workbench, text: str, **overrides: Any) -> str:
    imported = await wb.import_text(text)
    return await wb.create_sweep(imported.id, SweepOverrides(**overrides))


def inline(sim_url: str) -> dict[str, str]:
    return {"base_url": sim_url}


async def test_grid_sweep_runs_every_config_on_every_item(workbench: Workbench) -> None:
    sweep_id = await start(workbench, experiment_yaml(), repeats=2)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "completed"
    # 2 models x 2 temperatures, 3 items, 2 repeats
    assert summary.runs.total == summary.runs.completed == 24
    assert summary.calls.requested == 24 and summary.tokens.input > 0
    assert len(summary.leaderboard) == 4
    scores = [entry.score for entry in summary.leaderboard]
    assert scores == sorted(scores, reverse=True)
    leader = summary.leaderboard[0]
    assert leader.rank == 1 and leader.tied_with_leader and leader.n == 6
    assert leader.ci_low <= leader.score <= leader.ci_high
    page = await workbench.list_runs(experiment="support", limit=100)
    assert page.total == 24
    keys = Counter((tuple(sorted(r.config.items())), r.item_index, r.repeat) for r in page.items)
    assert set(keys.values()) == {1}


async def test_a_repeated_sweep_is_served_from_the_cache(workbench: Workbench, sim: Any) -> None:
    text = experiment_yaml(endpoint=inline(sim.base_url))
    first = await workbench.run_sweep(await start(workbench, text))
    requests_after_first = sim.state.requests
    second = await workbench.run_sweep(await start(workbench, text))
    assert sim.state.requests == requests_after_first, "no call was paid twice"
    assert second.runs.cached == second.runs.completed == first.runs.completed
    assert second.calls.cache_hits == second.calls.requested == first.calls.requested
    assert second.tokens.input == second.tokens.output == 0
    assert [e.score for e in second.leaderboard] == [e.score for e in first.leaderboard]
    stats = await workbench.cache_stats()
    assert stats.entries == first.calls.requested
    assert stats.hits == second.calls.cache_hits and stats.hit_rate == 0.5


async def test_no_cache_makes_every_call_again(workbench: Workbench, sim: Any) -> None:
    text = experiment_yaml(endpoint=inline(sim.base_url))
    await workbench.run_sweep(await start(workbench, text))
    before = sim.state.requests
    summary = await workbench.run_sweep(await start(workbench, text, no_cache=True))
    assert sim.state.requests - before == summary.calls.requested == 12
    assert summary.calls.cache_hits == 0


async def test_changing_stage_two_reuses_stage_one_calls(workbench: Workbench, sim: Any) -> None:
    def two_stage(polish: str) -> str:
        return experiment_yaml(
            endpoint=inline(sim.base_url),
            pipeline=[
                {"name": "draft", "user": "Answer: {{ item.input.question }}"},
                {"name": "polish", "user": polish + " {{ stages.draft.output }}"},
            ],
        )

    first = await workbench.run_sweep(await start(workbench, two_stage("Polish:")))
    second = await workbench.run_sweep(await start(workbench, two_stage("Shorten:")))
    assert first.calls.requested == second.calls.requested == 24
    assert second.calls.cache_hits == 12, "every draft call came from the cache"


async def test_random_and_guided_sweeps_are_reproducible(workbench: Workbench) -> None:
    spec = experiment_yaml(
        parameters={
            "model": ["small-model", "large-model"],
            "temperature": {"min": 0.0, "max": 1.0},
        },
    )
    for strategy in ("random", "guided"):
        configs = []
        for _ in range(2):
            sweep_id = await start(workbench, spec, strategy=strategy, samples=5, seed=42)
            summary = await workbench.run_sweep(sweep_id)
            assert summary.status == "completed"
            configs.append(
                sorted(
                    str(e.config)
                    for e in await workbench.leaderboard("support", top=100, sweep=sweep_id)
                )
            )
        assert configs[0] == configs[1]
        assert len(configs[0]) == 5


async def test_budget_stops_dispatching_and_ends_budget_exhausted(workbench: Workbench) -> None:
    sweep_id = await start(workbench, experiment_yaml(), repeats=10, max_tokens=1500)
    summary = await workbench.run_sweep(sweep_id)
    assert summary.status == "budget_exhausted"
    assert 0 < summary.runs.completed < 120
    assert summary.tokens.input + summary.tokens.output <= 1500
    sweep = await workbench.get_sweep(sweep_id)
    assert sweep.resumable
    resumed = await workbench.run_sweep(sweep_id, max_tokens=10**9)
    assert resumed.status == "completed" and resumed.runs.completed == 120


async def test_pause_resume_and_stop(workbench: Workbench) -> None:
    async with simulated_endpoint(SimulatorOptions(latency_ms=30)) as slow:
        sweep_id = await start(
            workbench, experiment_yaml(endpoint=inline(slow.base_url)), repeats=8, concurrency=2
        )
        events = workbench.bus.subscribe(accept=lambda e: e.sweep_id == sweep_id)
        task = await workbench.start_sweep(sweep_id)
        while (await events.get()).type != "run.completed":
            pass
        paused = await workbench.pause_sweep(sweep_id)
        assert paused.status == "paused"
        await asyncio.sleep(0.2)  # in-flight runs finish; nothing new starts
        done_while_paused = (await workbench.get_sweep(sweep_id)).runs_completed
        await asyncio.sleep(0.2)
        assert (await workbench.get_sweep(sweep_id)).runs_completed == done_while_paused
        await workbench.resume_paused_sweep(sweep_id)
        while (await events.get()).type != "run.completed":
            pass
        stopped = await workbench.stop_sweep(sweep_id)
        assert await task == "stopped"
        assert stopped.status == "stopped" and stopped.resumable
        assert 0 < stopped.runs_completed < 96
        types = [e.type for e in workbench.bus.replay() if e.sweep_id == sweep_id]
        for expected in ("sweep.started", "sweep.paused", "sweep.resumed", "sweep.stopped"):
            assert expected in types
        summary = await workbench.run_sweep(sweep_id)
        assert summary.status == "completed" and summary.runs.completed == 96


async def test_failing_endpoint_records_clear_errors_and_aborts(workbench: Workbench) -> None:
    async with simulated_endpoint(SimulatorOptions(fail_rate=1.0)) as broken:
        text = experiment_yaml(endpoint=inline(broken.base_url))
        sweep_id = await start(workbench, text, repeats=10)
        status = await (await workbench.start_sweep(sweep_id))
    assert status == "failed"
    sweep = await workbench.get_sweep(sweep_id)
    assert "failed runs in a row" in (sweep.error or "")
    failed = await workbench.list_runs(sweep=sweep_id, status="failed")
    assert failed.total >= 10
    detail = await workbench.get_run(failed.items[0].id)
    assert "after 3 attempts" in (detail.error or "") and "500" in (detail.error or "")


async def test_human_scores_change_the_run_score_and_emit_events(workbench: Workbench) -> None:
    summary = await workbench.run_sweep(await start(workbench, experiment_yaml()))
    run = (await workbench.list_runs(limit=1)).items[0]
    events = workbench.bus.subscribe()
    detail = await workbench.add_score(run.id, 1.0, note="great")
    human = [s for s in detail.scores if s.kind == "human"]
    assert human and human[0].note == "great"
    autos = [s for s in detail.scores if s.kind == "auto"]
    weights = sum(s.weight for s in autos) + 1.0
    expected = (sum(s.value * s.weight for s in autos if s.value is not None) + 1.0) / weights
    assert detail.score == pytest.approx(expected)
    event = events.get_nowait()
    assert event is not None and event.type == "score.added" and event.run_id == run.id
    with pytest.raises(BadInput):
        await workbench.add_score(run.id, 1.5)
    assert summary.status == "completed"


async def test_lookups_name_what_is_missing(workbench: Workbench) -> None:
    with pytest.raises(NotFound, match="nope"):
        await workbench.get_experiment("nope")
    with pytest.raises(NotFound):
        await workbench.get_run("run_missing")
    imported = await workbench.import_text(experiment_yaml())
    with pytest.raises(NotFound, match="no sweeps yet"):
        await workbench.resolve_sweep(imported.name)
    sweep_id = await start(workbench, experiment_yaml())
    await workbench.run_sweep(sweep_id)
    with pytest.raises(Conflict, match="is completed; it has no runs left to do"):
        await workbench.start_sweep(sweep_id)
    with pytest.raises(Conflict, match="no failed runs to retry"):
        await workbench.start_sweep(sweep_id, retry_failed=True)


async def test_retry_failed_reruns_the_failed_runs_of_a_completed_sweep(
    workbench: Workbench,
) -> None:
    async with simulated_endpoint(SimulatorOptions(fail_rate=0.5, seed=3)) as flaky:
        text = experiment_yaml(endpoint=inline(flaky.base_url))
        sweep_id = await start(workbench, text, repeats=4)
        first = await workbench.run_sweep(sweep_id)
        assert first.status == "completed" and first.runs.failed > 0
        second = await workbench.run_sweep(sweep_id, retry_failed=True)
    assert second.runs.total == first.runs.total == 48
    assert second.runs.failed < first.runs.failed
    assert second.runs.completed + second.runs.failed == 48


async def test_reimporting_makes_versions_only_when_content_changes(workbench: Workbench) -> None:
    first = await workbench.import_text(experiment_yaml())
    same = await workbench.import_text(experiment_yaml())
    changed = await workbench.import_text(experiment_yaml(description="new"))
    assert (first.version, same.version, changed.version) == (1, 1, 2)
    assert not same.created and changed.created and first.id == changed.id
    detail = await workbench.get_experiment("support")
    assert detail.version == 2 and detail.versions == 2


async def test_simultaneous_imports_of_one_name_each_get_a_version(workbench: Workbench) -> None:
    texts = [experiment_yaml(description=f"edit {n}") for n in range(4)]
    results = await asyncio.gather(*(workbench.import_text(text) for text in texts))
    assert len({r.id for r in results}) == 1
    assert sorted(r.version for r in results) == [1, 2, 3, 4]
    new = experiment_yaml(description="edit 4")
    again = await asyncio.gather(*(workbench.import_text(new) for _ in range(3)))
    assert [r.version for r in again] == [5, 5, 5]


async def test_dry_run_plan_counts_cached_calls(workbench: Workbench) -> None:
    imported = await workbench.import_text(experiment_yaml())
    plan = await workbench.plan(imported.id)
    assert (plan.configs, plan.runs, plan.calls, plan.cached_calls) == (4, 12, 12, 0)
    assert plan.estimated_tokens > 12 * 60
    await workbench.run_sweep(await workbench.create_sweep(imported.id))
    again = await workbench.plan(imported.id)
    assert again.cached_calls == 12 and again.estimated_tokens == 0
    fresh = await workbench.plan(imported.id, SweepOverrides(no_cache=True))
    assert fresh.cached_calls == 0
