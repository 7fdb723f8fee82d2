"""An API key given on stdin reaches the endpoint as `Bearer <key>` and nothing else: not the
database (nor its WAL), logs, events, webhook bodies, exports, or anything a command prints.

The endpoint is a real server on 127.0.0.1 that records the headers it gets, and it is hostile
on purpose: some of its error answers quote the key back, as real servers sometimes do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.settings import Settings
from promptlooper_tui.workbench import SweepOverrides, open_workbench

from ..conftest import BASE_EXPERIMENT, make_experiment
from ..fixtures.fake_llm import FakeLLM, Reply, fake_llm_fixture, status  # noqa: F401
from ..helpers import cli

EXPORT_FORMATS = ("json", "env", "yaml", "report", "csv", "jsonl")


def key_echoes(key: str) -> list[Reply]:
    """Answers that quote the key: a 401 (fails at once), a 500 three times (fails after its
    retries), a body that is not JSON (retried, then fine)."""
    return [
        status(401, f"Incorrect API key provided: {key}"),
        *[status(500, f"upstream said: Authorization: Bearer {key}") for _ in range(3)],
        Reply(raw=f'{{"error": "bad key {key}"'.encode()),
    ]


async def test_an_api_key_from_stdin_is_sent_and_never_shown_or_stored(
    tmp_path: Path, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-leakcheck-" + secrets.token_hex(16)
    home = tmp_path / "home"
    exports = tmp_path / "exports"
    exports.mkdir()
    webhook_bodies: list[bytes] = []

    async def receive(request: Request) -> Response:
        webhook_bodies.append(await request.body())
        return Response()

    spec = make_experiment(
        name="leaky",
        endpoint="guarded",
        parameters={"model": ["fake-chat"], "temperature": [0.0, 0.5], "max_tokens": 40},
        dataset=[{**item, "reference": "Settings"} for item in BASE_EXPERIMENT["dataset"]],
        scorers=[
            *BASE_EXPERIMENT["scorers"],
            {"type": "embedding", "endpoint": "guarded", "model": "fake-embed"},
        ],
        sweep={"max_concurrency": 1},
    )
    experiment = tmp_path / "leaky.yaml"
    experiment.write_text(yaml.safe_dump(spec, sort_keys=False))
    outputs: list[subprocess.CompletedProcess[str]] = []

    async def run(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        # In a thread: this event loop serves the webhook receiver meanwhile.
        done = await asyncio.to_thread(cli, home, *args, stdin=stdin)
        outputs.append(done)
        if ok:
            assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    async with serve_app(app) as port:
        base = fake_llm.base_url
        await run("endpoints", "add", "guarded", "--base-url", base, "--api-key-stdin", stdin=key)
        await run("endpoints", "list", "--json")
        await run("endpoints", "list")
        fake_llm.script(status(401, f"Incorrect API key provided: {key}"))
        await run("endpoints", "test", "guarded", ok=False)
        await run("endpoints", "test", "guarded", "--json")
        await run("webhooks", "add", f"http://127.0.0.1:{port}/hook")
        await run("validate", str(experiment))
        await run("run", str(experiment), "--dry-run", "--json")
        fake_llm.script(*key_echoes(key))
        summary = json.loads(await run("run", str(experiment), "--json"))
        assert summary["runs"]["failed"] >= 1, "the key-quoting errors should fail some runs"
        fake_llm.script(*key_echoes(key))
        await run("run", str(experiment), "--no-cache")
        runs = json.loads(await run("runs", "list", "--experiment", "leaky", "--json"))["items"]
        failed = [r["id"] for r in runs if r["status"] == "failed"]
        assert failed, "no failed run left to show"
        completed = next(r["id"] for r in runs if r["status"] == "completed")
        for run_id in [*failed, completed]:
            await run("runs", "show", run_id, "--json")
        await run("runs", "show", failed[0])
        await run("experiments", "show", "leaky")
        await run("experiments", "show", "leaky", "--json")
        await run("sweeps", "list", "--json")
        await run("leaderboard", "leaky", "--json")
        for number, fmt in enumerate(EXPORT_FORMATS):
            if number % 2:
                await run("export", "leaky", "--format", fmt)
            else:
                await run("export", "leaky", "--format", fmt, "-o", str(exports / f"out.{fmt}"))
        await run("webhooks", "deliveries", "--json")

        # The same engine in this process, every logger at DEBUG, every event kept.
        caplog.set_level(logging.DEBUG)
        async with open_workbench(Settings(home)) as wb:
            fake_llm.script(*key_echoes(key))
            sweep_id = await wb.create_sweep("leaky", SweepOverrides(no_cache=True))
            await wb.run_sweep(sweep_id)
            events = [json.dumps(event.as_dict()) for event in wb.bus.replay()]
            endpoints = [record.model_dump_json() for record in await wb.list_endpoints()]
            # While a connection is open the database's latest pages sit in its -wal file.
            wal = home / "promptlooper.db-wal"
            assert wal.stat().st_size > 0
            live_files = {path: path.read_bytes() for path in home.iterdir() if path.is_file()}

    sent = {request.headers.get("authorization") for request in fake_llm.requests}
    assert sent == {f"Bearer {key}"}, "every request should carry the key, and only it"
    assert len(webhook_bodies) >= 10 and len(events) >= 10
    # The quoted key did reach the runs' errors, scrubbed.
    assert any("[API key]" in done.stdout for done in outputs if "show" in done.args)

    leaks: dict[str, Any] = {}
    for done in outputs:
        for stream in (done.stdout, done.stderr):
            if key in stream:
                leaks[f"output of {done.args[4:]}"] = stream
    files = {
        path: path.read_bytes()
        for path in [*home.rglob("*"), *exports.rglob("*")]
        if path.is_file()
    }
    for path, content in {
        **files,
        **{Path(f"{p} (live)"): c for p, c in live_files.items()},
    }.items():
        if key.encode() in content:
            leaks[str(path)] = "file bytes"
    for body in webhook_bodies:
        if key.encode() in body:
            leaks["webhook body"] = body
    for text in [*events, *endpoints, caplog.text]:
        if key in text:
            leaks["in-process"] = text
    assert not leaks, f"the API key leaked into: {sorted(leaks)}"
    assert len(files) >= 1 + len(EXPORT_FORMATS) // 2 and any(
        ".db-wal" in str(p) for p in live_files
    )
