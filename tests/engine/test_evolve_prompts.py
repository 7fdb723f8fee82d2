"""Which parameter evolve rewrites, and the checks a proposed template passes before a run is
spent on it: its syntax, its length, the variables it reads (only those the experiment's own
prompts read), a new text, and a trial render in the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import ExperimentSpec, SweepSettings
from promptlooper_tui.engine.evolve import EvolveStrategy
from promptlooper_tui.engine.evolve_prompts import (
    MAX_TEMPLATE_CHARS,
    ProposalCheck,
    may_read,
    read_variables,
    variable_paths,
)
from promptlooper_tui.engine.strategies import strategy_for

PROMPTS = {
    "plain": "Summarise for release notes: {{ item.input.change }}",
    "keyworded": "Summarise {{ item.input.change }}. Name: "
    "{% for word in item.keywords %}{{ word }} {% endfor %}",
}
ITEM = {
    "input": {"change": "Kafka consumers restart faster", "context": "internal notes"},
    "keywords": ["Kafka"],
    "reference": "Kafka consumers now restart in half the time.",
}
EVOLVE = {"strategy": "evolve", "proposer": {"model": "large-model"}}


def spec(**changes: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "name": "notes",
        "parameters": {"model": "medium-model", "prompt": list(PROMPTS)},
        "prompts": PROMPTS,
        "pipeline": [{"name": "summary", "user": "{{ prompts[params.prompt] }}"}],
        "dataset": [ITEM] * 12,
        "sweep": EVOLVE,
    }
    return ExperimentSpec.model_validate(data | changes)


def rewritten(experiment: ExperimentSpec) -> str:
    """The parameter an evolve sweep of `experiment` rewrites the prompts of."""
    strategy = strategy_for(experiment, SweepSettings.model_validate(EVOLVE))
    assert isinstance(strategy, EvolveStrategy)
    return strategy.parameter


# --- the parameter evolve rewrites ---------------------------------------------------------------


def test_the_prompt_parameter_is_the_one_naming_prompts_listed_or_alone() -> None:
    assert rewritten(spec()) == "prompt"
    assert rewritten(spec(parameters={"style": "plain", "model": ["a", "b"]})) == "style"
    # A list holding a name that is not a prompt does not pick among the prompts.
    with pytest.raises(BadInput, match="found none"):
        rewritten(spec(parameters={"prompt": ["plain", "nope"]}))


def test_no_prompt_parameter_or_two_of_them_is_refused_naming_them() -> None:
    with pytest.raises(BadInput, match=r"exactly one parameter .*prompts.*found none"):
        rewritten(spec(parameters={"model": ["a", "b"]}))
    with pytest.raises(BadInput, match="found prompt, fallback"):
        rewritten(spec(parameters={"prompt": ["plain"], "fallback": "keyworded"}))
    with pytest.raises(BadInput, match="needs `prompts:`"):
        rewritten(spec(prompts={}, parameters={"model": "m"}))


# --- the variables a template reads ----------------------------------------------------------


def test_variable_paths_are_the_outermost_chains_a_template_reads() -> None:
    text = "{{ item.input.change }} {{ params.tone }} {{ item['input']['context'] }}"
    assert variable_paths(text) == {"item.input.change", "params.tone", "item.input.context"}


def test_names_a_template_binds_itself_are_not_variables() -> None:
    text = (
        "{% set change = item.input.change %}{{ change.upper() }}"
        "{% for word in item.keywords %}{{ word }}{% endfor %}"
    )
    assert variable_paths(text) == {"item.input.change", "item.keywords"}


def test_a_proposal_may_read_the_prompts_variables_and_their_parts_not_what_holds_them() -> None:
    variables = read_variables(PROMPTS.values())
    assert variables == ["item.input.change", "item.keywords"]
    for path in ("item.input.change", "item.input.change.upper", "item.keywords", "loop.index"):
        assert may_read(path, variables), path
    for path in ("item", "item.input", "item.reference", "item.input.context", "params"):
        assert not may_read(path, variables), path


# --- a proposal's check --------------------------------------------------------------------------


def problem(template: str, experiment: ExperimentSpec | None = None) -> str | None:
    experiment = experiment or spec()
    check = ProposalCheck(experiment, "prompt")
    return check.problem(template, experiment.prompts, {"model": "medium-model"}, ITEM)


def test_a_template_reading_the_prompts_variables_is_accepted() -> None:
    assert problem("In one sentence, for users: {{ item.input.change }}") is None
    assert (
        problem(
            "{% set c = item.input.change %}{{ c }}; keep "
            "{% for w in item.keywords %}{{ w }}, {% endfor %}"
        )
        is None
    )


@pytest.mark.parametrize(
    "invented",
    ["item.reference", "item.input.context", "params.secret", "stages.draft.output"],
)
def test_a_variable_the_prompts_do_not_read_is_rejected_naming_it(invented: str) -> None:
    reason = problem(f"{{{{ item.input.change }}}} {{{{ {invented} }}}}")
    assert reason is not None and invented in reason
    assert "item.input.change" in reason  # what it may use


def test_a_variable_the_prompts_read_is_allowed_in_a_proposal() -> None:
    prompts = {**PROMPTS, "ctx": "{{ item.input.change }} ({{ item.input.context }})"}
    experiment = spec(prompts=prompts, parameters={"prompt": list(prompts)})
    assert problem("Context {{ item.input.context }}: {{ item.input.change }}", experiment) is None


@pytest.mark.parametrize(
    "leak",
    [
        "{{ item.input.change }} {{ item }}",
        "{{ item.input.change }} {% for key in item %}{{ item[key] }}{% endfor %}",
        "{{ item.input.change }} {{ item | tojson }}",
    ],
)
def test_a_template_cannot_read_the_reference_through_the_whole_item(leak: str) -> None:
    """The proposer must not make the model read the answer it is judged against."""
    reason = problem(leak)
    assert reason is not None


def test_a_loops_own_variables_are_always_allowed() -> None:
    text = (
        "{% for w in item.keywords %}{{ loop.index }}. {{ w }}{% endfor %} {{ item.input.change }}"
    )
    assert problem(text) is None


def test_a_syntax_error_is_rejected_as_one() -> None:
    reason = problem("{{ item.input.change ")
    assert reason is not None and "syntax" in reason


def test_an_empty_or_too_long_template_is_rejected() -> None:
    assert problem("  \n ") == "the template is empty"
    reason = problem("{{ item.input.change }}" + "x" * MAX_TEMPLATE_CHARS)
    assert reason is not None and f"at most {MAX_TEMPLATE_CHARS:,}" in reason


def test_the_same_text_as_a_known_prompt_is_rejected_naming_it() -> None:
    reason = problem("  " + PROMPTS["plain"] + "\n")
    assert reason == "the same text as prompt 'plain'"


@pytest.mark.parametrize(
    "template",
    [
        "{{ item.input.change }} {{ 1 / 0 }}",
        "{{ item.input.change }} {{ '{}{}'.format(1) }}",
        "{{ item.input.change | slice(0) | list }}",
        "{{ item.input.change }} {{ 'x' * 10 ** 9 }}",
    ],
)
def test_a_template_that_fails_to_render_is_rejected(template: str) -> None:
    reason = problem(template)
    assert reason is not None and reason.startswith("does not render for a training item")


@pytest.mark.parametrize(
    "template",
    [
        "{{ item.input.change | wordwrap(0) }}",
        "{{ item.input.change | truncate(-1) }}",
        "{{ item.input.change | filesizeformat }}",
        "{{ item.input.change | dictsort }}",
        "{{ item.input.change }} {{ '%q' % 1 }}",
    ],
)
def test_any_error_of_the_trial_render_is_a_reason_not_a_crash(template: str) -> None:
    """A proposer's template is untrusted text: whatever its render raises (ValueError,
    AssertionError, AttributeError...), the proposal is rejected; the sweep goes on."""
    reason = problem(template)
    assert reason is not None and reason.startswith("does not render for a training item")


@pytest.mark.parametrize(
    "escape",
    [
        "{{ item.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ item.input.change | attr('__class__') }}",
        "{{ (item.input.change ~ '').__class__.__base__.__subclasses__() }}",
        "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
        "{{ (item.input.change ~ '') | attr('__class__') | attr('__mro__') }}",
        "{{ item.input.change.__class__.__init__.__globals__['os'].system('touch MARKER') }}",
    ],
)
def test_a_sandbox_escape_is_rejected_and_runs_nothing(escape: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    reason = problem(f"{{{{ item.input.change }}}} {escape.replace('MARKER', str(marker))}")
    assert reason is not None
    assert reason.startswith("does not render for a training item") or (
        "which the experiment's prompts do not" in reason
    )
    assert not marker.exists()


def test_a_macro_the_template_defines_is_its_own_name() -> None:
    text = (
        "{% macro line(word) %}- {{ word }}{% endmacro %}"
        "{% for w in item.keywords %}{{ line(w) }}{% endfor %} {{ item.input.change }}"
    )
    assert problem(text) is None


def test_a_render_error_is_the_proposals_own_not_the_pipelines() -> None:
    reason = problem("{{ item.input.change }} {{ item.keywords[99] + 1 }}")
    assert reason is not None and reason.startswith("does not render for a training item")
    assert "_LazyPrompts" not in reason and "__proposal__" not in reason


def test_the_sandboxs_helpers_are_no_variables_and_stay_bounded() -> None:
    assert problem("{% for i in range(3) %}{{ i }}. {% endfor %}{{ item.input.change }}") is None
    reason = problem("{% for i in range(10**8) %}x{% endfor %}{{ item.input.change }}")
    assert reason is not None and reason.startswith("does not render for a training item")
