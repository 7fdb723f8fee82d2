"""Experiment validation: every problem at once, each with file, field path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptlooper_tui.domain.errors import ValidationError
from promptlooper_tui.engine.loader import load_experiment_file, load_experiment_text

from ..conftest import experiment_yaml

SAMPLES = sorted((Path(__file__).parents[2] / "sample_experiments").glob("*.yaml"))


def issues_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(text, source="exp.yaml")
    return [(i.path, i.line, i.message) for i in caught.value.issues]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_experiment_is_valid(path: Path) -> None:
    loaded = load_experiment_file(path)
    assert loaded.spec.items, "the dataset is resolved and not empty"


def test_a_valid_experiment_loads_with_its_parameter_space() -> None:
    spec = load_experiment_text(experiment_yaml()).spec
    assert set(spec.parameter_space()) == {"model", "temperature"}
    assert spec.fixed_parameters() == {"max_tokens": 60}


def test_bad_yaml_names_the_line() -> None:
    [(_, line, message)] = issues_of("name: x\nparameters: [unclosed\n")
    assert line == 3 or line == 2
    assert message.startswith("invalid YAML")


def test_unknown_keys_are_errors_with_a_suggestion_and_line() -> None:
    text = experiment_yaml(sweep={"strategyy": "grid"})
    [(path, line, message)] = issues_of(text)
    assert path == "sweep.strategyy"
    assert "did you mean 'strategy'" in message
    assert text.splitlines()[line - 1].strip().startswith("strategyy")


def test_every_problem_is_reported_at_once() -> None:
    text = """\
name: broken
parameters:
  model: [a]
  temperature: {min: 1.0, max: 0.0}
  prompt: [short, missing]
prompts:
  short: "Hi {{ item.input.q }"
pipeline:
  - name: s1
    user: "{{ prompts[params.prompt] }}"
    temprature: 1
dataset:
  - input: {q: hello}
scorers:
  - {type: keyword, weight: -1, required_present: [x]}
  - {type: nope}
sweep:
  repeats: zero
"""
    found = {path: (line, message) for path, line, message in issues_of(text)}
    assert found["parameters.temperature"][0] == 4
    assert "must not be below min" in found["parameters.temperature"][1]
    assert found["parameters.prompt[1]"] == (5, "unknown prompt 'missing' (prompts: short)")
    assert found["prompts.short"][0] == 7 and "syntax error" in found["prompts.short"][1]
    assert found["pipeline[0].temprature"][0] == 11
    assert found["scorers[0].weight"][0] == 15
    assert found["scorers[1].type"][0] == 16
    assert found["sweep.repeats"][0] == 18


def test_wrong_type_says_what_was_expected() -> None:
    [(path, _, message)] = issues_of(experiment_yaml(sweep={"max_concurrency": "lots"}))
    assert path == "sweep.max_concurrency"
    assert "valid integer" in message and "'lots'" in message


def test_unknown_template_variable_is_caught_before_any_call() -> None:
    pipeline = [{"name": "reply", "user": "{{ item.input.questoin }}"}]
    [(path, _, message)] = issues_of(experiment_yaml(pipeline=pipeline))
    assert path == "pipeline[0].user"
    assert "questoin" in message and "dataset item 0" in message


def test_a_stage_may_only_read_earlier_stages() -> None:
    pipeline = [
        {"name": "first", "user": "{{ stages.second.output }}"},
        {"name": "second", "user": "{{ item.input.question }}"},
    ]
    [(path, _, message)] = issues_of(experiment_yaml(pipeline=pipeline))
    assert path == "pipeline[0].user" and "second" in message


def test_sandbox_blocks_unsafe_template_access() -> None:
    pipeline = [{"name": "reply", "user": "{{ item.__class__.__mro__ }}"}]
    [(path, _, message)] = issues_of(experiment_yaml(pipeline=pipeline))
    assert path == "pipeline[0].user" and "unsafe" in message


def test_empty_dataset_is_an_error() -> None:
    [(path, _, message)] = issues_of(experiment_yaml(dataset=[]))
    assert path == "dataset" and "empty" in message


def test_an_empty_dataset_is_reported_beside_a_broken_template() -> None:
    text = (
        "name: x\nparameters: {model: [a]}\npipeline: [{name: s, user: '{{ oops }'}]\ndataset: []\n"
    )
    assert [(path, line) for path, line, _ in issues_of(text)] == [
        ("pipeline[0].user", 3),
        ("dataset", 4),
    ]


def test_missing_model_and_keyword_field() -> None:
    text = experiment_yaml(
        parameters={"temperature": [0.1]},
        scorers=[{"type": "keyword", "required_present_from": "tags"}],
    )
    found = {path: message for path, _, message in issues_of(text)}
    assert "no `model` parameter" in found["parameters"]
    assert "no field 'tags'" in found["scorers[0].required_present_from"]


def test_random_strategy_needs_samples() -> None:
    [(path, _, _)] = issues_of(experiment_yaml(sweep={"strategy": "random"}))
    assert path == "sweep.samples"


def test_structure_scorer_schema_is_checked() -> None:
    scorers = [{"type": "format", "format": "structure", "schema": {"type": "objekt"}}]
    [(path, _, message)] = issues_of(experiment_yaml(scorers=scorers))
    assert path == "scorers[0].schema" and "JSON Schema" in message


def test_dataset_files_resolve_relative_to_the_experiment(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text('{"input": {"question": "q", "article": "a"}}\n')
    (tmp_path / "items.csv").write_text("question,keywords\nhello,x\n")
    (tmp_path / "e.yaml").write_text(experiment_yaml(dataset={"file": "items.jsonl"}, scorers=[]))
    assert load_experiment_file(tmp_path / "e.yaml").spec.items == [
        {"input": {"question": "q", "article": "a"}}
    ]
    (tmp_path / "bad.yaml").write_text(experiment_yaml(dataset={"file": "nope.jsonl"}))
    with pytest.raises(ValidationError) as caught:
        load_experiment_file(tmp_path / "bad.yaml")
    assert caught.value.issues[0].path == "dataset.file"
    assert "not found" in caught.value.issues[0].message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="file not found"):
        load_experiment_file(tmp_path / "absent.yaml")
