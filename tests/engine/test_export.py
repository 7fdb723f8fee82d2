"""Exports through the Workbench: real sweeps against the simulated endpoint, real files, and the
.env file read back by a real POSIX shell and by python-dotenv."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from promptlooper_tui.domain.errors import BadInput, NotFound
from promptlooper_tui.export import write_atomically
from promptlooper_tui.export.env_export import assignment
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import simulated_endpoint
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import BASE_EXPERIMENT, experiment_yaml

#: A prompt with everything a .env quoting can trip on (and still a valid Jinja template).
NASTY_PROMPT = (
    'Don\'t say "hi" to $HOME or ${USER}; keep C:\\temp\\new, \\n and a trailing \\\\ '
    "# not a comment\n  second line\twith a tab, ${HOME:-x}, $(id) and 100% "
    "{{ item.input.question }}"
)
PROMPTED = {
    "parameters": {
        "model": ["small-model", "large-model"],
        "prompt": ["nasty", "plain"],
        "max_tokens": 60,
        "persona": "O'Brien said \"it's $5\" \\o/",
        "stop": [["\n\n", "END"]],  # one value (a list): fixed, not swept
    },
    "prompts": {"nasty": NASTY_PROMPT, "plain": "Answer: {{ item.input.question }}"},
    "pipeline": [{"name": "reply", "user": "{{ prompts[params.prompt] }} ({{ params.persona }})"}],
}
SHELLS = [shell for shell in ("sh", "dash", "bash") if shutil.which(shell)]
PRINT_ENV = (
    "import os, json; print(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('PROMPTLOOPER_')}))"
)


async def run(wb: Workbench, text: str, **overrides: Any) -> str:
    imported = await wb.import_text(text)
    sweep_id = await wb.create_sweep(imported.id, SweepOverrides(**overrides))
    await wb.run_sweep(sweep_id)
    return sweep_id


async def export(wb: Workbench, fmt: str, ref: str = "support", **options: Any) -> str:
    out = io.StringIO()
    await wb.export(ref, fmt, out, **options)
    return out.getvalue()


def sourced_by_sh(shell: str, env_file: Path) -> dict[str, str]:
    """The PROMPTLOOPER_* variables a shell ends up with after `set -a; . ./FILE`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLOOPER_")}
    done = subprocess.run(
        [shell, "-c", f'set -a; . ./{env_file.name}; exec "$0" -c "$1"', sys.executable, PRINT_ENV],
        cwd=env_file.parent,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


def expected_env(best: dict[str, Any]) -> dict[str, str]:
    """What the env export must hold, derived from the JSON export independently."""
    expected = {}
    for name, value in best["params"].items():
        key = "PROMPTLOOPER_" + re.sub("[^A-Z0-9]", "_", name.upper())
        if name == "prompt":
            value = best["prompt"]
        expected[key] = value if isinstance(value, str) else json.dumps(value)
    return expected


# -- best config -------------------------------------------------------------------------------


async def test_json_is_the_leader_with_its_prompt_params_and_pipeline(
    workbench: Workbench,
) -> None:
    sweep_id = await run(workbench, experiment_yaml(**PROMPTED))
    best = json.loads(await export(workbench, "json"))
    leader = (await workbench.leaderboard("support"))[0]
    assert best["config"] == leader.config
    assert (best["score"], best["ci_low"], best["ci_high"], best["n"]) == (
        leader.score,
        leader.ci_low,
        leader.ci_high,
        leader.n,
    )
    assert (best["experiment"], best["experiment_version"], best["sweep_id"]) == (
        "support",
        1,
        sweep_id,
    )
    fixed = {
        "max_tokens": 60,
        "persona": PROMPTED["parameters"]["persona"],
        "stop": ["\n\n", "END"],
    }
    assert best["params"] == fixed | leader.config
    assert best["prompt"] == PROMPTED["prompts"][leader.config["prompt"]]
    assert best["pipeline"] == [{**PROMPTED["pipeline"][0], "params": {}}]
    assert list(best) == [
        "experiment",
        "experiment_version",
        "sweep_id",
        "exported_at",
        "config",
        "params",
        "prompt",
        "pipeline",
        "score",
        "ci_low",
        "ci_high",
        "n",
        "ranked",
    ]


async def test_yaml_loads_back_equal_to_the_json(workbench: Workbench) -> None:
    await run(workbench, experiment_yaml(**PROMPTED))
    from_json = json.loads(await export(workbench, "json"))
    from_yaml = yaml.safe_load(await export(workbench, "yaml"))
    assert from_yaml.pop("exported_at") and from_json.pop("exported_at")
    assert from_yaml == from_json


async def test_without_prompts_there_is_no_prompt_key(workbench: Workbench) -> None:
    await run(workbench, experiment_yaml())
    best = json.loads(await export(workbench, "json"))
    assert "prompt" not in best and best["params"]["max_tokens"] == 60


@pytest.mark.parametrize("shell", SHELLS)
async def test_env_reads_the_same_in_sh_and_dotenv(
    workbench: Workbench, tmp_path: Path, shell: str
) -> None:
    await run(
        workbench,
        experiment_yaml(
            **(PROMPTED | {"parameters": {**PROMPTED["parameters"], "prompt": ["nasty"]}})
        ),
    )
    best = json.loads(await export(workbench, "json"))
    assert best["prompt"] == NASTY_PROMPT
    env_file = tmp_path / "best.env"
    env_file.write_text(await export(workbench, "env"))
    expected = expected_env(best)
    assert expected["PROMPTLOOPER_PROMPT"] == NASTY_PROMPT
    assert expected["PROMPTLOOPER_STOP"] == '["\\n\\n", "END"]'
    assert dotenv_values(env_file) == expected
    assert sourced_by_sh(shell, env_file) == expected
    assert "# PromptLooper best config of support (version 1)" in env_file.read_text()


def test_env_quoting_survives_nasty_strings(tmp_path: Path) -> None:
    """Hundreds of random strings over the characters that matter: each one either reads back
    the same in every shell and in dotenv, or is refused (only `$` with a backtick may be)."""
    pieces = [*"aZ09 _-=:!*?;&|<>~%@()[]{}\t\n#'\"$`\\é", "${HOME}", "$HOME", "\\n", "\\'", ":-"]
    rng = random.Random(7)
    values = {}
    for i in range(400):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        key = f"PROMPTLOOPER_V{i}"
        try:
            values[key] = (value, assignment(key, value))
        except BadInput:
            assert "$" in value and "`" in value
    assert len(values) > 300
    env_file = tmp_path / "nasty.env"
    env_file.write_text("".join(lines + "\n" for _, lines in values.values()))
    expected = {key: value for key, (value, _) in values.items()}
    assert dotenv_values(env_file) == expected
    for shell in SHELLS:
        assert sourced_by_sh(shell, env_file) == expected, shell


@pytest.mark.parametrize(
    "value", ["nul\0char", "carriage\rreturn", "it's `date` at $HOME", "`x` ${y}"]
)
def test_env_refuses_values_no_quoting_carries(value: str) -> None:
    with pytest.raises(BadInput):
        assignment("PROMPTLOOPER_X", value)


def test_env_uses_plain_single_quotes_when_it_can() -> None:
    assert assignment("PROMPTLOOPER_MODEL", "large-model") == "PROMPTLOOPER_MODEL='large-model'"
    assert assignment("K", "`date` costs $5") == "K='`date` costs $5'"


# -- every run ---------------------------------------------------------------------------------


async def test_csv_and_jsonl_have_one_row_per_run(workbench: Workbench) -> None:
    sweep_id = await run(workbench, experiment_yaml(), repeats=2)
    total = (await workbench.sweep_summary(sweep_id)).runs.total
    rows = list(csv.DictReader(io.StringIO(await export(workbench, "csv"))))
    assert len(rows) == total == 24
    assert {"param.model", "param.temperature", "score.keyword", "score.format:length"} <= set(
        rows[0]
    )
    for row in rows:
        for column in ("score.keyword", "score.format:length", "score", "cost", "latency_ms"):
            float(row[column])
        assert json.loads(row["config"])["model"] == row["param.model"]
        assert json.loads(row["input"])["question"]
    lines = (await export(workbench, "jsonl")).splitlines()
    assert len(lines) == total
    first = json.loads(lines[0])
    assert isinstance(first["config"], dict) and isinstance(first["input"], dict)
    detail = await workbench.get_run(first["run_id"])
    assert first["output"] == detail.stages[-1].output
    assert first["score"] == detail.score
    assert {s.scorer: s.value for s in detail.scores} == {
        "keyword": first["score.keyword"],
        "format:length": first["score.format:length"],
    }


async def test_a_large_export_streams_in_bounded_memory(
    workbench: Workbench, tmp_path: Path
) -> None:
    runs, output = 2000, "x" * 20_000  # 40 MB of outputs: far more than the bound below
    sweep_id = await populate(workbench, runs, output)
    target = tmp_path / "runs.csv"
    tracemalloc.start()
    try:
        with target.open("w", newline="") as out:
            await workbench.export("support", "csv", out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MB"
    with target.open(newline="") as done:
        rows = list(csv.DictReader(done))
    assert len(rows) == runs and all(row["output"] == output for row in rows)
    assert rows[0]["run_id"].startswith(sweep_id)


async def populate(wb: Workbench, runs: int, output: str) -> str:
    """A sweep of `runs` completed runs written straight into the store (no LLM calls)."""
    imported = await wb.import_text(experiment_yaml())
    sweep_id = await wb.create_sweep(imported.id)
    configs = [
        {"model": m, "temperature": t} for m in ("small-model", "large-model") for t in (0, 1)
    ]
    statements: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO configs (id, sweep_id, key, params) VALUES (?, ?, ?, ?)",
            (i + 1, sweep_id, f"k{i}", json.dumps(c)),
        )
        for i, c in enumerate(configs)
    ]
    for i in range(runs):
        statements.append(
            (
                "INSERT INTO runs (id, sweep_id, config_id, experiment_id, item_index, repeat, "
                "status, score, tokens_in, tokens_out, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'completed', 0.5, 10, 20, '2025-01-01T00:00:00+00:00')",
                (f"{sweep_id}_{i:05d}", sweep_id, i % 4 + 1, imported.id, i // 4 % 3, i // 12),
            )
        )
    statements += [
        (
            "INSERT INTO stage_results (run_id, stage_index, name, messages, output) "
            "VALUES (?, 0, 'reply', '[]', ?)",
            (f"{sweep_id}_{i:05d}", output),
        )
        for i in range(runs)
    ]
    statements += [
        (
            "INSERT INTO scores (run_id, scorer, kind, value, weight, created_at) "
            "VALUES (?, ?, 'auto', 0.5, 1, '2025-01-01T00:00:00+00:00')",
            (f"{sweep_id}_{i:05d}", scorer),
        )
        for scorer in ("keyword", "format:length")
        for i in range(runs)
    ]
    await wb.db.write(statements)
    return sweep_id


# -- report ------------------------------------------------------------------------------------


async def test_report_has_leaderboard_histograms_and_grouped_failures(
    workbench: Workbench,
) -> None:
    # A temperature the endpoint rejects (HTTP 400, not retried) makes half the runs fail.
    parameters = {"model": ["small-model", "large-model"], "temperature": [0.0, "hot"]}
    await run(workbench, experiment_yaml(parameters=parameters))
    report = await export(workbench, "report", top=1)
    assert report.startswith("# Sweep report: support\n")
    assert "| temperature | swept | 0.0, hot |" in report
    assert "Configs tried: **4**, dropped by racing: **0**." in report
    assert "| rank | config | score | 95% CI | n | tied with leader |" in report
    assert "| 1 | model=" in report and "| 2 | model=" not in report
    assert "### keyword" in report and "### (run score)" in report and "█" in report
    assert "- Runs: 12 (6 completed, 6 failed)" in report
    failures = report.split("## Failures")[1]
    assert "| 6 | stage reply: " in failures and "'temperature' must be a number" in failures
    assert failures.count("run_") == 3, "a few example run ids, not all six"
    assert "First run finished:" in report


async def test_a_sweep_whose_runs_all_failed_has_a_report_but_no_best_config(
    workbench: Workbench,
) -> None:
    async with simulated_endpoint(SimulatorOptions(fail_rate=1.0)) as down:
        await run(
            workbench,
            experiment_yaml(
                endpoint={"base_url": down.base_url},
                parameters={"model": ["small-model"]},
                dataset=BASE_EXPERIMENT["dataset"][:1],
            ),
        )
    report = await export(workbench, "report")
    assert "No scored runs yet." in report
    assert "| 1 | stage reply: " in report and "HTTP 500" in report
    assert len((await export(workbench, "jsonl")).splitlines()) == 1
    for fmt in ("json", "yaml", "env"):
        with pytest.raises(BadInput, match="has no scored runs yet"):
            await export(workbench, fmt)


# -- choosing what to export, and safety ---------------------------------------------------------


async def test_sweep_option_bad_format_and_unknown_ids(workbench: Workbench) -> None:
    first = await run(workbench, experiment_yaml())
    second = await run(workbench, experiment_yaml(), repeats=2)
    assert json.loads(await export(workbench, "json"))["sweep_id"] == second
    assert json.loads(await export(workbench, "json", sweep=first))["sweep_id"] == first
    assert len((await export(workbench, "jsonl", sweep=first)).splitlines()) == 12
    with pytest.raises(BadInput, match="unknown export format 'xml'"):
        await export(workbench, "xml")
    with pytest.raises(NotFound):
        await export(workbench, "json", ref="nope")
    with pytest.raises(NotFound):
        await export(workbench, "json", sweep="sw_nope")
    await workbench.import_text(experiment_yaml(name="other"))
    with pytest.raises(BadInput, match="belongs to experiment 'support'"):
        await export(workbench, "json", ref="other", sweep=first)
    created = await workbench.create_sweep("other")
    with pytest.raises(BadInput, match=f"sweep {created} .* has no finished runs yet"):
        await export(workbench, "csv", ref="other")


async def test_no_api_key_appears_in_any_export(workbench: Workbench, sim: Any) -> None:
    secret = "sk-test-DO-NOT-LEAK-42"
    await workbench.add_endpoint("keyed", sim.base_url, api_key=secret)
    await run(workbench, experiment_yaml(endpoint="keyed"))
    for fmt in ("json", "env", "yaml", "report", "csv", "jsonl"):
        assert secret not in await export(workbench, fmt), fmt


def test_write_atomically_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "best.json"
    target.write_text("previous\n")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), write_atomically(target) as out:
        out.write("half of a new file")
        raise RuntimeError("export failed midway")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"], "no temp file left"
    with write_atomically(target) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"]
    with pytest.raises(BadInput, match="cannot write"), write_atomically(tmp_path / "no" / "x"):
        pass
