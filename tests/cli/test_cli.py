"""The `promptlooper` command as a user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptlooper_tui.simulated.server import simulated_endpoint_process

from ..conftest import make_experiment
from ..helpers import (
    cli,
    cli_json,
    printed_command,
    run_printed,
    wait_for_completed_runs,
)

RUN_KEYS = {
    "sweep_id",
    "experiment",
    "experiment_version",
    "status",
    "runs",
    "calls",
    "tokens",
    "cost",
    "leaderboard",
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A home with one completed sweep of `support`: (home, experiment file, run --json)."""
    root = tmp_path_factory.mktemp("cli")
    path = root / "support.yaml"
    path.write_text(yaml.safe_dump(make_experiment()))
    home = root / "home"
    done = cli(home, "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return home, path, json.loads(done.stdout)


def test_run_json_prints_exactly_the_contract(finished: tuple[Path, Path, dict[str, Any]]) -> None:
    _, _, summary = finished
    assert set(summary) >= RUN_KEYS  # a floor: keys may be added, never renamed
    assert summary["status"] == "completed"
    assert summary["runs"] == {
        "total": 12,
        "completed": 12,
        "failed": 0,
        "cached": 0,
        "total_is_estimate": False,
    }
    assert summary["calls"] == {"requested": 12, "cache_hits": 0}
    entry = summary["leaderboard"][0]
    assert {"rank", "config", "score", "ci_low", "ci_high", "n", "tied_with_leader"} <= set(entry)
    assert entry["rank"] == 1 and entry["tied_with_leader"] is True


def test_second_run_is_fully_cached_and_human_output_has_a_leaderboard(
    finished: tuple[Path, Path, dict[str, Any]],
) -> None:
    home, path, first = finished
    done = cli(home, "run", str(path))
    assert done.returncode == 0, done.stderr
    assert "12 fully cached" in done.stdout
    assert "95% CI" in done.stdout and "temp=" in done.stdout
    assert "runs" in done.stderr  # progress goes to stderr, plain lines when not a TTY
    assert first["leaderboard"][0]["config"]["model"] in done.stdout


def test_dry_run_spends_nothing(finished: tuple[Path, Path, dict[str, Any]]) -> None:
    home, path, _ = finished
    plan = cli_json(home, "run", str(path), "--dry-run")
    assert plan == {
        "configs": 4,
        "runs": 12,
        "calls": 12,
        "cached_calls": 12,
        "estimated_tokens": 0,
        "estimated_cost": 0.0,
        "upper_bound": False,
        "expected_runs": 12,
        "expected_calls": 12,
        "proposer_calls": 0,
        "proposer_tokens": 0,
    }
    more = cli_json(home, "run", str(path), "--dry-run", "--repeats", "2")
    assert more["runs"] == 24 and more["cached_calls"] == 12 and more["estimated_tokens"] > 0


def test_listing_and_showing(finished: tuple[Path, Path, dict[str, Any]]) -> None:
    home, _, summary = finished
    [experiment] = cli_json(home, "experiments", "list")
    assert experiment["name"] == "support" and experiment["runs"] >= 12
    shown = cli_json(home, "experiments", "show", "support")
    assert shown["spec"]["name"] == "support" and "pipeline:" in shown["spec_yaml"]
    sweeps = cli_json(home, "sweeps", "list", "--experiment", "support")
    assert summary["sweep_id"] in {s["id"] for s in sweeps}
    page = cli_json(home, "runs", "list", "--experiment", "support", "--limit", "5")
    assert page["total"] >= 12 and len(page["items"]) == 5
    low = cli_json(home, "runs", "list", "--max-score", "0.5", "--limit", "100")
    assert all(run["score"] <= 0.5 for run in low["items"])
    run_id = page["items"][0]["id"]
    detail = cli_json(home, "runs", "show", run_id)
    assert detail["stages"][0]["messages"][-1]["role"] == "user"
    assert {s["scorer"] for s in detail["scores"]} == {"keyword", "format:length"}
    text = cli(home, "runs", "show", run_id).stdout
    assert "== stage 1: reply" in text and "scores:" in text
    board = cli_json(home, "leaderboard", "support", "--top", "2")
    assert len(board["entries"]) == 2 and board["entries"][0]["rank"] == 1


def test_human_score(finished: tuple[Path, Path, dict[str, Any]]) -> None:
    home, _, _ = finished
    run_id = cli_json(home, "runs", "list", "--limit", "1")["items"][0]["id"]
    done = cli(home, "score", run_id, "0.9", "--note", "clear and kind")
    assert done.returncode == 0 and "run score" in done.stdout
    detail = cli_json(home, "runs", "show", run_id)
    assert any(s["kind"] == "human" and s["note"] == "clear and kind" for s in detail["scores"])
    bad = cli(home, "score", run_id, "7")
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_cache_stats_and_clear(finished: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    home, _, _ = finished
    stats = cli_json(home, "cache", "stats")
    assert stats["entries"] >= 12 and stats["bytes"] > 0 and stats["misses"] >= 12
    # Clearing happens on a copy so the other tests keep their cache.
    copy = tmp_path / "home"
    subprocess.run(["cp", "-r", str(home), str(copy)], check=True)
    assert "removed" in cli(copy, "cache", "clear").stdout
    assert cli_json(copy, "cache", "stats")["entries"] == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["leaderboard", "nope"], "no experiment with id or name 'nope'"),
        (["runs", "show", "run_nope"], "no run with id 'run_nope'"),
        (["resume", "nope"], "no sweep (or experiment)"),
        (["run", "missing.yaml"], "file not found"),
        (["runs", "list", "--limit", "0"], "at least 1"),
        (["run", "x.yaml", "--strategy", "best"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_a_message_not_a_traceback(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = cli(tmp_path / "home", *args)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_reports_each_problem_with_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(make_experiment()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nparameters:\n  model: [m]\npipeline: []\ndataset: []\nsweep: {repats: 2}\n"
    )
    done = cli(tmp_path / "home", "validate", str(good), str(bad))
    assert done.returncode == 2
    assert f"{good}: ok" in done.stdout
    assert f"{bad}:4: pipeline:" in done.stderr
    assert f"{bad}:6: sweep.repats: unknown key 'repats' (did you mean 'repeats'?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert cli(tmp_path / "home", "validate", str(good)).returncode == 0


def test_random_without_samples_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(make_experiment()))
    done = cli(tmp_path / "home", "run", str(path), "--strategy", "random")
    assert done.returncode == 2 and "--samples" in done.stderr


def test_unreachable_endpoint_fails_the_sweep_with_exit_1(tmp_path: Path) -> None:
    from ..helpers import free_port

    spec = make_experiment(endpoint={"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = cli(tmp_path / "home", "run", str(path), "--repeats", "4", timeout=120)
    assert done.returncode == 1
    assert "connection refused" in done.stderr or "could not connect" in done.stderr
    hint = printed_command(done.stderr)
    assert hint.startswith(f"promptlooper --home {tmp_path / 'home'} resume sw_"), hint
    assert hint.endswith(" --retry-failed"), hint


def test_ctrl_c_stops_cleanly_and_the_sweep_resumes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with simulated_endpoint_process("--latency-ms", "40") as base_url:
        path = tmp_path / "slow.yaml"
        path.write_text(yaml.safe_dump(make_experiment(endpoint={"base_url": base_url})))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "promptlooper_tui",
                "--home",
                str(home),
                "run",
                str(path),
                "--repeats",
                "10",
                "--concurrency",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Once a run is saved the sweep is under way (and Ctrl-C handled); at 40 ms a call,
        # two at a time, the other 119 take over two seconds.
        wait_for_completed_runs(home, 1, process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 1, err
        assert "Traceback" not in err
        [sweep] = cli_json(home, "sweeps", "list")
        assert sweep["status"] == "stopped" and sweep["resumable"]
        assert 0 < sweep["runs_completed"] < 120
        # The printed hint, pasted as it is, finishes the sweep.
        hint = printed_command(err)
        assert hint == f"promptlooper --home {home} resume {sweep['id']}", err
        resumed = run_printed(hint, "--json")
        assert resumed.returncode == 0, resumed.stderr
        summary = json.loads(resumed.stdout)
        assert summary["status"] == "completed" and summary["runs"]["completed"] == 120


def test_endpoint_key_from_stdin_is_encrypted_and_reaches_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = "sk-test-" + "9f8e7d6c5b4a" * 3
    with simulated_endpoint_process("--api-key", secret) as base_url:
        added = cli(
            home,
            "endpoints",
            "add",
            "local",
            "--base-url",
            base_url,
            "--api-key-stdin",
            stdin=secret + "\n",
        )
        assert added.returncode == 0, added.stderr
        [listed] = cli_json(home, "endpoints", "list")
        assert listed["has_api_key"] is True and secret not in json.dumps(listed)
        tested = cli(home, "endpoints", "test", "local")
        assert tested.returncode == 0, tested.stderr
        assert "small-model" in tested.stdout
        path = tmp_path / "e.yaml"
        path.write_text(yaml.safe_dump(make_experiment(endpoint="local")))
        ran = cli(home, "run", str(path), "--json")
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["runs"]["completed"] == 12
        outputs = added.stdout + added.stderr + tested.stdout + ran.stdout + ran.stderr
    assert secret not in outputs
    for file in home.iterdir():
        assert secret.encode() not in file.read_bytes(), f"key in clear in {file.name}"
    wrong = cli(home, "endpoints", "add", "bad", "--base-url", "ftp://x")
    assert wrong.returncode == 2 and "http://" in wrong.stderr
    assert cli(home, "endpoints", "remove", "local").returncode == 0
    assert cli(home, "endpoints", "remove", "local").returncode == 2
