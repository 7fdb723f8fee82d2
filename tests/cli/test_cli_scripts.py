"""The CLI as scripts and newcomers meet it: hints that work when pasted, JSON from `validate`,
help that lists what exists, tables that fit a 100-column terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_experiment
from ..helpers import cli, cli_json, printed_command, run_printed

#: Long on purpose: every table must still fit 100 columns.
LONG_NAME = "support-replies-for-the-billing-and-invoicing-team-" + "x" * 40


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home whose names, configs, URLs and prices are all long: (home, experiment file)."""
    root = tmp_path_factory.mktemp("crowded")
    spec = make_experiment(
        name=LONG_NAME,
        parameters={
            "model": ["small-model", "large-model"],
            "temperature": [0.0, 0.8],
            "max_tokens": 60,
            "stop": [["\n\n## A long stop sequence", "### and another"]],
        },
    )
    path = root / "crowded.yaml"
    path.write_text(yaml.safe_dump(spec))
    home = root / "home"
    # A token budget it cannot finish within: the budget hint too must carry the home.
    done = cli(home, "run", str(path), "--max-tokens", "300", "--concurrency", "1")
    assert done.returncode == 0, done.stderr
    hint = printed_command(done.stderr)
    assert hint.startswith(f"promptlooper --home {home} resume sw_") and "--max-tokens N" in hint
    resumed = run_printed(hint.replace(" N", " 1000000"))
    assert resumed.returncode == 0, resumed.stderr
    url = "http://127.0.0.1:9/" + "v1/" * 12
    prices = [f"--price=model-{n}-with-a-long-name=0.5,1.5" for n in range(6)]
    assert cli(home, "endpoints", "add", "far", "--base-url", url, *prices).returncode == 0
    hook = cli(home, "webhooks", "add", url + "hook", "--events", "run.completed,sweep.completed")
    assert hook.returncode == 0, hook.stderr
    return home, path


@pytest.mark.parametrize(
    "command",
    [
        ["experiments", "list"],
        ["runs", "list", LONG_NAME],
        ["endpoints", "list"],
        ["webhooks", "list"],
    ],
)
def test_list_tables_fit_100_columns(crowded: tuple[Path, Path], command: list[str]) -> None:
    home, _ = crowded
    done = cli(home, *command)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) >= 3, done.stdout
    too_wide = [line for line in lines if len(line) > 100]
    assert not too_wide, too_wide


def test_runs_list_takes_the_experiment_like_leaderboard_and_export(
    crowded: tuple[Path, Path],
) -> None:
    home, _ = crowded
    positional = cli_json(home, "runs", "list", LONG_NAME, "--limit", "5")
    flag = cli_json(home, "runs", "list", "--experiment", LONG_NAME, "--limit", "5")
    assert positional == flag and positional["total"] == 12 and len(positional["items"]) == 5
    text = cli(home, "runs", "list", LONG_NAME, "--limit", "5").stdout
    # The cut is announced, with how to see more; scores have one format.
    *table, summary, after = text.splitlines()
    assert summary == "runs 1-5 of 12, newest first; for the next 5 add"
    assert after == f"--after {positional['next']}" and len(after) <= 100
    scores = [line.split()[-4] for line in table[2:]]
    assert all(len(score.split(".")[-1]) == 3 for score in scores), scores
    # The cursor pages on (to the last page, which offers none), as --offset still does.
    rest = cli(home, "runs", "list", LONG_NAME, "--limit", "7", *after.split()).stdout
    assert rest.splitlines()[-1] == "7 runs past the cursor (12 match), newest first"
    by_cursor = cli_json(home, "runs", "list", LONG_NAME, "--limit", "7", *after.split())
    by_offset = cli_json(home, "runs", "list", LONG_NAME, "--limit", "7", "--offset", "5")
    assert by_cursor == by_offset and by_cursor["next"] is None
    nothing = cli(home, "runs", "list", LONG_NAME, "--offset", "99")
    assert nothing.stdout == "no runs past the first 99 (12 match)\n"
    elsewhere = cli(home, "runs", "list", "--status", "failed", *after.split())
    assert elsewhere.returncode == 2 and "other filters" in elsewhere.stderr
    forged = cli(home, "runs", "list", "--after", "not-a-cursor")
    assert forged.returncode == 2 and "invalid cursor after=" in forged.stderr
    assert "Traceback" not in elsewhere.stderr + forged.stderr
    both = cli(home, "runs", "list", LONG_NAME, "--experiment", "other")
    assert both.returncode == 2 and "name one" in both.stderr
    huge = cli(home, "runs", "list", "--offset", str(2**63))
    assert huge.returncode == 2 and "Traceback" not in huge.stderr


def test_validate_json_is_one_document_and_a_folder_is_named_plainly(
    crowded: tuple[Path, Path], tmp_path: Path
) -> None:
    _, good = crowded
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparameters: 3\n")
    done = cli(tmp_path / "home", "validate", str(good), str(bad), str(tmp_path), "--json")
    assert done.returncode == 2 and done.stderr == ""
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [(f["file"], f["ok"]) for f in report["files"]] == [
        (str(good), True),
        (str(bad), False),
        (str(tmp_path), False),
    ]
    assert report["files"][0]["name"] == LONG_NAME and report["files"][0]["stages"] == 1
    issues: list[dict[str, Any]] = report["issues"]
    assert all(set(issue) == {"source", "path", "line", "message"} for issue in issues)
    assert {issue["source"] for issue in issues} == {str(bad), str(tmp_path)}
    assert any(issue["path"] == "parameters" and issue["line"] == 2 for issue in issues)
    assert cli_json(tmp_path / "home", "validate", str(good))["ok"] is True

    folder = cli(tmp_path / "home", "validate", str(tmp_path))
    assert folder.returncode == 2
    assert f"{tmp_path}: is a directory" in folder.stderr and "Errno" not in folder.stderr
    ran = cli(tmp_path / "home", "run", str(tmp_path))
    assert ran.returncode == 2 and "is a directory" in ran.stderr


def test_group_help_lists_its_actions(tmp_path: Path) -> None:
    for group, actions in {
        "endpoints": ["add", "list", "test", "remove"],
        "runs": ["list", "show"],
        "experiments": ["list", "show"],
        "cache": ["stats", "clear"],
        "webhooks": ["add", "list", "remove", "deliveries"],
    }.items():
        text = cli(tmp_path, group, "--help").stdout
        listed = [line.split()[0] for line in text.splitlines() if re.match(r"    \S", line)]
        assert listed == actions, (group, text)


def test_no_command_without_a_terminal_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    """A script that runs `promptlooper` alone (stdin or stdout not a terminal) gets the help,
    not a full-screen app that would hang it."""
    done = subprocess.run(
        [sys.executable, "-m", "promptlooper_tui", "--home", str(tmp_path / "home")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: promptlooper" in done.stderr and "the app needs a terminal" in done.stderr
    assert not (tmp_path / "home").exists()


def test_no_command_with_output_to_a_pipe_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    """Typed at a terminal but piped (`promptlooper | less`): the app could read keys but not
    draw, so it is not started either."""
    keyboard, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "promptlooper_tui", "--home", str(tmp_path / "home")],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(keyboard)
        os.close(terminal)
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: promptlooper" in done.stderr and "the app needs a terminal" in done.stderr
    assert not (tmp_path / "home").exists()


def test_output_to_a_reader_that_went_away_is_no_traceback(crowded: tuple[Path, Path]) -> None:
    """`promptlooper runs list | head -1`: the pipe's reader is gone before the table is out."""
    home, _ = crowded
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command starts: its first write meets EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "promptlooper_tui", "runs", "list", "--home", str(home)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
