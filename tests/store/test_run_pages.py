"""Pages of runs: newest first, by offset (from either end) or by cursor, filtered, and every
page read from an index whatever its depth."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.store.runs import PAGE_IDS_NEWEST_FIRST, PAGE_IDS_OLDEST_FIRST, RunFilter
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml

RUNS = 57


async def _store_runs(wb: Workbench) -> tuple[str, str, list[str]]:
    """RUNS runs of one sweep (with ties on finished_at); returns the experiment id, the sweep
    id and the run ids newest first."""
    imported = await wb.import_text(experiment_yaml())
    sweep_id = await wb.create_sweep(imported.id)
    await wb.db.execute(
        "INSERT INTO configs (id, sweep_id, key, params) VALUES (1, ?, 'k', '{}')", (sweep_id,)
    )
    rows = [
        (
            f"run_{n:03d}",
            sweep_id,
            imported.id,
            n,
            "failed" if n % 5 == 0 else "completed",
            n / RUNS,
            f"2024-01-01T00:00:{n // 3:02d}.000+00:00",
        )
        for n in range(RUNS)
    ]
    await wb.db.write(
        [
            (
                "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
                "status, score, finished_at) VALUES (?, ?, 1, ?, ?, 0, ?, ?, ?)",
                row,
            )
            for row in rows
        ]
    )
    newest_first = [row[0] for row in sorted(rows, key=lambda r: (r[6], r[0]), reverse=True)]
    return imported.id, sweep_id, newest_first


async def test_offset_pages_match_the_order_from_either_end(workbench: Workbench) -> None:
    experiment_id, _, expected = await _store_runs(workbench)
    for offset in (0, 10, RUNS // 2, RUNS // 2 + 1, 40, RUNS - 7, RUNS - 1, RUNS, RUNS + 5):
        page = await workbench.list_runs(experiment=experiment_id, limit=10, offset=offset)
        assert page.total == RUNS
        assert [run.id for run in page.items] == expected[offset : offset + 10], offset


async def test_cursors_walk_every_run_once(workbench: Workbench) -> None:
    _, sweep_id, expected = await _store_runs(workbench)
    seen: list[str] = []
    page = await workbench.list_runs(sweep=sweep_id, limit=8)
    while True:
        seen += [run.id for run in page.items]
        if page.next is None:
            break
        page = await workbench.list_runs(sweep=sweep_id, limit=8, after=page.next)
    assert seen == expected
    # A cursor with an offset skips on from it.
    first = await workbench.list_runs(sweep=sweep_id, limit=8)
    skipped = await workbench.list_runs(sweep=sweep_id, limit=8, offset=3, after=first.next)
    assert [run.id for run in skipped.items] == expected[11:19]


async def test_the_last_page_has_no_next_even_when_full(workbench: Workbench) -> None:
    _, sweep_id, expected = await _store_runs(workbench)
    assert (await workbench.list_runs(sweep=sweep_id, limit=RUNS)).next is None
    page = await workbench.list_runs(sweep=sweep_id, limit=RUNS - 19)
    last = await workbench.list_runs(sweep=sweep_id, limit=19, after=page.next)
    assert [run.id for run in last.items] == expected[-19:] and last.next is None
    assert (await workbench.list_runs(sweep=sweep_id, limit=19, offset=RUNS - 19)).next is None


async def test_filters_hold_on_every_page(workbench: Workbench) -> None:
    _, _, expected = await _store_runs(workbench)
    failed = [run_id for run_id in expected if int(run_id[4:]) % 5 == 0]
    page = await workbench.list_runs(status="failed", limit=4)
    assert page.total == len(failed)
    more = await workbench.list_runs(status="failed", limit=4, after=page.next)
    assert [run.id for run in page.items + more.items] == failed[:8]
    tail = await workbench.list_runs(status="failed", limit=4, offset=len(failed) - 2)
    assert [run.id for run in tail.items] == failed[-2:]
    scored = await workbench.list_runs(min_score=0.25, max_score=0.5, limit=100)
    assert all(0.25 <= (run.score or 0) <= 0.5 for run in scored.items)
    assert scored.total == len(scored.items) > 0


def _forged(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "W10",
        "WyJhIiwgMV0",
        "x" * 600,
        "é",
        _forged("2024", "run_1"),
        _forged("\ud800", "run_1", "0" * 12),
        _forged({"a": 1, "b": 2, "c": 3}),
    ],
)
async def test_a_cursor_not_made_here_is_bad_input(workbench: Workbench, cursor: str) -> None:
    with pytest.raises(BadInput, match="invalid cursor after="):
        await workbench.list_runs(after=cursor)


async def test_a_cursor_pages_only_the_listing_it_was_made_for(workbench: Workbench) -> None:
    experiment_id, sweep_id, expected = await _store_runs(workbench)
    page = await workbench.list_runs(sweep=sweep_id, limit=5)
    same = await workbench.list_runs(sweep=sweep_id, limit=7, after=page.next)
    assert [run.id for run in same.items] == expected[5:12]
    others: list[dict[str, Any]] = [
        {},
        {"experiment": experiment_id},
        {"sweep": sweep_id, "status": "completed"},
        {"sweep": sweep_id, "min_score": 0.0},
    ]
    for other in others:
        with pytest.raises(BadInput, match="other filters"):
            await workbench.list_runs(**other, after=page.next)


@pytest.mark.parametrize(
    "runs", [RunFilter(), RunFilter(experiment_id="e"), RunFilter(sweep_id="s")]
)
@pytest.mark.parametrize("query", [PAGE_IDS_NEWEST_FIRST, PAGE_IDS_OLDEST_FIRST])
@pytest.mark.sqlite_only("reads SQLite's query plan")
async def test_pages_are_read_from_an_index_in_order(
    workbench: Workbench, runs: RunFilter, query: str
) -> None:
    where, params = runs.where(after=("2024", "run"))
    plan = await workbench.db.fetchall(
        "EXPLAIN QUERY PLAN " + query.format(where=where), [*params, 10, 0]
    )
    steps = " ".join(row["detail"] for row in plan)
    assert "USING COVERING INDEX" in steps, steps
    assert "TEMP B-TREE" not in steps, steps
