"""`GET /api/sweeps/{sweep}/evolution`, over real HTTP on 127.0.0.1: an evolve sweep's lineage
as its declared schema says, and clear JSON errors for unknown, odd and non-evolve sweeps and
for callers without the token."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT, run_evolve_sweep

from ..conftest import experiment_yaml
from .conftest import RunningApi
from .test_hostile_api import _validator, assert_error


async def test_the_lineage_of_an_evolve_sweep_as_its_schema_says(api: RunningApi) -> None:
    sweep_id = await run_evolve_sweep(api.wb)
    response = await api.client.get(f"/api/sweeps/{sweep_id}/evolution")
    assert response.status_code == 200, response.text
    lineage = response.json()
    assert lineage == (await api.wb.evolution(sweep_id)).model_dump(mode="json")
    assert lineage["parameter"] == "prompt" and len(lineage["holdout_items"]) == 3
    assert [g["generation"] for g in lineage["generations"]] == [1, 2]
    proposals = [p for g in lineage["generations"] for p in g["proposals"]]
    assert {p["status"] for p in proposals} == {"accepted", "rejected"}
    assert all(p["parents"] and p["rationale"] for p in proposals)

    document = (await api.client.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/sweeps/{sweep}/evolution"]["get"]
    declared = operation["responses"]["200"]["content"]["application/json"]["schema"]
    _validator(document, declared).validate(lineage)
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    # The experiment's name names its latest sweep; a repeated read is a 304.
    by_name = await api.client.get(f"/api/sweeps/{EVOLVE_EXPERIMENT['name']}/evolution")
    assert by_name.json() == lineage
    again = await api.client.get(
        f"/api/sweeps/{sweep_id}/evolution", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


async def test_a_sweep_of_another_strategy_is_400_naming_it(api: RunningApi) -> None:
    imported = await api.wb.import_text(experiment_yaml())
    sweep_id = await api.wb.create_sweep(imported.id)
    response = await api.client.get(f"/api/sweeps/{sweep_id}/evolution")
    assert_error(response, (400,), sweep_id, "grid sweep, not an evolve sweep")


@pytest.mark.parametrize(
    "sweep",
    ["sw_0000000000", "nope", "x" * 5000, "%C3%A9", "%00", "sw_%27%20OR%201%3D1", "..", "%2F"],
)
async def test_unknown_and_odd_sweep_ids_are_a_4xx_json_error(api: RunningApi, sweep: str) -> None:
    response = await api.client.get(f"/api/sweeps/{sweep}/evolution")
    assert_error(response, (400, 404))


async def test_no_token_or_a_wrong_one_is_401(api: RunningApi) -> None:
    sweep_id = await run_evolve_sweep(api.wb)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        async with httpx.AsyncClient(base_url=api.base, headers=headers) as client:
            response = await client.get(f"/api/sweeps/{sweep_id}/evolution")
        assert_error(response, (401,))
        assert "template" not in response.text
