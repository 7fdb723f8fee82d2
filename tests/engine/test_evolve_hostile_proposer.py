"""A hostile proposer endpoint (tests/fixtures/hostile_llm.py on 127.0.0.1): its answers are
bounded like any call's, so an evolve sweep fails in bounded time with an error that names the
proposer's generation and stays resumable, or goes on where the answer is merely unreadable;
the proposer's key is never echoed into what the sweep stores."""

from __future__ import annotations

import json
import time

import yaml

from promptlooper_tui.workbench import SweepOverrides, Workbench
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT

from ..fixtures.hostile_llm import (
    MIB,
    HostileLLM,
    echo_key,
    hostile_fixture,  # noqa: F401
    huge_body,
    page,
)

KEY = "sk-proposer-" + "0123456789abcdef" * 2
#: Generous: what a loaded 2-core machine needs at worst for calls that take well under 1 s.
SLACK = 30.0


async def evolve_with_proposer(wb: Workbench, base_url: str) -> str:
    sweep = EVOLVE_EXPERIMENT["sweep"] | {
        "generations": 1,
        "proposer": {
            "endpoint": {"base_url": base_url, "api_key_env": "PROPOSER_KEY"},
            "model": "m",
        },
    }
    text = yaml.safe_dump({**EVOLVE_EXPERIMENT, "sweep": sweep}, sort_keys=False)
    imported = await wb.import_text(text)
    return await wb.create_sweep(imported.id, SweepOverrides())


async def test_a_50_mb_answer_fails_the_sweep_in_bounded_time_naming_the_generation(
    workbench: Workbench, hostile: HostileLLM, monkeypatch: object
) -> None:
    monkeypatch.setenv("PROPOSER_KEY", KEY)  # type: ignore[attr-defined]
    sweep_id = await evolve_with_proposer(workbench, hostile.base_url(huge_body(50 * MIB)))
    started = time.perf_counter()
    summary = await workbench.run_sweep(sweep_id)
    assert time.perf_counter() - started < SLACK
    assert summary.status == "failed"
    sweep = await workbench.get_sweep(sweep_id)
    assert "proposer's call for generation 1" in (sweep.error or "") and sweep.resumable


async def test_an_html_page_or_an_echoed_key_is_an_unreadable_answer_or_a_failure_without_the_key(
    workbench: Workbench, hostile: HostileLLM, monkeypatch: object
) -> None:
    monkeypatch.setenv("PROPOSER_KEY", KEY)  # type: ignore[attr-defined]
    nginx = page(200, "text/html", b"<html><body>Welcome to nginx!</body></html>")
    for scenario in (nginx, echo_key("error")):
        sweep_id = await evolve_with_proposer(workbench, hostile.base_url(scenario))
        summary = await workbench.run_sweep(sweep_id)
        assert summary.status in ("completed", "failed"), summary
        if summary.status == "failed":
            error = (await workbench.get_sweep(sweep_id)).error or ""
            assert "proposer's call for generation 1" in error, error
        stored = json.dumps(
            [
                summary.model_dump(mode="json"),
                (await workbench.get_sweep(sweep_id)).model_dump(mode="json"),
                (await workbench.evolution(sweep_id)).model_dump(mode="json")
                if summary.status == "completed"
                else None,
            ]
        )
        assert KEY not in stored and KEY[-16:] not in stored
