"""`promptlooper mcp` over stdio with the MCP SDK's own client: what an agent host meets when it
disconnects, which home it opened, and what it can read to learn the experiment format."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from promptlooper_tui.resources import sample_files
from promptlooper_tui.simulated.server import simulated_endpoint_process

from ..conftest import experiment_yaml
from ..helpers import cli, cli_json
from .test_mcp import PROMPTLOOPER, call


def wait_for_exit(pid: int, within: float = 120) -> None:
    """Block until process `pid` (not a child of ours) has exited."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([handle], [], [], within)
        assert readable, f"process {pid} still runs after {within} s"
    finally:
        os.close(handle)


async def test_a_sweep_started_over_stdio_finishes_after_the_client_disconnects(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    server = StdioServerParameters(command=PROMPTLOOPER, args=["mcp", "--home", str(home)])
    server_log = tmp_path / "server.log"
    # 120 runs of 30 ms at 2 at a time: the sweep takes seconds, the disconnect milliseconds.
    with simulated_endpoint_process("--latency-ms", "30") as base_url:
        with server_log.open("w") as errlog:
            async with Client(stdio_client(server, errlog=errlog)) as client:
                await call(
                    client,
                    "create_experiment",
                    yaml=experiment_yaml(endpoint={"base_url": base_url}),
                )
                started = await call(
                    client, "start_sweep", experiment="support", repeats=10, concurrency=2
                )
                sweep_id = started["sweep_id"]
                status = await call(client, "sweep_status", sweep=sweep_id)
                assert status["status"] == "running"
        # The client closed stdin; the server said where the sweep went on, and exited.
        text = server_log.read_text()
        assert "Traceback" not in text
        assert f"home {home}" in text and f"dataset files under {home / 'data'}" in text
        [handed] = re.findall(rf"sweep {sweep_id} of support goes on .*\(pid (\d+), log", text)
        wait_for_exit(int(handed))

    [sweep] = cli_json(home, "sweeps", "list")
    assert (sweep["id"], sweep["status"]) == (sweep_id, "completed")
    assert sweep["runs_completed"] == 120 and sweep["runs_failed"] == 0
    # The log holds the progress lines, then `resume --json`'s summary.
    handed_log = (home / "logs" / f"{sweep_id}.log").read_text()
    resumed = json.loads(handed_log[handed_log.index("\n{") :])
    assert resumed["status"] == "completed" and resumed["runs"]["completed"] == 120
    # No run was made twice: one row per (config, item, repeat).
    page = cli_json(home, "runs", "list", "support", "--limit", "500")
    keys = {
        (json.dumps(r["config"], sort_keys=True), r["item_index"], r["repeat"])
        for r in page["items"]
    }
    assert page["total"] == len(keys) == 120


async def test_a_client_that_stops_the_server_leaves_its_sweep_resumable(tmp_path: Path) -> None:
    """A signal is an order to stop: the sweep ends interrupted, and the log says how to resume."""
    home = tmp_path / "home"
    server_log = tmp_path / "server.log"
    server = StdioServerParameters(command=PROMPTLOOPER, args=["mcp", "--home", str(home)])
    with simulated_endpoint_process("--latency-ms", "30") as base_url:
        with server_log.open("w") as errlog:
            async with Client(stdio_client(server, errlog=errlog)) as client:
                await call(
                    client,
                    "create_experiment",
                    yaml=experiment_yaml(endpoint={"base_url": base_url}),
                )
                started = await call(
                    client, "start_sweep", experiment="support", repeats=10, concurrency=2
                )
                # The server is this client's only child process with our command line.
                pid = mcp_server_pid(home)
                os.kill(pid, 15)
                await asyncio.to_thread(wait_for_exit, pid)
        text = server_log.read_text()
        assert "goes on in the background" not in text
        assert f"promptlooper --home {home} resume SWEEP_ID" in text
        [sweep] = cli_json(home, "sweeps", "list")
        assert (sweep["id"], sweep["status"], sweep["resumable"]) == (
            started["sweep_id"],
            "interrupted",
            True,
        )
        assert cli(home, "resume", started["sweep_id"]).returncode == 0


def mcp_server_pid(home: Path) -> int:
    """The pid of the one `promptlooper mcp --home HOME` process."""
    [pid] = [
        int(proc.name)
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and _is_mcp_server_of(proc, home)
    ]
    return pid


def _is_mcp_server_of(proc: Path, home: Path) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mcp" in argv and str(home).encode() in argv


async def test_the_experiment_format_and_the_samples_are_listed_resources(tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=PROMPTLOOPER, args=["mcp", "--home", str(tmp_path / "home")]
    )
    with (tmp_path / "server.log").open("w") as errlog:
        async with Client(stdio_client(server, errlog=errlog)) as client:
            listed = {str(r.uri): r for r in (await client.list_resources()).resources}
            samples = {f"promptlooper://samples/{p.name}": p for p in sample_files()}
            assert {"promptlooper://schema/experiment", *samples} <= set(listed)
            assert all(r.description for r in listed.values())

            read = await client.read_resource("promptlooper://schema/experiment")
            schema = json.loads(read.contents[0].text)  # type: ignore[union-attr]
            jsonschema.Draft202012Validator.check_schema(schema)
            for uri, path in samples.items():
                text = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
                assert text == path.read_text()
                if path.suffix == ".yaml":
                    # Every sample is valid by the schema, and by the server itself.
                    jsonschema.validate(yaml.safe_load(text), schema)
                    if "file:" not in text:
                        assert (await call(client, "validate_experiment", yaml=text))["ok"]

            tools = (await client.list_tools()).tools
            undescribed = [
                f"{tool.name}.{name}"
                for tool in tools
                for name, prop in tool.input_schema.get("properties", {}).items()
                if not prop.get("description")
            ]
            assert not undescribed, undescribed
            start = next(t for t in tools if t.name == "start_sweep")
            assert "outlives the connection" in (start.description or "")

            bad = await client.call_tool("list_runs", {"limit": "many", "offset": -1})
            text = bad.content[0].text  # type: ignore[union-attr]
            assert bad.is_error and "limit" in text and "offset" in text
            assert "pydantic" not in text and "http" not in text


def test_every_schema_field_is_described() -> None:
    from promptlooper_tui.domain.experiment_schema import experiment_json_schema

    schema = experiment_json_schema()
    definitions: dict[str, Any] = {"ExperimentSpec": schema, **schema["$defs"]}
    for name, definition in definitions.items():
        assert definition.get("description"), name
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field}"


def test_the_readme_documents_mcp_with_a_home_and_an_inspector_example() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "promptlooper mcp --home" in readme
    assert re.search(r"inspector .*promptlooper mcp --home", readme), "no Inspector example"
