"""Drill: the experiment loader, fed random YAML and mutated sample experiments, either loads
the document or raises ValidationError whose every issue names the file and a line; it never
raises anything else (a traceback is a bug)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlooper_tui.domain.errors import ValidationError
from promptlooper_tui.engine.loader import load_experiment_text

SAMPLES_DIR = Path(__file__).parents[2] / "sample_experiments"
SAMPLES = {path.name: path.read_text() for path in sorted(SAMPLES_DIR.glob("*.yaml"))}
SOURCE = "fuzzed.yaml"

#: Keys the loader knows, so random documents reach past the first "unknown key" check.
KEYS = [
    *["name", "description", "endpoint", "parameters", "prompts", "pipeline", "dataset"],
    *["scorers", "sweep", "model", "temperature", "top_p", "max_tokens", "prompt", "stop"],
    *["seed", "response_format", "min", "max", "steps", "system", "user", "params", "input"],
    *["reference", "keywords", "file", "type", "format", "schema", "weight", "strategy"],
    *["samples", "repeats", "max_concurrency", "base_url", "api_key_env", "required_present_from"],
    *["required_absent", "min_tokens", "reference_field", "items_per_round", "alpha", "top_k"],
]
TEXTS = st.one_of(
    st.sampled_from(
        [
            "{{ item.input.question }}",
            "{{ prompts[params.prompt] }}",
            "{{ stages.draft.output }}",
            "{% for x in item %}{{ x }}",
            "{{ item.__class__ }}",
            "{{ 1/0 }}",
            "keyword",
            "format",
            "llm_judge",
            "embedding",
            "json",
            "length",
            "structure",
            "grid",
            "random",
            "racing",
            "simulated",
            "http://127.0.0.1:1/v1",
            "items.jsonl",
            "../../etc/passwd.csv",
        ]
    ),
    st.text(max_size=20),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), SCALARS), children, max_size=5),
    ),
    max_leaves=30,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=9)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str) -> None:
    """Load `text`; only ValidationError with located issues may come out."""
    try:
        load_experiment_text(text, source=SOURCE, base_dir=SAMPLES_DIR)
    except ValidationError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.source == SOURCE, issue
            assert isinstance(issue.line, int) and issue.line >= 1, issue
            assert issue.message, issue


def test_every_sample_experiment_loads() -> None:
    for text in SAMPLES.values():
        load_experiment_text(text, source=SOURCE, base_dir=SAMPLES_DIR)


@FUZZ
@given(DOCUMENTS)
def test_random_documents(document: dict[str, Any]) -> None:
    check(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_samples_with_a_value_replaced_removed_or_added(name: str, data: st.DataObject) -> None:
    spec = yaml.safe_load(SAMPLES[name])
    for _ in range(data.draw(st.integers(1, 3))):
        parent, key = data.draw(st.sampled_from(_slots(spec)))
        action = data.draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[key] = data.draw(VALUES)
        elif action == "remove":
            del parent[key]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS))] = data.draw(VALUES)
        else:
            parent.insert(key, data.draw(VALUES))
    check(yaml.safe_dump(spec, allow_unicode=True))


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_samples_with_their_text_damaged(name: str, data: st.DataObject) -> None:
    lines = SAMPLES[name].splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        damage = data.draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "edit"]))
        if damage == "delete":
            del lines[index]
        elif damage == "duplicate":
            lines.insert(index, lines[index])
        elif damage == "indent":
            lines[index] = "  " + lines[index]
        elif damage == "dedent":
            lines[index] = lines[index].lstrip()
        else:
            at = data.draw(st.integers(0, len(lines[index])))
            junk = data.draw(st.text(alphabet=":-[]{}'\"#&*!|>%@`\t {}", max_size=3))
            lines[index] = lines[index][:at] + junk + lines[index][at + 1 :]
        if not lines:
            break
    check("".join(lines))


def _slots(spec: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) for every value inside `spec`, at any depth."""
    slots: list[tuple[Any, Any]] = []
    stack = [spec]
    while stack:
        node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(children):
            slots.append((node, key))
            if isinstance(child, dict | list) and child:
                stack.append(child)
    return slots or [(spec, "name")]


# Found by the fuzzers above (each used to raise something other than ValidationError).


def test_a_value_that_fits_none_of_its_forms_is_reported_where_it_is() -> None:
    text = SAMPLES["quickstart.yaml"].replace("endpoint: simulated", "endpoint: []")
    line = text.splitlines().index("endpoint: []") + 1
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(text, source=SOURCE, base_dir=SAMPLES_DIR)
    [issue] = caught.value.issues
    assert (issue.path, issue.line) == ("endpoint", line)
    assert issue.message.startswith("expected a valid string or a valid dictionary"), issue


def test_prompt_names_that_are_not_text_are_reported() -> None:
    spec = yaml.safe_load(SAMPLES["quickstart.yaml"])
    spec["prompts"] = {1: "Answer: {{ item.input.question }}"}
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(yaml.safe_dump(spec), source=SOURCE, base_dir=SAMPLES_DIR)
    messages = [issue.message for issue in caught.value.issues]
    assert "unknown prompt 'concise' (prompts: 1)" in messages, messages
