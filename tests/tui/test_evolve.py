"""evolve in the app: the launch dialog's evolve settings, the monitor's generations (live from
the sweep's events, and from the store when a finished sweep is reopened), and the inspector's
lineage and diff of a prompt the proposer wrote."""

from __future__ import annotations

import pytest
from textual.content import Content
from textual.widgets import Input, Select, Static

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import SweepSettings
from promptlooper_tui.domain.records import Evolution
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.launch import LaunchScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.tui.widgets.generations import GenerationsView
from promptlooper_tui.tui.widgets.leaderboard import LeaderboardTable
from promptlooper_tui.tui.widgets.prompt_diff import PromptLineage, template_diff
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml
from .conftest import (
    SIZE,
    AppMaker,
    notifications,
    open_home,
    screen_text,
    wait_for_screen,
    wait_until,
)
from .evolve_data import evolve_yaml, evolved_run
from .sweep_data import open_over_home


def shown(widget: Static) -> str:
    return str(widget.render())


def test_the_proposer_model_override_keeps_the_files_proposer_endpoint_and_params() -> None:
    base = SweepSettings.model_validate(
        {
            "strategy": "evolve",
            "proposer": {"endpoint": "simulated", "model": "small-model", "params": {"seed": 1}},
        }
    )
    overrides = SweepOverrides(proposer_model="large-model", generations=2, holdout=0.25)
    settings = overrides.apply(base)
    assert settings.proposer is not None
    assert settings.proposer.model_dump() == {
        "endpoint": "simulated",
        "model": "large-model",
        "params": {"seed": 1},
    }
    assert (settings.generations, settings.proposals, settings.holdout) == (2, 4, 0.25)

    made = SweepOverrides(strategy="evolve", proposer_model="large-model").apply(SweepSettings())
    assert made.proposer is not None and made.proposer.model == "large-model"
    with pytest.raises(BadInput, match="needs a proposer"):
        SweepOverrides(strategy="evolve").apply(SweepSettings())
    for wrong in ({"generations": 0}, {"proposals": 21}, {"holdout": 0.9}, {"proposer_model": ""}):
        with pytest.raises(ValueError):
            SweepOverrides.model_validate(wrong)


async def test_the_launch_dialog_starts_an_evolve_sweep_and_the_monitor_shows_its_generations(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        # The file races its prompts and names no proposer: the dialog supplies one.
        await app.workbench.import_text(
            evolve_yaml(strategy="racing", generations=None, proposals=None, proposer=None)
        )
        await open_home(pilot, experiments=1)
        await pilot.press("l")
        launch = await wait_for_screen(pilot, LaunchScreen)
        plan = launch.query_one("#plan", Static)
        await wait_until(pilot, lambda: "configs" in shown(plan), "the racing plan")
        assert not launch.query_one("#generations", Input).display

        # Keyboard only: open the focused strategy list and pick evolve, its last entry.
        assert launch.query_one("#strategy", Select).has_focus
        await pilot.press("enter", "end", "enter")
        await wait_until(pilot, lambda: "needs a proposer" in shown(plan), "the engine's refusal")
        assert launch.query_one("#generations", Input).display
        assert not launch.query_one("#samples", Input).display
        assert launch.query_one("#generations", Input).value == "3"  # the default
        assert launch.query_one("#proposals", Input).value == "4"

        await pilot.press("ctrl+r")  # refused in the dialog, which stays open
        await wait_until(pilot, lambda: notifications(app), "the refusal")
        assert "needs a proposer" in notifications(app)[-1]
        assert isinstance(app.screen, LaunchScreen)

        launch.query_one("#generations", Input).value = "2"
        launch.query_one("#proposals", Input).value = "3"
        launch.query_one("#proposer", Input).value = "large-model"
        await wait_until(pilot, lambda: "configs" in shown(plan), "the evolve plan")
        assert "problem" not in plan.classes
        await pilot.press("ctrl+r")

        monitor = await wait_for_screen(pilot, MonitorScreen)
        await wait_until(
            pilot, lambda: app.workbench.runner(monitor.sweep_id) is None, "the end", seconds=60
        )
        summary = monitor.query_one("#generation-summary", Static)
        await wait_until(pilot, lambda: shown(summary).startswith("gen 2:"), "generation 2")
        evolution = await app.workbench.evolution(monitor.sweep_id)
        assert [g.model for g in evolution.generations] == ["large-model", "large-model"]
        assert all(len(g.proposals) == 3 for g in evolution.generations)
        last = evolution.generations[-1]
        accepted = [p for p in last.proposals if p.status == "accepted"]
        assert shown(summary) == (
            f"gen 2: {len(accepted)} accepted, {3 - len(accepted)} rejected (proposer large-model)"
        )
        text = screen_text(app)
        for proposal in accepted:
            assert f"{proposal.name} ← {', '.join(proposal.parents)}" in text


async def test_an_evolve_launch_without_a_prompt_parameter_says_why_in_the_dialog(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        await app.workbench.import_text(experiment_yaml())  # no `prompts:` to rewrite
        await open_home(pilot, experiments=1)
        await pilot.press("l")
        launch = await wait_for_screen(pilot, LaunchScreen)
        launch.query_one("#strategy", Select).value = "evolve"
        launch.query_one("#proposer", Input).value = "large-model"
        plan = launch.query_one("#plan", Static)
        await wait_until(pilot, lambda: "needs `prompts:`" in shown(plan), "the engine's error")
        assert "problem" in plan.classes
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: notifications(app), "the refusal")
        assert "needs `prompts:`" in notifications(app)[-1]
        assert isinstance(app.screen, LaunchScreen)
        assert await app.workbench.list_sweeps() == []


async def test_the_monitor_follows_generations_as_they_are_proposed(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        imported = await wb.import_text(evolve_yaml())
        sweep_id = await wb.create_sweep(imported.id)
        # Opened before the sweep starts: what it shows next can only come from the events.
        monitor = MonitorScreen(sweep_id)
        await open_over_home(pilot, monitor)
        summary = monitor.query_one("#generation-summary", Static)
        await wait_until(pilot, lambda: shown(summary).startswith("gen 0"), "the first read")
        assert shown(summary) == (
            "gen 0: racing the experiment's 2 prompts; the proposer writes new ones after it"
        )

        await wb.start_sweep(sweep_id)
        await wait_until(pilot, lambda: wb.runner(sweep_id) is None, "the end", seconds=60)
        await wait_until(pilot, lambda: shown(summary).startswith("gen 2:"), "generation 2")
        assert monitor.query_one(GenerationsView).evolution == await wb.evolution(sweep_id)


async def test_a_reopened_evolve_sweep_shows_its_last_generation_and_other_sweeps_none(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    imported = await workbench.import_text(evolve_yaml())
    evolve_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(evolve_id)
    grid_id = await workbench.create_sweep(imported.id, SweepOverrides(strategy="grid"))
    await workbench.run_sweep(grid_id)
    last = (await workbench.evolution(evolve_id)).generations[-1]

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        monitor = MonitorScreen(evolve_id)
        await open_over_home(pilot, monitor)
        view = monitor.query_one(GenerationsView)
        await wait_until(pilot, lambda: view.evolution is not None, "the lineage")
        assert view.display
        prompts = shown(monitor.query_one("#generation-prompts", Static)).splitlines()
        accepted = [p for p in last.proposals if p.status == "accepted"]
        rejected = [p for p in last.proposals if p.status == "rejected"]
        assert prompts == [
            *(f"{p.name} ← {', '.join(p.parents)}  {p.rationale}" for p in accepted),
            *(f"rejected ← {', '.join(p.parents)}  {p.reason}" for p in rejected),
        ]
        # Its leaderboard puts the training mean beside the held-out one, the winner first.
        board = monitor.query_one(LeaderboardTable)
        await wait_until(pilot, lambda: bool(board.entries), "the leaderboard")
        labels = [str(column.label) for column in board.columns.values()]
        assert "train" in labels and "held-out" in labels and "score" not in labels
        winner = board.entries[0]
        assert winner.holdout_score is not None
        assert f"{winner.holdout_score:.3f}"[:4] in screen_text(app)
        monitor.dismiss()

        grid = MonitorScreen(grid_id)
        await open_over_home(pilot, grid)
        await wait_until(pilot, lambda: grid.status is not None, "the grid sweep")
        assert not grid.query_one(GenerationsView).display
        labels = [str(c.label) for c in grid.query_one(LeaderboardTable).columns.values()]
        assert "held-out" not in labels
        assert "gen " not in screen_text(app)


async def test_the_inspector_shows_an_evolved_prompts_lineage_and_diff(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    imported = await workbench.import_text(evolve_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)
    run_id = await evolved_run(workbench, sweep_id)
    run = await workbench.get_run(run_id)
    evolution = await workbench.evolution(sweep_id)
    proposal = evolution.proposal(run.config["prompt"])
    assert proposal is not None
    parent = evolution.template(proposal.parents[0])
    assert parent is not None

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        inspector = RunInspectorScreen(run_id)
        await open_over_home(pilot, inspector)
        await wait_until(pilot, lambda: inspector.query(PromptLineage), "the lineage")
        text = screen_text(app)
        assert f"Prompt {proposal.name} · generation {proposal.generation}" in text
        assert proposal.rationale in text
        assert f"--- {proposal.parents[0]}" in text and f"+++ {proposal.name}" in text
        assert f"-{parent.splitlines()[0]}" in text
        assert f"+{proposal.template.splitlines()[0]}" in text

        # A run of one of the experiment's own prompts has no lineage to show.
        own = next(
            r
            for r in (await workbench.list_runs(sweep=sweep_id, limit=1000)).items
            if r.config["prompt"] in evolution.prompts
        )
        await inspector.app.push_screen(RunInspectorScreen(own.id))
        other = await wait_for_screen(pilot, RunInspectorScreen)
        await wait_until(pilot, lambda: other.run is not None, "the other run")
        await pilot.pause()
        assert not other.query(PromptLineage)


def test_the_diff_colours_lines_and_reads_no_markup_in_templates() -> None:
    diff = template_diff(
        "Say [b]hi[/b] to {{ item.name }}\nThen stop.",
        "Say [b]hello[/b] to {{ item.name }}\nThen stop.",
        parent_name="plain",
        child_name="g1.1",
    )
    assert isinstance(diff, Content)
    assert diff.plain.splitlines() == [
        "--- plain",
        "+++ g1.1",
        "@@ -1,2 +1,2 @@",
        "-Say [b]hi[/b] to {{ item.name }}",
        "+Say [b]hello[/b] to {{ item.name }}",
        " Then stop.",
    ]
    styles = {diff.plain[span.start : span.end]: str(span.style) for span in diff.spans}
    assert styles["-Say [b]hi[/b] to {{ item.name }}"] == "$error"
    assert styles["+Say [b]hello[/b] to {{ item.name }}"] == "$success"
    assert " Then stop." not in styles


async def test_a_burst_of_generation_events_costs_one_read_of_the_lineage(
    workbench: Workbench, make_test_app: AppMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = await workbench.import_text(evolve_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        monitor = MonitorScreen(sweep_id)
        await open_over_home(pilot, monitor)
        view = monitor.query_one(GenerationsView)
        await wait_until(pilot, lambda: view.evolution is not None, "the lineage")
        wb = app.workbench
        reads: list[str] = []
        read = wb.evolution

        async def counted(sweep_ref: str) -> Evolution:
            evolution = await read(sweep_ref)
            reads.append(sweep_ref)
            return evolution

        monkeypatch.setattr(wb, "evolution", counted)
        shown = view.evolution
        for n in range(500):  # all between two frames: nothing yields to the app meanwhile
            wb.bus.publish(
                "sweep.generation",
                imported.id,
                sweep_id=sweep_id,
                data={"generation": n, "cached": True, "proposals": []},
            )
        await wait_until(pilot, lambda: monitor.feed.events >= 500, "every event folded")
        await wait_until(pilot, lambda: reads, "the read")
        await pilot.pause()
        assert reads == [sweep_id]
        assert view.evolution is shown  # the lineage was unchanged: nothing redrawn
