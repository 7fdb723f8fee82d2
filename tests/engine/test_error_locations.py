"""Every kind of mistake is reported on the line where it is, in PromptLooper's words."""

from __future__ import annotations

import pytest

from promptlooper_tui.domain.errors import Issue, ValidationError
from promptlooper_tui.engine.loader import load_experiment_text

HEAD = "name: where\nparameters:\n  model: [small-model]\n"
DATASET = "dataset:\n  - input: {q: 1}\n"


def only_issue(text: str) -> Issue:
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(text, source="x.yaml")
    (issue,) = caught.value.issues
    return issue


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_an_unclosed_bracket_is_reported_where_it_opened() -> None:
    text = "name: b\nparameters:\n  model: [small-model, large-model\n  temperature: [0.0]\n"
    issue = only_issue(text + "pipeline: [{name: s, user: hi}]\n" + DATASET)
    assert issue.line == 3
    assert "'[' opened here is not closed" in issue.message


def test_an_unclosed_quote_is_reported_where_it_opened() -> None:
    text = HEAD + 'description: "never closed\npipeline: [{name: s, user: hi}]\n' + DATASET
    issue = only_issue(text)
    assert issue.line == line_of(text, "never closed")
    assert "quote opened here is not closed" in issue.message


def test_an_unknown_field_in_a_block_template_points_at_its_own_line() -> None:
    text = (
        HEAD
        + "pipeline:\n  - name: s\n    system: You are kind.\n    user: |\n"
        + "      Question: {{ item.input.q }}\n      Context: {{ item.input.oops }}\n"
        + "      Bye\n"
        + DATASET
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("pipeline[0].user", line_of(text, "oops"))
    assert issue.message == "template error: no field 'oops' here (dataset item 0)"


def test_an_unknown_name_is_explained() -> None:
    text = HEAD + "pipeline:\n  - name: s\n    user: 'Hi {{ itme.input.q }}'\n" + DATASET
    issue = only_issue(text)
    assert issue.line == line_of(text, "itme")
    assert "unknown name 'itme' (templates see params, item, prompts and stages)" in issue.message


def test_a_failing_system_template_is_named_as_such() -> None:
    text = (
        HEAD
        + "pipeline:\n  - name: s\n    system: 'Be {{ params.mood }}'\n    user: hi\n"
        + DATASET
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("pipeline[0].system", line_of(text, "mood"))


def test_an_error_inside_a_prompt_is_reported_on_the_prompt() -> None:
    text = (
        "name: p\nparameters:\n  model: [small-model]\n  prompt: [a, b]\nprompts:\n"
        "  a: 'fine {{ item.input.q }}'\n"
        "  b: |\n    line one\n    broken {{ item.input.nope }}\n"
        "pipeline:\n  - name: s\n    user: '{{ prompts[params.prompt] }}'\n" + DATASET
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("prompts.b", line_of(text, "nope"))
    assert "(dataset item 0, prompt 'b')" in issue.message


def test_a_template_syntax_error_points_at_its_line_and_says_what_to_close() -> None:
    text = (
        HEAD
        + "pipeline:\n  - name: s\n    user: |\n      Q: {{ item.input.q }}\n"
        + "      C: {% if item.input.q %}\n      Bye\n"
        + DATASET
    )
    issue = only_issue(text)
    assert issue.path == "pipeline[0].user"
    assert issue.line is not None and issue.line >= line_of(text, "{% if")
    assert issue.message == (
        "template syntax error: the {% if %} block is never closed ({% endif %})"
    )


def test_a_judge_prompt_error_points_at_its_line() -> None:
    text = (
        HEAD
        + "pipeline: [{name: s, user: hi}]\n"
        + DATASET
        + "scorers:\n  - type: llm_judge\n    model: j\n    prompt: |\n"
        + "      Rate this: {{ output }}\n      Against: {{ item.gold }}\n"
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("scorers[0].prompt", line_of(text, "gold"))


def test_empty_lists_are_explained_without_pydantics_words() -> None:
    text = "name: e\nparameters:\n  model: []\npipeline: []\n" + DATASET
    with pytest.raises(ValidationError) as caught:
        load_experiment_text(text)
    messages = {(i.path, i.message) for i in caught.value.issues}
    assert messages == {
        ("parameters.model", "an empty list; give at least one value"),
        ("pipeline", "an empty list; give at least one"),
    }
