"""`promptlooper webhooks ...` as a user runs it: real processes, a real receiver, exit codes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from promptlooper_tui.asgi import serve_app

from ..conftest import BASE_EXPERIMENT, make_experiment
from ..helpers import cli, cli_json

SECRET = "cli-secret-6f1d0c2a"


def test_add_with_a_secret_on_stdin_then_list_without_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = cli(
        home,
        "webhooks",
        "add",
        "https://example.com/hook",
        "--events",
        "run.completed, sweep.completed",
        "--secret-stdin",
        "--json",
        stdin=SECRET + "\n",
    )
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["events"] == ["run.completed", "sweep.completed"] and record["has_secret"]

    listed = cli(home, "webhooks", "list", "--json")
    assert json.loads(listed.stdout) == [record]
    human = cli(home, "webhooks", "list")
    assert record["id"] in human.stdout and "yes" in human.stdout
    for output in (added, listed, human):
        assert SECRET not in output.stdout + output.stderr


def test_a_bad_url_is_refused_with_exit_2_and_a_clear_message(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "webhooks", "add", "ftp://example.com/hook")
    assert done.returncode == 2
    assert "invalid webhook URL 'ftp://example.com/hook'" in done.stderr
    assert "http:// or https://" in done.stderr and "Traceback" not in done.stderr


def test_removing_an_unknown_webhook_exits_2(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "webhooks", "remove", "wh_missing")
    assert done.returncode == 2
    assert "no webhook with id 'wh_missing'" in done.stderr and "Traceback" not in done.stderr


async def test_a_run_process_delivers_sweep_completed_before_it_exits(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []
    signatures: list[bool] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        signatures.append(request.headers["X-PromptLooper-Signature"] == f"sha256={expected}")
        received.append(json.loads(body))
        return Response()

    experiment = tmp_path / "support.yaml"
    experiment.write_text(yaml.safe_dump(make_experiment(dataset=BASE_EXPERIMENT["dataset"][:1])))
    home = tmp_path / "home"
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serve_app(app) as port:
        url = f"http://127.0.0.1:{port}/hook"
        added = cli(home, "webhooks", "add", url, "--events", "sweep.completed", "--secret", SECRET)
        assert added.returncode == 0, added.stderr
        # In a thread, so that this event loop keeps serving the receiver meanwhile.
        run = await asyncio.to_thread(cli, home, "run", str(experiment), "--json")
        assert run.returncode == 0, run.stderr
    sweep_id = json.loads(run.stdout)["sweep_id"]
    assert [(e["type"], e["sweep_id"]) for e in received] == [("sweep.completed", sweep_id)]
    assert signatures == [True]
    deliveries = cli_json(home, "webhooks", "deliveries", "--limit", "5")
    assert [(d["event_type"], d["delivered"]) for d in deliveries] == [("sweep.completed", True)]
