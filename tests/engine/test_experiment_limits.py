"""Hostile experiment files: every bomb is refused with a clear message, quickly, and nothing is
enumerated, expanded or read that the limits forbid (DESIGN §9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from promptlooper_tui.domain.errors import BadInput, ValidationError
from promptlooper_tui.engine.limits import Limits, TooExpensive, planned_configs
from promptlooper_tui.engine.loader import load_experiment_file, load_experiment_text
from promptlooper_tui.workbench import SweepOverrides, Workbench
from tests.conftest import experiment_yaml, make_experiment
from tests.helpers import cli

#: Nine levels of nine aliases: 9^9 (387 million) strings once expanded, in ~350 bytes.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "name: laughs",
    ]
)


def grid_bomb(parameters: int = 12, values: int = 10) -> str:
    """`values ** parameters` configs in a few hundred bytes."""
    choices = ", ".join(str(v) for v in range(values))
    swept = "\n".join(f"  p{i}: [{choices}]" for i in range(parameters))
    return (
        f"name: grid-bomb\nparameters:\n  model: [m]\n{swept}\n"
        "pipeline:\n  - {name: s, user: hi}\ndataset:\n  - {input: {q: x}}\n"
    )


def item(number: int) -> dict[str, object]:
    """A dataset row that the base experiment's templates and scorers accept."""
    return {"input": {"question": f"Q{number}?", "article": "A."}, "keywords": ["A"]}


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(text, **kwargs)  # type: ignore[arg-type]
    return [f"{issue.path}: {issue.message} (line {issue.line})" for issue in caught.value.issues]


def test_billion_laughs_fails_fast_before_anything_is_expanded() -> None:
    assert len(BILLION_LAUGHS.encode()) < 600
    with pytest.raises(TooExpensive) as caught:
        load_experiment_text(BILLION_LAUGHS)
    assert "expands (with its aliases) to more than 200,000 values" in str(caught.value)
    assert "PROMPTLOOPER_LIMIT_YAML_NODES" in str(caught.value)


def test_aliases_within_the_limit_still_work() -> None:
    text = experiment_yaml().replace("scorers:", "scorers: &s", 1)
    assert load_experiment_text(text).spec.name == "support"


def test_a_recursive_alias_is_a_clear_error() -> None:
    (problem,) = problems("name: x\nloop: &a [1, *a]\n")
    assert "refers to a collection that contains it" in problem


def test_a_grid_of_ten_to_the_twelve_configs_is_counted_not_enumerated() -> None:
    text = grid_bomb()
    assert len(text.encode()) < 600
    (problem,) = problems(text)
    assert "too expensive to check: the sweep has 1,000,000,000,000 configs" in problem
    assert "the limit is 100,000 (PROMPTLOOPER_LIMIT_MAX_CONFIGS)" in problem


def test_runs_are_capped_as_well_as_configs() -> None:
    spec = make_experiment(dataset=[item(i) for i in range(50)], sweep={"repeats": 1000})
    (problem,) = problems(yaml.safe_dump(spec), limits=Limits(max_runs=10_000))
    assert "runs (4 configs × 50 items × 1,000 repeats); the limit is 10,000" in problem


async def test_a_sweep_override_past_the_limit_is_refused(
    workbench: Workbench, write_experiment: object
) -> None:
    spec = make_experiment(parameters={"model": ["m"], "temperature": {"min": 0, "max": 1}})
    imported = await workbench.import_text(yaml.safe_dump(spec))
    overrides = SweepOverrides(strategy="random", samples=10**12)
    with pytest.raises(TooExpensive, match="1,000,000,000,000 configs"):
        await workbench.plan(imported.id, overrides)
    with pytest.raises(TooExpensive, match="1,000,000,000,000 configs"):
        await workbench.create_sweep(imported.id, overrides)


def test_planned_configs_follow_the_strategy() -> None:
    spec = load_experiment_text(experiment_yaml()).spec
    assert planned_configs(spec, spec.sweep) == 4
    sampled = spec.sweep.model_copy(update={"strategy": "random", "samples": 3})
    assert planned_configs(spec, sampled) == 3


def test_text_larger_than_the_limit_is_refused_unread() -> None:
    with pytest.raises(TooExpensive, match=r"the text is [0-9,]+ bytes; the limit is 100 "):
        load_experiment_text(experiment_yaml(), limits=Limits(experiment_bytes=100))


def test_nesting_deeper_than_the_limit_is_refused_with_its_line() -> None:
    text = experiment_yaml() + "extra: " + "[" * 70 + "]" * 70 + "\n"
    with pytest.raises(TooExpensive) as caught:
        load_experiment_text(text)
    (issue,) = caught.value.issues
    assert "nested deeper than 64 levels" in issue.message
    assert issue.line == text.count("\n")


def test_duplicate_keys_are_errors_naming_both_lines() -> None:
    text = "name: a\nname: b\n" + experiment_yaml().split("\n", 1)[1]
    assert "name: duplicate key 'name' (first on line 1) (line 2)" in problems(text)


def test_nan_infinity_and_huge_integers_are_rejected_where_they_are() -> None:
    text = experiment_yaml(sweep={"seed": 7}).replace("seed: 7", "seed: 123456789012345678901234")
    text += "extra: [.nan, .inf]\n"
    found = problems(text)
    assert any("extra[0]: nan is not allowed" in p for p in found), found
    assert any("extra[1]: inf is not allowed" in p for p in found), found
    assert any("sweep.seed: integer too large" in p for p in found)


def test_an_integer_of_thousands_of_digits_is_a_clear_error() -> None:
    text = experiment_yaml() + "x: " + "9" * 5000 + "\n"
    (problem,) = problems(text)
    assert "invalid YAML value" in problem


def test_lone_surrogates_are_rejected_in_the_text_and_in_escapes() -> None:
    (raw,) = problems(experiment_yaml().replace("How do I", "How \ud800do I"))
    assert "lone surrogate (U+D800)" in raw
    escaped = experiment_yaml() + 'extra: "a \\udc00 b"\n'
    found = problems(escaped)
    assert any("surrogate" in p or "invalid" in p for p in found), found


def test_keys_that_are_not_text_are_reported_not_crashed_on() -> None:
    text = experiment_yaml() + "extra: {1: a, null: b, x: c}\n"
    found = problems(text)
    assert any("key 1 is not text" in p for p in found)


def test_dataset_rows_and_bytes_are_capped(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(item(i)) + "\n" for i in range(30)))
    text = experiment_yaml(dataset={"file": "rows.jsonl"})
    assert any(
        "has 30 rows; the limit is 20" in p
        for p in problems(text, base_dir=tmp_path, limits=Limits(dataset_rows=20))
    )
    assert any(
        "is larger than 100 bytes" in p
        for p in problems(text, base_dir=tmp_path, limits=Limits(dataset_bytes=100))
    )
    inline = experiment_yaml(dataset=[item(i) for i in range(30)])
    assert any(
        "the dataset has 30 rows" in p for p in problems(inline, limits=Limits(dataset_rows=20))
    )


def test_a_fifo_dataset_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    found = problems(experiment_yaml(dataset={"file": "pipe.jsonl"}), base_dir=tmp_path)
    assert any("is not a regular file" in p for p in found)


def test_a_dataset_file_with_nan_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"input": {"q": NaN}}\n')
    found = problems(experiment_yaml(dataset={"file": "d.jsonl"}), base_dir=tmp_path)
    assert any("NaN is not allowed" in p for p in found)


def test_limits_come_from_the_environment_and_bad_values_are_named() -> None:
    limits = Limits.from_env({"PROMPTLOOPER_LIMIT_MAX_CONFIGS": "500_000"})
    assert limits.max_configs == 500_000
    assert Limits.from_env({"PROMPTLOOPER_LIMIT_CHECK_SECONDS": "2.5"}).check_seconds == 2.5
    with pytest.raises(BadInput, match="PROMPTLOOPER_LIMIT_YAML_DEPTH='deep'"):
        Limits.from_env({"PROMPTLOOPER_LIMIT_YAML_DEPTH": "deep"})


def test_relative_dataset_files_resolve_against_the_experiment_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "items.jsonl").write_text(json.dumps(item(0)) + "\n")
    path = folder / "experiment.yaml"
    path.write_text(experiment_yaml(dataset={"file": "items.jsonl"}))
    monkeypatch.chdir(tmp_path)
    loaded = load_experiment_file(Path("project") / "experiment.yaml")
    assert loaded.spec.items == [item(0)]
    assert loaded.origin == str(path)


def test_the_cli_refuses_each_bomb_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    for name, text in [("laughs", BILLION_LAUGHS), ("grid", grid_bomb())]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        for command in (["validate", str(path)], ["run", str(path)]):
            done = cli(tmp_path / "home", *command)
            assert done.returncode == 2, done.stderr
            assert "too expensive to check" in done.stdout + done.stderr
            assert "Traceback" not in done.stderr


def test_the_cli_runs_a_file_from_another_folder_with_its_relative_dataset(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "items.jsonl").write_text(json.dumps(item(0)) + "\n")
    path = folder / "experiment.yaml"
    path.write_text(experiment_yaml(dataset={"file": "items.jsonl"}))
    done = cli(tmp_path / "home", "run", str(path), "--dry-run")
    assert done.returncode == 0, done.stderr


NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


def test_a_ten_billion_iteration_template_stops_at_the_loop_limit() -> None:
    pipeline = [{"name": "reply", "user": NESTED_LOOPS}]
    (problem,) = problems(experiment_yaml(pipeline=pipeline))
    assert problem.startswith("pipeline[0]: experiment too expensive to check: template work")
    assert "loop iterations" in problem


def test_a_judge_prompt_bomb_is_reported_on_its_field() -> None:
    spec = make_experiment()
    spec["scorers"].append({"type": "llm_judge", "model": "j", "prompt": "{{ 'x' * 10**10 }}"})
    (problem,) = problems(yaml.safe_dump(spec))
    assert problem.startswith("scorers[2].prompt: experiment too expensive to check")


async def test_a_template_bomb_past_the_trial_items_fails_its_run_not_the_sweep(
    workbench: Workbench,
) -> None:
    bomb = (
        "{% if item.input.bomb is defined %}"
        + NESTED_LOOPS
        + "{% endif %}{{ item.input.question }}"
    )
    dataset = [item(i) for i in range(201)]
    dataset[200]["input"]["bomb"] = True
    text = experiment_yaml(
        parameters={"model": ["small-model"], "max_tokens": 20},
        pipeline=[{"name": "reply", "user": bomb}],
        dataset=dataset,
    )
    imported = await workbench.import_text(text)
    summary = await workbench.run_sweep(await workbench.create_sweep(imported.id))
    assert summary.status == "completed"
    assert (summary.runs.completed, summary.runs.failed) == (200, 1)
    (failed,) = (await workbench.list_runs(experiment=imported.id, status="failed")).items
    assert "template work limit: more than 100,000 loop iterations" in str(failed.error)
