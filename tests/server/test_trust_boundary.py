"""The trust boundary as a token holder meets it (DESIGN §9): over the API and MCP, experiments
read dataset files only inside the data folder, send no host environment variable anywhere, and
a check too expensive to finish never freezes the daemon."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client

from promptlooper_tui.domain.trust import CallerPolicy
from promptlooper_tui.engine.limits import Limits
from promptlooper_tui.server.mcp.app import build_mcp_server
from promptlooper_tui.settings import Settings
from promptlooper_tui.workbench import Workbench, open_workbench

from ..conftest import experiment_yaml, make_experiment
from .conftest import RunningApi, running_api

SECRET_VALUE = "sk-host-secret-that-must-stay-home"


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Workbench]:
    settings = Settings(home=tmp_path / "home")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    policy = CallerPolicy.for_remote(data_dir, allowed_key_env=["ALLOWED_KEY"])
    async with open_workbench(settings, policy) as wb:
        yield wb


@pytest.fixture
async def api(remote: Workbench) -> AsyncIterator[RunningApi]:
    async with running_api(remote) as running:
        yield running


def row(number: int) -> dict[str, Any]:
    return {"input": {"question": f"Q{number}?", "article": "A."}, "keywords": ["A"]}


def with_dataset_file(name: str) -> str:
    return experiment_yaml(dataset={"file": name})


def write_rows(path: Path, count: int = 2) -> None:
    import json

    path.write_text("".join(json.dumps(row(i)) + "\n" for i in range(count)))


async def post_experiment(api: RunningApi, text: str) -> tuple[int, dict[str, Any]]:
    response = await api.client.post("/api/experiments", json={"yaml": text})
    return response.status_code, response.json()


def messages(body: dict[str, Any]) -> str:
    return " ".join(str(detail.get("message")) for detail in body.get("details", [])) + str(
        body.get("error")
    )


async def test_a_dataset_inside_the_data_folder_is_read(api: RunningApi, tmp_path: Path) -> None:
    write_rows(tmp_path / "data" / "items.jsonl")
    (tmp_path / "data" / "sub").mkdir()
    write_rows(tmp_path / "data" / "sub" / "more.jsonl", 3)
    status, body = await post_experiment(api, with_dataset_file("items.jsonl"))
    assert status == 201, body
    detail = await api.client.get(f"/api/experiments/{body['id']}")
    assert detail.json()["spec"]["dataset"] == [row(0), row(1)]
    status, body = await post_experiment(
        api, experiment_yaml(name="nested", dataset={"file": "sub/more.jsonl"})
    )
    assert status == 201, body


async def test_paths_out_of_the_data_folder_are_refused_alike_whether_or_not_they_exist(
    api: RunningApi, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    write_rows(outside / "secret.jsonl")
    (data / "link").symlink_to(outside)
    (data / "to-file.jsonl").symlink_to(outside / "secret.jsonl")
    (data / "to-zero.jsonl").symlink_to("/dev/zero")
    refused: dict[str, str] = {}
    for name in [
        str(outside / "secret.jsonl"),
        str(outside / "missing.jsonl"),
        "../outside/secret.jsonl",
        "../outside/missing.jsonl",
        "link/secret.jsonl",
        "link/missing.jsonl",
        "to-file.jsonl",
        "to-zero.jsonl",
        "/proc/self/environ",
        "/dev/zero",
        "~/secret.jsonl",
    ]:
        status, body = await post_experiment(api, with_dataset_file(name))
        assert status == 422, (name, body)
        refused[name] = messages(body).replace(repr(name), "NAME")
        assert "inside the daemon's data folder" in refused[name]
    assert len(set(refused.values())) == 1, refused
    assert SECRET_VALUE not in str(refused)


async def test_a_fifo_in_the_data_folder_is_refused_without_blocking(
    api: RunningApi, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "data" / "pipe.jsonl")
    async with asyncio.timeout(30):
        status, body = await post_experiment(api, with_dataset_file("pipe.jsonl"))
    assert status == 422
    assert "not a regular file" in messages(body)


async def test_an_inline_endpoint_may_not_name_a_host_key_variable(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_SECRET", SECRET_VALUE)
    for where in ("endpoint", "scorer"):
        inline = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "HOST_SECRET"}
        spec = make_experiment(endpoint=inline) if where == "endpoint" else make_experiment()
        if where == "scorer":
            spec["scorers"].append({"type": "embedding", "endpoint": inline, "model": "e"})
            spec["dataset"] = [dict(item, reference="r") for item in spec["dataset"]]
        status, body = await post_experiment(api, yaml.safe_dump(spec))
        assert status == 422, body
        assert "may not name an API-key variable" in messages(body)
    keyless = make_experiment(endpoint={"base_url": "http://127.0.0.1:9/v1"})
    status, body = await post_experiment(api, yaml.safe_dump(keyless))
    assert status == 201, body


async def test_stored_endpoints_name_only_allowed_key_variables(api: RunningApi) -> None:
    refused = await api.client.post(
        "/api/endpoints",
        json={"name": "evil", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "HOME"},
    )
    assert refused.status_code in (400, 422), refused.text
    assert "--allow-key-env" in refused.text
    allowed = await api.client.post(
        "/api/endpoints",
        json={"name": "ok", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "ALLOWED_KEY"},
    )
    assert allowed.status_code == 201, allowed.text


async def test_the_person_at_the_terminal_may_use_any_path_and_variable(
    workbench: Workbench, tmp_path: Path
) -> None:
    outside = tmp_path / "anywhere"
    outside.mkdir()
    write_rows(outside / "items.jsonl")
    inline = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "SOME_KEY"}
    text = experiment_yaml(dataset={"file": str(outside / "items.jsonl")}, endpoint=inline)
    loaded = await workbench.validate_text(text)
    assert loaded.spec.items == [row(0), row(1)]


def slow_experiment() -> str:
    """Legal and within every template limit, but many trial renders of heavy loops."""
    loop = "{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}"
    return experiment_yaml(
        pipeline=[{"name": "reply", "user": loop + "{{ item.input.question }}"}],
        dataset=[row(i) for i in range(200)],
    )


async def test_health_answers_while_an_expensive_check_runs_and_the_check_is_bounded(
    api: RunningApi, remote: Workbench
) -> None:
    remote.limits = Limits(check_seconds=1.5)
    creating = asyncio.create_task(post_experiment(api, slow_experiment()))
    async with asyncio.timeout(30):
        while remote.guard is None or not remote.guard._busy:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    health = await api.client.get("/api/health")
    assert health.status_code == 200
    assert not creating.done(), "the check finished before health was asked"
    status, body = await creating
    assert status == 422, body
    assert "too expensive to check: checking took longer than 1.5 s" in messages(body)
    # The worker that was killed is replaced: the next check works.
    status, body = await post_experiment(api, experiment_yaml(name="after"))
    assert status == 201, body


async def test_mcp_tools_refuse_bombs_as_tool_results(remote: Workbench, tmp_path: Path) -> None:
    from tests.engine.test_experiment_limits import BILLION_LAUGHS, grid_bomb

    async with Client(build_mcp_server(lambda: remote)) as client:
        for text in (BILLION_LAUGHS, grid_bomb(), with_dataset_file("/etc/passwd")):
            checked = await client.call_tool("validate_experiment", {"yaml": text})
            assert not checked.is_error
            report = checked.structured_content
            assert report is not None and report["ok"] is False
            created = await client.call_tool("create_experiment", {"yaml": text})
            assert created.is_error
            assert "Traceback" not in str(created.content)


async def test_the_mcp_port_offers_no_oauth_discovery(remote: Workbench) -> None:
    import httpx

    from promptlooper_tui.asgi import serve_app
    from promptlooper_tui.server.mcp.app import create_mcp_app

    from .conftest import TOKEN

    app = create_mcp_app(remote, TOKEN)
    async with serve_app(app) as port, httpx.AsyncClient() as client:
        base = f"http://127.0.0.1:{port}"
        for path in ("oauth-protected-resource", "oauth-authorization-server"):
            found = await client.get(f"{base}/.well-known/{path}")
            assert found.status_code == 404, found.text
        refused = await client.post(f"{base}/mcp", json={})
        assert refused.status_code == 401
        assert refused.json()["error"] == "missing or wrong bearer token"


async def test_callers_cannot_make_the_daemon_run_more_sweeps_than_its_limit(
    api: RunningApi, remote: Workbench
) -> None:
    """Each started sweep costs the process that answers the API; a caller who starts them
    without end would starve it (the fuzzer's nine sweeps of 10,000 runs made answers take
    20 s). One more than `running_sweeps` is refused with 429, nothing stored, until one ends."""
    remote.limits = Limits(running_sweeps=1)
    await api.client.post(
        "/api/experiments", json={"yaml": experiment_yaml(sweep={"repeats": 500})}
    )
    first = (await api.client.post("/api/experiments/support/sweeps", json={})).json()["sweep_id"]
    await remote.pause_sweep(first)  # it keeps its place while paused
    before = len(await remote.list_sweeps())

    refused = await api.client.post("/api/experiments/support/sweeps", json={})
    assert refused.status_code == 429, refused.text
    assert "already runs 1 sweeps" in refused.json()["error"]
    assert "PROMPTLOOPER_LIMIT_RUNNING_SWEEPS" in refused.json()["error"]
    assert len(await remote.list_sweeps()) == before  # nothing was stored

    await remote.stop_sweep(first)
    started = await api.client.post("/api/experiments/support/sweeps", json={})
    assert started.status_code == 202, started.text
    await remote.stop_sweep(started.json()["sweep_id"])
