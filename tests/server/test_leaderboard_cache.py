"""The Workbench's leaderboard cache: many readers share one ranking, and a change to the data
(a new score) shows at once."""

from __future__ import annotations

import asyncio

from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml


async def test_concurrent_readers_agree_and_a_score_shows_at_once(workbench: Workbench) -> None:
    await workbench.import_text(experiment_yaml())
    sweep_id = await workbench.create_sweep("support")
    await workbench.run_sweep(sweep_id)
    boards = await asyncio.gather(*(workbench.leaderboard("support") for _ in range(50)))
    assert all(board == boards[0] for board in boards) and len(boards[0]) == 4
    summary = await workbench.sweep_summary(sweep_id, top=10)
    assert summary.leaderboard == boards[0]

    last = boards[0][-1]
    runs = (await workbench.list_runs(sweep=sweep_id, limit=100)).items
    run = next(r for r in runs if r.config == last.config)
    await workbench.add_score(run.id, 1.0)
    after = await workbench.leaderboard("support")
    assert next(e for e in after if e.config == last.config).score > last.score
    assert (await workbench.sweep_summary(sweep_id)).leaderboard == after
