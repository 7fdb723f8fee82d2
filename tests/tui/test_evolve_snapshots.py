"""A snapshot of the inspector on a run of a prompt evolve's proposer wrote: its lineage and the
diff against its parent, over a finished sweep made the same every time (numbered ids, fixed
latencies and times; the simulated endpoint and proposer are seeded). Update with
`--snapshot-update`, after looking at the report."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from promptlooper_tui.settings import Settings
from promptlooper_tui.tui.factory import make_app
from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.widgets.prompt_diff import PromptLineage
from promptlooper_tui.workbench import open_workbench

from .conftest import SIZE, wait_until
from .evolve_data import evolve_yaml, evolved_run
from .sweep_data import make_deterministic, open_over_home

SnapCompare = Callable[..., bool]


@pytest.fixture
def evolved_run_id(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """A run, in a finished evolve sweep, of the first prompt its proposer wrote."""
    numbers = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(numbers) << 88))

    async def build() -> str:
        async with open_workbench(settings) as wb:
            imported = await wb.import_text(evolve_yaml())
            sweep_id = await wb.create_sweep(imported.id)
            await wb.run_sweep(sweep_id)
            await make_deterministic(wb, sweep_id)
            return await evolved_run(wb, sweep_id)

    return asyncio.run(build())


def test_inspector_of_an_evolved_prompt(
    settings: Settings, evolved_run_id: str, snap_compare: SnapCompare
) -> None:
    async def lineage_shown(pilot: Pilot[None]) -> None:
        inspector = RunInspectorScreen(evolved_run_id)
        await open_over_home(pilot, inspector)
        await wait_until(pilot, lambda: inspector.query(PromptLineage), "the lineage")
        await pilot.pause()

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=lineage_shown)
