"""An evolve sweep's lineage over real HTTP on 127.0.0.1: `GET /api/sweeps/{sweep}/evolution`
as its declared schema says, clear JSON errors for unknown, odd and non-evolve sweeps and for
callers without the token, and each generation's `sweep.generation` event on the websocket
feed and to a webhook that asks for it."""

from __future__ import annotations

import json

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from promptlooper_tui.asgi import serve_app
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT, evolve_yaml, run_evolve_sweep

from ..conftest import experiment_yaml
from .conftest import AUTH, RunningApi
from .test_hostile_api import _validator, assert_error
from .test_ws import events_until


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


async def test_unknown_and_odd_sweep_ids_are_a_4xx_json_error(api: RunningApi) -> None:
    odd = ["sw_0000000000", "nope", "x" * 5000, "%C3%A9", "%00", "sw_%27%20OR%201%3D1", "..", "%2F"]
    for sweep in odd:
        response = await api.client.get(f"/api/sweeps/{sweep}/evolution")
        assert_error(response, (400, 404))


async def test_no_token_or_a_wrong_one_is_401(api: RunningApi) -> None:
    sweep_id = await run_evolve_sweep(api.wb)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        async with httpx.AsyncClient(base_url=api.base, headers=headers) as client:
            response = await client.get(f"/api/sweeps/{sweep_id}/evolution")
        assert_error(response, (401,))
        assert "template" not in response.text


async def test_a_subscriber_and_a_webhook_see_each_generation_as_it_is_proposed(
    api: RunningApi,
) -> None:
    delivered: list[bytes] = []

    async def hook(request: Request) -> Response:
        delivered.append(await request.body())
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serve_app(receiver) as port:
        added = await api.client.post(
            "/api/webhooks",
            json={"url": f"http://127.0.0.1:{port}/hook", "events": ["sweep.generation"]},
        )
        assert added.status_code == 201, added.text
        assert added.json()["events"] == ["sweep.generation"]
        created = await api.client.post("/api/experiments", json={"yaml": evolve_yaml()})
        assert created.status_code == 201, created.text
        name = EVOLVE_EXPERIMENT["name"]
        async with connect(api.ws_url(f"experiment={name}"), additional_headers=AUTH) as ws:
            started = await api.client.post(f"/api/experiments/{name}/sweeps")
            sweep_id = started.json()["sweep_id"]
            messages = await events_until(ws, "sweep.completed")
        # Every queued delivery made before the receiver goes.
        await api.wb.webhooks.aclose(grace=5.0)

    generations = [m for m in messages if m["type"] == "sweep.generation"]
    lineage = await api.wb.evolution(sweep_id)
    assert [m["data"]["generation"] for m in generations] == [1, 2]
    for message, generation in zip(generations, lineage.generations, strict=True):
        assert message["sweep_id"] == sweep_id and message["data"]["cached"] is False
        assert message["data"]["proposals"] == [
            {"name": p.name, "parents": p.parents, "rationale": p.rationale, "rejected": p.reason}
            for p in generation.proposals
        ]
    # The feed announces a generation before the runs of the prompts it proposed.
    proposed = [
        i
        for i, m in enumerate(messages)
        if m["type"] == "run.started" and m["data"]["config"]["prompt"].startswith("g1.")
    ]
    assert proposed and messages.index(generations[0]) < proposed[0]
    assert [json.loads(body) for body in delivered] == generations
