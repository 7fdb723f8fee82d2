"""The HTTP API over a real socket: every route's happy path, its 4xx answers, and auth."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import httpx
import pytest
import yaml

from promptlooper_tui.export import FORMATS
from promptlooper_tui.server.http import EXPORT_MEDIA_TYPES, router
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint

from ..conftest import experiment_yaml
from .conftest import AUTH, TOKEN, RunningApi, wait_for_sweep


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["details"], list)
    return dict(body)


async def import_and_sweep(api: RunningApi, **sweep: Any) -> str:
    created = await api.client.post("/api/experiments", json={"yaml": experiment_yaml()})
    assert created.status_code == 201, created.text
    started = await api.client.post("/api/experiments/support/sweeps", json=sweep)
    assert started.status_code == 202, started.text
    sweep_id = str(started.json()["sweep_id"])
    assert (await wait_for_sweep(api.client, sweep_id))["status"] == "completed"
    return sweep_id


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_every_route_but_health_needs_the_token(
    api: RunningApi, headers: dict[str, str]
) -> None:
    await import_and_sweep(api)
    experiments_before = (await api.client.get("/api/experiments")).json()
    names = {"experiment": "support", "fmt": "csv", "sweep": "support", "name": "simulated"}
    names |= {"run_id": "run_x", "webhook_id": "wh_x"}
    routes = [
        (route.method, route.path.format(**names)) for route in router.table if not route.public
    ]
    assert len(routes) >= 25
    async with httpx.AsyncClient(base_url=api.base, headers=headers) as anonymous:
        assert (await anonymous.get("/api/health")).json()["ok"] is True
        for method, path in [
            *routes,
            ("GET", "/api/openapi.json"),
            ("GET", "/api/nowhere"),
        ]:
            response = await anonymous.request(method, path, json={"yaml": experiment_yaml()})
            error_of(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text
    # Nothing was done on behalf of the refused requests.
    assert (await api.client.get("/api/experiments")).json() == experiments_before
    assert len((await api.client.get("/api/sweeps")).json()) == 1


async def test_health_and_openapi_describe_every_route(api: RunningApi) -> None:
    health = await api.client.get("/api/health")
    assert health.json() == {"ok": True, "version": health.json()["version"]}
    document = (await api.client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    described = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    served = {
        (method, route.path)
        for route in api.app.routes
        if route.path.startswith("/api/") and route.path != "/api/openapi.json"
        for method in getattr(route, "methods", ()) - {"HEAD"}
    }
    assert described == served
    assert document["paths"]["/api/health"]["get"]["security"] == []
    # Every $ref resolves to a published component.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', health.text + str(document)))
    refs |= set(re.findall(r"'#/components/schemas/([^']+)'", str(document)))
    assert refs <= set(document["components"]["schemas"])
    start = document["paths"]["/api/experiments/{experiment}/sweeps"]["post"]
    assert "202" in start["responses"] and "422" in start["responses"]
    runs = document["paths"]["/api/runs"]["get"]
    named = {p["name"] for p in runs["parameters"]}
    assert named >= {"experiment", "status", "limit", "offset", "after"}
    export = document["paths"]["/api/experiments/{experiment}/export/{fmt}"]["get"]
    fmt = next(p for p in export["parameters"] if p["name"] == "fmt")
    assert set(fmt["schema"]["enum"]) == set(FORMATS)
    assert set(export["responses"]["200"]["content"]) == set(EXPORT_MEDIA_TYPES.values())


async def test_unknown_paths_and_methods_are_json_errors(api: RunningApi) -> None:
    error_of(await api.client.get("/api/nowhere"), 404)
    error_of(await api.client.put("/api/experiments"), 405)


# -- endpoints --------------------------------------------------------------------------------


async def test_endpoints_add_list_test_remove(api: RunningApi, sim: Any) -> None:
    client = api.client
    assert (await client.get("/api/endpoints")).json() == []
    added = await client.post(
        "/api/endpoints",
        json={"name": "local", "base_url": sim.base_url, "api_key": "sk-secret-value"},
    )
    assert added.status_code == 201, added.text
    assert added.json()["has_api_key"] is True
    assert "sk-secret-value" not in added.text
    listed = await client.get("/api/endpoints")
    assert [e["name"] for e in listed.json()] == ["local"]
    assert "sk-secret-value" not in listed.text
    tested = await client.post("/api/endpoints/local/test")
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert tested.json()["models"]
    assert (await client.delete("/api/endpoints/local")).status_code == 204
    assert (await client.get("/api/endpoints")).json() == []


async def test_endpoint_errors(api: RunningApi) -> None:
    client = api.client
    error_of(await client.post("/api/endpoints", json={"name": "x", "base_url": "ftp://x"}), 400)
    missing = error_of(await client.post("/api/endpoints", json={"base_url": "http://x"}), 422)
    assert missing["details"][0]["path"] == "body.name"
    typo = error_of(
        await client.post("/api/endpoints", json={"name": "x", "base_url": "http://x", "kee": 1}),
        422,
    )
    assert typo["details"][0]["path"] == "body.kee"
    error_of(await client.post("/api/endpoints/nope/test"), 404)
    error_of(await client.delete("/api/endpoints/nope"), 404)


# -- experiments and plans ----------------------------------------------------------------------


async def test_experiments_create_list_show_validate(api: RunningApi) -> None:
    client = api.client
    created = await client.post("/api/experiments", json={"yaml": experiment_yaml()})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "support" and body["version"] == 1 and body["id"].startswith("exp_")
    again = await client.post("/api/experiments", json={"yaml": experiment_yaml()})
    assert again.json()["version"] == 1 and again.json()["created"] is False
    changed = await client.post(
        "/api/experiments", json={"yaml": experiment_yaml(description="v2")}
    )
    assert changed.json()["version"] == 2
    listed = (await client.get("/api/experiments")).json()
    assert [(e["name"], e["version"]) for e in listed] == [("support", 2)]
    shown = (await client.get("/api/experiments/support")).json()
    assert shown["id"] == body["id"] and shown["spec"]["description"] == "v2"
    first = (await client.get(f"/api/experiments/{body['id']}", params={"version": 1})).json()
    assert first["version"] == 1 and "name: support" in first["spec_yaml"]
    report = await client.post("/api/experiments/validate", json={"yaml": experiment_yaml()})
    assert report.json()["ok"] is True and report.json()["items"] == 3


async def test_an_invalid_experiment_is_a_422_with_path_and_line(api: RunningApi) -> None:
    text = experiment_yaml(sweep={"strategy": "sideways"}).replace(
        "max_tokens: 60", "max_tokens: -5"
    )
    for path in ("/api/experiments", "/api/experiments/validate"):
        body = error_of(await api.client.post(path, json={"yaml": text}), 422)
        by_path = {d["path"]: d for d in body["details"]}
        assert "sweep.strategy" in by_path, body
        line = text.splitlines()[by_path["sweep.strategy"]["line"] - 1]
        assert "sideways" in line
        assert all(d["message"] for d in body["details"])
    assert (await api.client.get("/api/experiments")).json() == []


async def test_experiment_request_errors(api: RunningApi) -> None:
    client = api.client
    error_of(
        await client.post(
            "/api/experiments", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    error_of(await client.post("/api/experiments", json={}), 422)
    error_of(await client.post("/api/experiments", json={"yaml": 5}), 422)
    error_of(await client.get("/api/experiments/nope"), 404)
    await client.post("/api/experiments", json={"yaml": experiment_yaml()})
    error_of(await client.get("/api/experiments/support", params={"version": 9}), 404)
    error_of(await client.get("/api/experiments/support", params={"version": "x"}), 422)
    error_of(await client.get("/api/experiments/support", params={"verison": 1}), 422)
    error_of(await client.get("/api/experiments", params={"page": 2}), 400)


async def test_plan_spends_nothing(api: RunningApi) -> None:
    client = api.client
    await client.post("/api/experiments", json={"yaml": experiment_yaml()})
    plan = await client.post("/api/experiments/support/plan", json={"repeats": 2})
    assert plan.status_code == 200, plan.text
    assert plan.json()["configs"] == 4 and plan.json()["runs"] == 24
    assert (await client.get("/api/runs")).json()["total"] == 0
    assert (await client.post("/api/experiments/support/plan")).json()["runs"] == 12
    error_of(await client.post("/api/experiments/nope/plan", json={}), 404)
    error_of(await client.post("/api/experiments/support/plan", json={"repeats": 0}), 422)
    error_of(await client.post("/api/experiments/support/plan", json={"strategy": "random"}), 400)


# -- sweeps -------------------------------------------------------------------------------------


async def test_a_sweep_runs_in_the_background_to_completion(api: RunningApi) -> None:
    sweep_id = await import_and_sweep(api, repeats=2)
    status = (await api.client.get(f"/api/sweeps/{sweep_id}", params={"top": 2})).json()
    assert status["sweep_id"] == sweep_id and status["experiment"] == "support"
    assert status["runs"] == {
        "total": 24,
        "completed": 24,
        "failed": 0,
        "cached": 0,
        "total_is_estimate": False,
    }
    # A floor: keys may be added, never renamed.
    assert set(status) >= {
        "sweep_id", "experiment", "experiment_version", "status", "runs", "calls", "tokens",
        "cost", "leaderboard",
    }  # fmt: skip
    assert len(status["leaderboard"]) == 2
    listed = (await api.client.get("/api/sweeps", params={"experiment": "support"})).json()
    assert [s["id"] for s in listed] == [sweep_id]
    assert (await api.client.get("/api/sweeps/support")).json()["sweep_id"] == sweep_id


async def test_pause_resume_stop_and_restart_a_live_sweep(api: RunningApi) -> None:
    client = api.client
    async with simulated_endpoint(SimulatorOptions(latency_ms=40)) as slow:
        text = experiment_yaml(endpoint={"base_url": slow.base_url}, sweep={"max_concurrency": 2})
        await client.post("/api/experiments", json={"yaml": text})
        sweep_id = (
            await client.post("/api/experiments/support/sweeps", json={"repeats": 3})
        ).json()["sweep_id"]
        paused = await client.post(f"/api/sweeps/{sweep_id}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        resumed = await client.post(f"/api/sweeps/{sweep_id}/resume")
        assert resumed.status_code == 202 and resumed.json()["status"] == "running"
        stopped = await client.post(f"/api/sweeps/{sweep_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
        done_before = stopped.json()["runs"]["completed"]
        assert done_before < 36
        listed = (await client.get("/api/sweeps")).json()
        assert listed[0]["resumable"] is True
        error_of(await client.post(f"/api/sweeps/{sweep_id}/pause"), 409)
        restarted = await client.post(f"/api/sweeps/{sweep_id}/resume", json={})
        assert restarted.status_code == 202 and restarted.json()["status"] == "running"
        final = await wait_for_sweep(client, sweep_id)
        assert final["status"] == "completed" and final["runs"]["completed"] == 36


async def test_sweep_errors(api: RunningApi) -> None:
    client = api.client
    error_of(await client.post("/api/experiments/nope/sweeps", json={}), 404)
    sweep_id = await import_and_sweep(api)
    error_of(await client.post("/api/experiments/support/sweeps", json={"samples": -1}), 422)
    error_of(await client.post("/api/experiments/support/sweeps", json={"speed": 2}), 422)
    error_of(await client.get("/api/sweeps/sw_nope"), 404)
    error_of(await client.get("/api/sweeps", params={"experiment": "nope"}), 404)
    error_of(await client.get(f"/api/sweeps/{sweep_id}", params={"top": 0}), 422)
    for action in ("pause", "stop"):
        error_of(await client.post(f"/api/sweeps/{sweep_id}/{action}"), 409)
    error_of(await client.post(f"/api/sweeps/{sweep_id}/resume"), 409)
    error_of(await client.post("/api/sweeps/sw_nope/resume"), 404)
    error_of(await client.post(f"/api/sweeps/{sweep_id}/resume", json={"max_tokens": 0}), 422)


# -- runs, scores, leaderboard ----------------------------------------------------------------


async def test_runs_filter_paginate_and_show(api: RunningApi) -> None:
    client = api.client
    await import_and_sweep(api)
    everything = (await client.get("/api/runs", params={"experiment": "support"})).json()
    assert everything["total"] == 12 and len(everything["items"]) == 12
    first = (await client.get("/api/runs", params={"limit": 5})).json()
    second = (await client.get("/api/runs", params={"limit": 5, "offset": 5})).json()
    assert first["total"] == second["total"] == 12
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    # Each `next` pages on; the read cache keeps each cursor's page apart.
    page, walked = first, [r["id"] for r in first["items"]]
    for _ in range(2):
        page = (await client.get("/api/runs", params={"limit": 5, "after": page["next"]})).json()
        walked += [r["id"] for r in page["items"]]
    assert page["next"] is None and walked == [r["id"] for r in everything["items"]]
    scores = sorted(r["score"] for r in everything["items"])
    low, high = scores[3], scores[8]
    ranged = (await client.get("/api/runs", params={"min_score": low, "max_score": high})).json()
    assert ranged["total"] == sum(low <= s <= high for s in scores)
    assert all(low <= r["score"] <= high for r in ranged["items"])
    failed = (await client.get("/api/runs", params={"status": "failed"})).json()
    assert failed == {"items": [], "total": 0, "next": None}
    run_id = everything["items"][0]["id"]
    detail = (await client.get(f"/api/runs/{run_id}")).json()
    assert detail["id"] == run_id and detail["item"]["input"]["question"]
    assert detail["stages"][0]["name"] == "reply" and detail["stages"][0]["output"]
    assert {s["scorer"] for s in detail["scores"]} == {"keyword", "format:length"}


async def test_run_errors(api: RunningApi) -> None:
    client = api.client
    error_of(await client.get("/api/runs", params={"status": "lost"}), 422)
    error_of(await client.get("/api/runs", params={"limit": 0}), 422)
    error_of(await client.get("/api/runs", params={"offset": -1}), 422)
    error_of(await client.get("/api/runs", params={"min_score": "high"}), 422)
    error_of(await client.get("/api/runs", params={"experiment": "nope"}), 404)
    error_of(await client.get("/api/runs/run_nope"), 404)


async def test_a_human_score_changes_the_run_and_the_leaderboard(api: RunningApi) -> None:
    client = api.client
    await import_and_sweep(api)
    board = (await client.get("/api/experiments/support/leaderboard")).json()["entries"]
    assert [e["rank"] for e in board] == [1, 2, 3, 4]
    last = board[-1]
    runs = (await client.get("/api/runs", params={"limit": 100})).json()["items"]
    run_id = min((r for r in runs if r["config"] == last["config"]), key=lambda r: r["score"])["id"]
    scored = await client.post(
        f"/api/runs/{run_id}/scores", json={"value": 1.0, "note": "great answer"}
    )
    assert scored.status_code == 201, scored.text
    human = [s for s in scored.json()["scores"] if s["kind"] == "human"]
    assert human == [{**human[0], "value": 1.0, "note": "great answer", "scorer": "human"}]
    after = (await client.get("/api/experiments/support/leaderboard")).json()["entries"]
    assert next(e for e in after if e["config"] == last["config"])["score"] > last["score"]
    top = await client.get("/api/experiments/support/leaderboard", params={"top": 1})
    assert len(top.json()["entries"]) == 1
    error_of(await client.post(f"/api/runs/{run_id}/scores", json={"value": 1.5}), 422)
    error_of(await client.post(f"/api/runs/{run_id}/scores", json={}), 422)
    error_of(await client.post("/api/runs/run_nope/scores", json={"value": 0.5}), 404)
    error_of(await client.get("/api/experiments/nope/leaderboard"), 404)
    error_of(await client.get("/api/experiments/support/leaderboard", params={"top": 0}), 422)


# -- exports ------------------------------------------------------------------------------------


async def test_export_in_every_format(api: RunningApi) -> None:
    sweep_id = await import_and_sweep(api)
    assert set(EXPORT_MEDIA_TYPES) == set(FORMATS)
    bodies = {}
    for fmt, media_type in EXPORT_MEDIA_TYPES.items():
        response = await api.client.get(f"/api/experiments/support/export/{fmt}")
        assert response.status_code == 200, (fmt, response.text)
        assert response.headers["content-type"].split(";")[0] == media_type
        assert "attachment" in response.headers["content-disposition"]
        bodies[fmt] = response.text
    best = json.loads(bodies["json"])
    assert best["sweep_id"] == sweep_id and best["config"] and 0 <= best["score"] <= 1
    assert yaml.safe_load(bodies["yaml"])["config"] == best["config"]
    assert "=" in bodies["env"] and bodies["report"].startswith("#")
    rows = list(csv.DictReader(io.StringIO(bodies["csv"])))
    lines = [json.loads(line) for line in bodies["jsonl"].splitlines()]
    assert len(rows) == len(lines) == 12
    same = await api.client.get(
        "/api/experiments/support/export/report", params={"sweep": sweep_id, "top": 1}
    )
    assert same.status_code == 200 and sweep_id in same.text


async def test_export_errors(api: RunningApi) -> None:
    client = api.client
    error_of(await client.get("/api/experiments/nope/export/json"), 404)
    await client.post("/api/experiments", json={"yaml": experiment_yaml()})
    error_of(await client.get("/api/experiments/support/export/json"), 404)  # no sweep yet
    await import_and_sweep(api)
    error_of(await client.get("/api/experiments/support/export/pdf"), 400)
    error_of(await client.get("/api/experiments/support/export/csv", params={"top": 0}), 422)
    error_of(
        await client.get("/api/experiments/support/export/csv", params={"sweep": "sw_nope"}), 404
    )


# -- cache and webhooks -------------------------------------------------------------------------


async def test_cache_stats_and_clear(api: RunningApi) -> None:
    await import_and_sweep(api)
    stats = (await api.client.get("/api/cache/stats")).json()
    assert stats["entries"] == 12 and stats["misses"] == 12 and stats["bytes"] > 0
    cleared = await api.client.delete("/api/cache")
    assert cleared.status_code == 200 and cleared.json() == {"removed": 12}
    assert (await api.client.get("/api/cache/stats")).json()["entries"] == 0


async def test_webhooks_add_list_deliveries_remove(api: RunningApi) -> None:
    client = api.client
    added = await client.post(
        "/api/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["sweep.completed"], "secret": "s3"},
    )
    assert added.status_code == 201, added.text
    hook = added.json()
    assert hook["has_secret"] is True and "s3" not in added.text
    assert [h["id"] for h in (await client.get("/api/webhooks")).json()] == [hook["id"]]
    deliveries = await client.get(f"/api/webhooks/{hook['id']}/deliveries", params={"limit": 5})
    assert deliveries.status_code == 200 and deliveries.json() == []
    assert (await client.delete(f"/api/webhooks/{hook['id']}")).status_code == 204
    assert (await client.get("/api/webhooks")).json() == []


async def test_webhook_errors(api: RunningApi) -> None:
    client = api.client
    error_of(await client.post("/api/webhooks", json={"url": "not a url"}), 400)
    error_of(
        await client.post("/api/webhooks", json={"url": "http://x.test", "events": ["run.eaten"]}),
        400,
    )
    error_of(await client.post("/api/webhooks", json={}), 422)
    error_of(await client.delete("/api/webhooks/wh_nope"), 404)
    error_of(await client.get("/api/webhooks/wh_nope/deliveries"), 404)
    error_of(await client.get("/api/webhooks/wh_nope/deliveries", params={"limit": 0}), 422)


# -- shutdown gate ------------------------------------------------------------------------------


async def test_a_closed_gate_refuses_changes_but_still_answers_reads(api: RunningApi) -> None:
    await api.app.state.gate.close()
    error_of(await api.client.post("/api/experiments", json={"yaml": experiment_yaml()}), 503)
    assert (await api.client.get("/api/experiments")).status_code == 200
    assert (
        await httpx.AsyncClient(base_url=api.base, headers=AUTH).get("/api/health")
    ).status_code == 200
