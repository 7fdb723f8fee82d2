"""Workbench operations the front-ends need beyond import and sweep: duplicate, delete, and the
simulated endpoint with options."""

from __future__ import annotations

import pytest

from promptlooper_tui.domain.errors import BadInput, Conflict, NotFound
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml


async def test_duplicate_copies_the_latest_version_under_a_free_name(
    workbench: Workbench,
) -> None:
    await workbench.import_text(experiment_yaml())
    await workbench.import_text(experiment_yaml(description="second version"))

    first = await workbench.duplicate_experiment("support")
    second = await workbench.duplicate_experiment("support")

    assert (first.name, first.version, first.created) == ("support-copy", 1, True)
    assert second.name == "support-copy-2"
    copy = await workbench.get_experiment("support-copy")
    assert copy.description == "second version"
    assert "name: support-copy\n" in copy.spec_yaml
    assert copy.spec["dataset"] == (await workbench.get_experiment("support")).spec["dataset"]


async def test_duplicate_refuses_a_taken_or_invalid_name(workbench: Workbench) -> None:
    await workbench.import_text(experiment_yaml())
    await workbench.import_text(experiment_yaml(name="other"))

    with pytest.raises(Conflict):
        await workbench.duplicate_experiment("support", "other")
    with pytest.raises(BadInput):
        await workbench.duplicate_experiment("support", "has spaces")


async def test_delete_removes_the_experiment_with_its_sweeps_and_runs(
    workbench: Workbench,
) -> None:
    imported = await workbench.import_text(experiment_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)
    await workbench.import_text(experiment_yaml(name="kept"))

    assert await workbench.delete_experiment("support") == "support"

    assert [e.name for e in await workbench.list_experiments()] == ["kept"]
    with pytest.raises(NotFound):
        await workbench.get_sweep(sweep_id)
    for table in ("runs", "stage_results", "scores", "experiment_versions"):
        row = await workbench.db.fetchone(f"SELECT count(*) AS n FROM {table}")
        assert row is not None
        assert row["n"] == (1 if table == "experiment_versions" else 0), table


async def test_a_running_sweep_shows_and_blocks_deleting_its_experiment(
    workbench: Workbench,
) -> None:
    await workbench.start_simulated_endpoint(SimulatorOptions(latency_ms=200))
    imported = await workbench.import_text(experiment_yaml(sweep={"max_concurrency": 1}))
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.start_sweep(sweep_id)

    # A sweep live in this very process reads as running, not as interrupted.
    assert (await workbench.list_experiments())[0].latest_sweep_status == "running"
    assert (await workbench.get_experiment("support")).latest_sweep_status == "running"
    with pytest.raises(Conflict):
        await workbench.delete_experiment("support")

    await workbench.stop_sweep(sweep_id)
    await workbench.delete_experiment("support")


async def test_the_simulated_endpoint_starts_once_with_the_given_options(
    workbench: Workbench,
) -> None:
    url = await workbench.start_simulated_endpoint(SimulatorOptions(latency_ms=1))

    assert url.startswith("http://127.0.0.1:")
    assert await workbench.start_simulated_endpoint(SimulatorOptions()) == url
    assert (await workbench.test_endpoint("simulated")).ok


async def test_replacing_an_endpoint_keeps_its_key_only_when_asked(workbench: Workbench) -> None:
    await workbench.add_endpoint("local", "http://127.0.0.1:9/v1", api_key="sk-kept-1234")
    kept = await workbench.add_endpoint("local", "http://127.0.0.1:10/v1", keep_api_key=True)
    assert kept.has_api_key and kept.base_url == "http://127.0.0.1:10/v1"
    by_env = await workbench.add_endpoint(
        "local", "http://127.0.0.1:10/v1", api_key_env="MY_KEY", keep_api_key=True
    )
    assert by_env.api_key_env == "MY_KEY"
    row = await workbench.db.fetchone("SELECT api_key_encrypted FROM endpoints")
    assert row is not None and row["api_key_encrypted"] is None
    await workbench.add_endpoint("local", "http://127.0.0.1:9/v1", api_key="sk-kept-1234")
    replaced = await workbench.add_endpoint("local", "http://127.0.0.1:9/v1")
    assert not replaced.has_api_key
