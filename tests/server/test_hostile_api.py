"""The daemon's API against hostile and careless callers, over real HTTP on 127.0.0.1: values
out of range, bodies too deep, too big or not Unicode, wrong methods and foreign Host headers
are clear 4xx JSON errors (never a 500), and the OpenAPI document says what the routes do."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.cli import main
from promptlooper_tui.server.http import create_api
from promptlooper_tui.server.request_bounds import MAX_BODY_BYTES
from promptlooper_tui.store.workers import heartbeat_statement, register_worker_statement
from promptlooper_tui.workbench import Workbench

from ..conftest import experiment_yaml
from .conftest import AUTH, TOKEN, RunningApi, wait_for_sweep
from .test_daemon import _environment, daemon
from .test_mcp import http_client, mcp_http

BIG = str(10**30)


def assert_error(response: httpx.Response, statuses: tuple[int, ...], *words: str) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    text = body["error"] + json.dumps(body["details"])
    for word in words:
        assert word in text, (word, body)


# -- query values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param", "value"),
    [
        ("/api/runs", "offset", BIG),
        ("/api/runs", "offset", str(2**63)),
        ("/api/runs", "limit", "-1"),
        ("/api/runs", "limit", BIG),
        ("/api/runs", "min_score", "nan"),
        ("/api/runs", "max_score", "inf"),
        ("/api/runs", "min_score", "1e999"),
        ("/api/experiments/support", "version", str(2**63)),
        ("/api/experiments/support", "version", "0"),
        ("/api/experiments/support/leaderboard", "top", BIG),
        ("/api/experiments/support/export/json", "top", BIG),
        ("/api/sweeps/sw_x", "top", "-5"),
        ("/api/webhooks/wh_x/deliveries", "limit", BIG),
    ],
)
async def test_out_of_range_query_values_are_422_naming_the_parameter(
    api: RunningApi, path: str, param: str, value: str
) -> None:
    response = await api.client.get(path, params={param: value})
    assert_error(response, (422,), f"query.{param}")


async def test_the_largest_offset_is_an_empty_page_not_an_overflow(api: RunningApi) -> None:
    page = await api.client.get("/api/runs", params={"offset": str(2**63 - 1)})
    assert page.status_code == 200 and page.json() == {"items": [], "total": 0, "next": None}


def _forged_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "x" * 513,
        "A" * 5000,
        "W10",
        "é",
        "\x00",
        _forged_cursor("2024", "run_1"),
        _forged_cursor("\ud800", "run_1", "000000000000"),
        _forged_cursor(["nested"], 1, None),
    ],
)
async def test_a_cursor_not_made_here_is_a_4xx_naming_after(api: RunningApi, cursor: str) -> None:
    response = await api.client.get("/api/runs", params={"after": cursor})
    assert_error(response, (400, 422), "after")


async def test_a_cursor_of_another_listing_is_400_naming_after(api: RunningApi) -> None:
    await api.client.post("/api/experiments", json={"yaml": experiment_yaml()})
    started = await api.client.post("/api/experiments/support/sweeps")
    sweep_id = started.json()["sweep_id"]
    await wait_for_sweep(api.client, sweep_id)
    page = (await api.client.get("/api/runs", params={"sweep": sweep_id, "limit": 2})).json()
    empty_sweep = await api.wb.create_sweep("support")
    for other in (
        {"sweep": empty_sweep},
        {},
        {"experiment": "support"},
        {"sweep": sweep_id, "status": "completed"},
    ):
        response = await api.client.get("/api/runs", params={**other, "after": page["next"]})
        assert_error(response, (400,), "after=", "other filters")
    again = await api.client.get("/api/runs", params={"sweep": sweep_id, "after": page["next"]})
    assert again.status_code == 200 and len(again.json()["items"]) == 10


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, ("nested too deeply",)),
        (b'{"yaml": ' + b"[" * 900 + b"]" * 900 + b"}", ("nested too deeply",)),
        (b'{"yaml": "name: \\ud800"}', ("body.yaml", "surrogate")),
        (b'{"yaml": "\\udfff", "\\ud83d": 1}', ("surrogate",)),
        (b'{"yaml": "name: \xed\xa0\x80"}', ("surrogate",)),
        (b'{"yaml": NaN}', ("NaN",)),
        (b'{"value": 1e999}', ("too large",)),
        (b'{"yaml": "unterminated', ("not valid JSON",)),
        (b"\xff\xfe\x00", ("not valid JSON",)),
    ],
    ids=[
        "100k-deep",
        "900-deep",
        "lone-surrogate",
        "surrogate-key",
        "raw-surrogate-bytes",
        "nan",
        "infinity",
        "truncated",
        "not-utf8",
    ],
)
async def test_hostile_bodies_are_400_and_fast(
    api: RunningApi, body: bytes, words: tuple[str, ...]
) -> None:
    started = time.monotonic()
    response = await api.client.post("/api/experiments", content=body)
    assert_error(response, (400,), *words)
    # Refused before any real work: far under a second even on a loaded machine.
    assert time.monotonic() - started < 10
    assert (await api.client.get("/api/health")).status_code == 200


async def test_a_body_over_the_cap_is_413(api: RunningApi) -> None:
    body = json.dumps({"yaml": "x" * MAX_BODY_BYTES}).encode()
    response = await api.client.post("/api/experiments", content=body)
    assert_error(response, (413,), str(MAX_BODY_BYTES))
    # Without a Content-Length (chunked), the cap holds as well.

    async def chunks() -> Any:
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    response = await api.client.post("/api/experiments/validate", content=chunks())
    assert_error(response, (413,), str(MAX_BODY_BYTES))


async def test_request_bodies_check_their_numbers(api: RunningApi) -> None:
    await api.client.post("/api/experiments", json={"yaml": experiment_yaml()})
    for overrides, field in [
        ({"strategy": "exhaustive"}, "body.strategy"),
        ({"seed": 2**64}, "body.seed"),
        ({"max_tokens": 2**63}, "body.max_tokens"),
        ({"samples": 0}, "body.samples"),
        ({"repeats": 1001}, "body.repeats"),
        ({"seed": False}, "seed must be a number, not false"),
        ({"no_cache": 0}, "body.no_cache"),
        ({"max_runs": 0}, "body.max_runs"),
        ({"max_runs": 2**63}, "body.max_runs"),
        ({"min_effect": 1}, "body.min_effect"),
        ({"min_effect": -0.5}, "body.min_effect"),
    ]:
        response = await api.client.post("/api/experiments/support/plan", json=overrides)
        assert_error(response, (422,), field)
    assert (await api.client.post("/api/experiments/support/plan")).status_code == 200


# -- methods --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/api/webhooks", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/webhooks", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/experiments/support", {"GET", "HEAD"}),
        ("PATCH", "/api/cache", {"DELETE"}),
        ("GET", "/api/sweeps/sw_x/stop", {"POST"}),
        ("POST", "/api/workers", {"GET", "HEAD"}),
    ],
)
async def test_a_wrong_method_is_405_with_an_allow_header(
    api: RunningApi, method: str, path: str, allowed: set[str]
) -> None:
    response = await api.client.request(method, path)
    assert_error(response, (405,), "Allow")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# -- Host header ----------------------------------------------------------------------------------


async def test_a_foreign_host_header_is_421_even_for_health(workbench: Workbench) -> None:
    app = create_api(workbench, TOKEN, allowed_hosts=["promptlooper.lan"])
    async with serve_app(app) as port, httpx.AsyncClient(headers=AUTH) as client:
        url = f"http://127.0.0.1:{port}"
        for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "[::2]:1"):
            for path in ("/api/health", "/api/experiments", "/api/openapi.json"):
                refused = await client.get(url + path, headers={"Host": host})
                assert_error(refused, (421,), "--allowed-host")
        for host in ("127.0.0.1", "localhost:1", "LOCALHOST", "[::1]:8400", "promptlooper.lan:99"):
            assert (await client.get(url + "/api/experiments", headers={"Host": host})).is_success
        # The Host check comes first: a foreign Host learns nothing about the token.
        anonymous = await client.get(
            url + "/api/experiments", headers={"Host": "evil.example", "Authorization": ""}
        )
        assert anonymous.status_code == 421
        with pytest.raises(InvalidStatus) as refused_ws:
            # The URL names the foreign host (so the Host header does); the socket goes to
            # 127.0.0.1.
            async with connect(
                f"ws://evil.example:{port}/ws", host="127.0.0.1", additional_headers=AUTH
            ):
                pass
        assert refused_ws.value.response.status_code == 421


# -- OpenAPI --------------------------------------------------------------------------------------


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    # Refs point into the document's components: validate with them at hand.
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


async def test_the_openapi_document_says_what_the_routes_do(api: RunningApi) -> None:
    document = (await api.client.get("/api/openapi.json")).json()
    paths = document["paths"]
    schemas = document["components"]["schemas"]
    for method in ("plan", "sweeps"):
        operation = paths[f"/api/experiments/{{experiment}}/{method}"]["post"]
        assert operation["requestBody"]["required"] is False
    assert paths["/api/experiments"]["post"]["requestBody"]["required"] is True
    strategy = schemas["SweepOverrides"]["properties"]["strategy"]["anyOf"][0]
    assert strategy["enum"] == ["grid", "random", "guided", "racing", "evolve"]
    for path, operations in paths.items():
        for name, operation in operations.items():
            for code in ("400", "404", "421", "422"):
                error = operation["responses"][code]["content"]["application/json"]
                assert error["schema"] == {"$ref": "#/components/schemas/Error"}, (path, name)
            assert ("413" in operation["responses"]) == ("requestBody" in operation)

    # Real answers match their declared schemas, the JSON export (an object) among them.
    await api.client.post("/api/experiments", json={"yaml": experiment_yaml()})
    started = await api.client.post("/api/experiments/support/sweeps")
    sweep_id = started.json()["sweep_id"]
    await wait_for_sweep(api.client, sweep_id)
    run_id = (await api.client.get("/api/runs")).json()["items"][0]["id"]
    owner = "build-1:4242:0a1b2c3d"
    await api.wb.db.write(
        [
            register_worker_statement(owner, "w1", "build-1", 4242, "2026-01-01T00:00:00Z", 0.0),
            heartbeat_statement(owner, time.time(), sweep_id, 12),
        ]
    )
    checked = 0
    for path in (
        "/api/experiments/support/export/json",
        "/api/experiments/support/leaderboard",
        f"/api/sweeps/{sweep_id}",
        "/api/sweeps",
        "/api/runs",
        f"/api/runs/{run_id}",
        "/api/experiments",
        "/api/experiments/support",
        "/api/cache/stats",
        "/api/workers",
    ):
        template = path.replace(sweep_id, "{sweep}").replace(run_id, "{run_id}")
        template = template.replace("support", "{experiment}").replace("/json", "/{fmt}")
        declared = paths[template]["get"]["responses"]["200"]["content"]["application/json"]
        response = await api.client.get(path)
        assert response.status_code == 200, (path, response.text)
        _validator(document, declared["schema"]).validate(response.json())
        checked += 1
    assert checked == 10
    [worker] = (await api.client.get("/api/workers")).json()
    assert worker["experiment"] == "support" and worker["runs_done"] == 12
    export = (await api.client.get("/api/experiments/support/export/json")).json()
    assert isinstance(export, dict) and export["sweep_id"] == sweep_id


# -- MCP and CLI share the bounds -----------------------------------------------------------------


async def test_mcp_tools_refuse_out_of_range_arguments_clearly(workbench: Workbench) -> None:
    async with mcp_http(workbench) as url, http_client(url) as client:
        for tool, arguments, word in [
            ("list_runs", {"offset": 2**63}, "offset"),
            ("list_runs", {"offset": 10**30}, "offset"),
            ("list_runs", {"after": ""}, "after"),
            ("list_runs", {"after": "x" * 513}, "after"),
            ("list_runs", {"after": "not a cursor"}, "after"),
            ("get_experiment", {"experiment": "x", "version": 2**63}, "version"),
            ("plan_sweep", {"experiment": "x", "seed": 2**64}, "seed"),
        ]:
            result = await client.call_tool(tool, arguments)
            text = result.content[0].text  # type: ignore[union-attr]
            assert result.is_error and word in text, (tool, text)
            assert "Error executing tool" not in text
        # Well-formed but not made here: the Workbench's refusal, naming `after`.
        for forged in (_forged_cursor("2024", "run_1"), _forged_cursor("\ud800", "r", "0" * 12)):
            result = await client.call_tool("list_runs", {"after": forged})
            text = result.content[0].text  # type: ignore[union-attr]
            assert result.is_error and "invalid cursor after=" in text, text
        page = await client.call_tool("list_runs", {"offset": 2**63 - 1})
        assert not page.is_error
        assert page.structured_content == {"items": [], "total": 0, "next": None}


def test_cli_runs_list_with_a_huge_offset_is_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "home")
    assert main(["runs", "list", "--home", home, "--offset", "99999999999999999999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "offset" in err and "Traceback" not in err


# -- serve flags ----------------------------------------------------------------------------------


async def test_serve_opens_a_data_folder_and_trusts_only_what_its_flags_allow(
    tmp_path: Path,
) -> None:
    home, data = tmp_path / "home", tmp_path / "shared" / "datasets"
    flags = ("--data-dir", str(data), "--allow-key-env", "LLM_KEY,OTHER_KEY")
    flags += ("--allowed-host", "promptlooper.lan")
    async with daemon(home, *flags) as running, running.client() as client:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE(data.parent.stat().st_mode) == 0o700
        row = json.dumps({"input": {"question": "q", "article": "a"}, "keywords": ["a"]})
        (data / "items.jsonl").write_text(row + "\n")
        (tmp_path / "shared" / "outside.jsonl").write_text(row + "\n")
        inside = experiment_yaml(dataset={"file": "items.jsonl"})
        created = await client.post("/api/experiments", json={"yaml": inside})
        assert created.status_code == 201, created.text
        for name in ("../outside.jsonl", str(tmp_path / "shared" / "outside.jsonl")):
            outside = experiment_yaml(name="o", dataset={"file": name})
            refused = await client.post("/api/experiments", json={"yaml": outside})
            assert_error(refused, (422,), "data folder")
        lan = await client.get("/api/health", headers={"Host": "promptlooper.lan:8400"})
        assert lan.status_code == 200
        assert (
            await client.get("/api/health", headers={"Host": "evil.example"})
        ).status_code == 421
        code, err = await running.stop()
    assert code == 0, err
    [started] = [line for line in err.splitlines() if "API on http://" in line]
    assert f"dataset files under {data}" in started and "LLM_KEY, OTHER_KEY" in started


def test_serve_refuses_a_malformed_key_variable_name(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [
            *(sys.executable, "-m", "promptlooper_tui", "serve", "--home", str(tmp_path)),
            *("--allow-key-env", "GOOD,1BAD"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
    )
    assert done.returncode == 2 and "not an environment variable name: '1BAD'" in done.stderr
    assert not os.path.exists(tmp_path / "data")
