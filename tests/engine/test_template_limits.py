"""Template work is bounded (DESIGN §9): every bomb stops quickly with a message naming the
limit, normal templates render exactly as plain Jinja renders them, and each limit is exact."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptlooper_tui.domain.errors import BadInput, TemplateLimitExceeded
from promptlooper_tui.domain.experiment import ExperimentSpec, LlmJudgeScorerSpec
from promptlooper_tui.engine.scorers import LlmJudgeScorer, ScoreContext, ScorerError, build_scorer
from promptlooper_tui.engine.template_budget import (
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    TemplateLimits,
)
from promptlooper_tui.engine.templates import PipelineTemplates, compile_template

# Generous: the machine is shared; a bomb that is not stopped runs for hours or kills it.
QUICK = 10.0

DOUBLING = "".join(
    f"{{% set l{n + 1} = [l{n}, l{n}] %}}" for n in range(30)
)  # 2**30 references to one list: tiny in memory, a gigabyte as text

BOMBS = [
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "template work limit: more than 100,000 loop iterations",
    ),
    ("{{ 'x' * 10**10 }}", "template value too large: '\\*' result over 1,000,000"),
    # Jinja's ** groups to the left: this is ((10**10)**10)**10)**10, 10**10000.
    ("{{ 10 ** 10 ** 10 ** 10 ** 10 }}", "template exponent too large: .* over 4,300 digits"),
    ("{{ 10 ** (10 ** 10) }}", "template exponent too large"),
    ("{{ [1] * 10**9 }}", "template value too large: '\\*' result over 1,000,000"),
    ("{{ ([1] * 1000000) + [2] }}", "template value too large: '\\+' result"),
    ("{{ 'x'|center(10**10) }}", "center\\(\\) width 10,000,000,000 is over 1,000,000"),
    ("{{ 'x'|center(10000000000) }}", "center\\(\\) width"),
    ("{{ 'x'.ljust(10**9) }}", "ljust\\(\\) width"),
    ("{{ '7'.zfill(10**9) }}", "zfill\\(\\) width"),
    ("{{ 'x'|indent(10**9) }}", "indent\\(\\) width"),
    ("{{ ('\\n' * 900000)|indent(100, blank=True) }}", "indent\\(\\) result"),
    ("{{ 'x y'|wordwrap(10**9) }}", "wordwrap\\(\\) width"),
    ("{{ ('a ' * 400000)|wordwrap(1, wrapstring='-' * 100) }}", "wordwrap\\(\\) result"),
    ("{{ 'x'|truncate(10**9) }}", "truncate\\(\\) length"),
    ("{{ [1]|batch(10**9, 0)|list }}", "batch\\(\\) line count"),
    ("{{ [1]|slice(10**9)|list }}", "slice\\(\\) count"),
    (
        "{{ 'ab'.replace('a', 'a' * 100000).replace('a', 'a' * 100000) }}",
        "template value too large: replace\\(\\) result",
    ),
    ("{{ ('a' * 1000)|replace('a', 'b' * 10000) }}", "replace\\(\\) result"),
    ("{{ '%*s' % (10**9, '') }}", "'%' width or precision 1,000,000,000 is over 1,000,000"),
    ("{{ '%999999999s' % '' }}", "'%' width or precision"),
    ("{{ '%.999999999f' % 1.5 }}", "'%' width or precision"),
    ("{{ '%s' * 1000 % (('x' * 100000,) * 1000) }}", "'%' result"),
    ("{{ '%*s'|format(10**9, '') }}", "'%' width or precision"),
    ("{{ '{:>999999999}'.format(1) }}", "format\\(\\) width or precision 999,999,999"),
    ("{{ '{:{}}'.format(1, 10**9) }}", "format\\(\\) width or precision"),
    ("{{ '{:.999999999f}'.format(1.5) }}", "format\\(\\) width or precision"),
    ("{{ ('{0}' * 1000).format('x' * 100000) }}", "format\\(\\) result"),
    ("{{ ('{x}' * 1000).format_map({'x': 'x' * 100000}) }}", "format\\(\\) result"),
    ("{{ ('x' * 1000000).join('y' * 1000000) }}", "join\\(\\) result"),
    ("{{ range(100000)|join('x' * 1000) }}", "join\\(\\) result"),
    ("{{ ([{'a': 'x' * 100000}] * 100)|join(attribute='a') }}", "join\\(\\) result"),
    ("{{ ('\\t' * 1000000).expandtabs(1000) }}", "expandtabs\\(\\) result"),
    ("{{ ('a' * 1000).translate({97: 'b' * 100000}) }}", "translate\\(\\) result"),
    ("{{ lipsum(100000) }}", "lipsum\\(\\) result"),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "template value too large: '~' result",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}{% endfor %}",
        "template work limit: more than 50,000,000 characters built",
    ),
    (
        "{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}"
        "{{ twice(twice(twice(twice(twice(twice('x' * 100000)))))) }}",
        "macro result over 1,000,000",
    ),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ l30 }}", "printed value over 1,000,000"),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ l30|string }}", "filtered value over 1,000,000"),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ l30|tojson }}", "tojson\\(\\) result"),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ 'a' ~ l30 }}", "'~' operand over 1,000,000"),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ '%s' % (l30,) }}", "'%' argument"),
    ("{% set l0 = ['x'] %}" + DOUBLING + "{{ '{}'.format(l30) }}", "format\\(\\) argument"),
    (
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
        "template recursion too deep: more than 100 nested macro calls",
    ),
    (
        "{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}",
        "template recursion too deep: more than 100 nested macro calls",
    ),
    (
        "{% for x in range(100000) if x == 99999 recursive %}{{ loop(range(100000)) }}{% endfor %}",
        "more than 100,000 loop iterations",
    ),
    ("{% set x = 10**4000 %}{{ x * x }}", "template number too large: .* over 4,300 digits"),
    ("{{ range(100001)|list|length }}", "template work limit: range\\(\\) of more than 100,000"),
    ("{{ range(10**30)|length }}", "range\\(\\) of more than 100,000"),
    (
        "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
        "template output larger than 2,000,000 characters",
    ),
    (
        "{% for i in range(100000) %}" + "-" * 100 + "{% endfor %}",
        "template output larger than 2,000,000 characters",
    ),
    (
        "{% set ns = namespace(parts=[]) %}{% for i in range(100000) %}"
        "{% set ns.parts = ns.parts + ['x' * 1000] %}{% endfor %}",
        "template work limit",
    ),
]


@pytest.mark.parametrize(("source", "message"), BOMBS, ids=[m for _, m in BOMBS])
def test_every_bomb_stops_quickly_with_a_message_naming_the_limit(
    source: str, message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateLimitExceeded, match=message):
        compile_template(source).render()
    assert time.monotonic() - started < QUICK


def test_the_limit_error_is_bad_input() -> None:
    assert issubclass(TemplateLimitExceeded, BadInput)


# --- normal templates are unaffected --------------------------------------------------------

PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
CONTEXT: dict[str, Any] = {
    "params": {"prompt": "concise", "temperature": 0.4},
    "item": {
        "input": {"question": "How do I reset my password?"},
        "reference": "Open Settings, then Security.",
        "keywords": ["Settings", "Security"],
        "turns": [{"role": "user", "text": "hi"}, {"role": "agent", "text": "hello"}],
        "tree": [{"name": "a", "children": [{"name": "b", "children": []}]}],
    },
}
NORMAL = [
    "Answer in two sentences: {{ item.input.question }}",
    "Keywords: {{ item.keywords|join(', ') }} / {{ item.keywords|join(', ')|upper }}",
    "{{ item|tojson }} {{ item.keywords|tojson(indent=2) }}",
    "{% for turn in item.turns %}{{ loop.index }}/{{ loop.length }} {{ turn.role|title }}: "
    "{{ turn.text }}{% if not loop.last %}\n{% endif %}{% endfor %}",
    "{% for k in item.keywords if k.startswith('S') %}{{ k|lower }}{% else %}none{% endfor %}",
    "{% for node in item.tree recursive %}{{ node.name }}({{ loop(node.children) }}){% endfor %}",
    "{% macro quote(s, by='') %}> {{ s }}{{ ' -- ' ~ by if by }}{% endmacro %}"
    "{{ quote(item.reference) }}\n{{ quote('x', by='me') }}",
    "{% set header %}Q: {{ item.input.question }}{% endset %}{{ header|center(40) }}|",
    "{% filter upper %}{{ item.reference }}{% endfilter %}",
    "{{ '%s is %.2f' % ('t', params.temperature) }} {{ '{:>8}|{}'.format('a', 3) }}",
    "{{ 'x' * 3 }} {{ [1, 2] + [3] }} {{ 2 ** 10 }} {{ 10 ** 50 }} {{ 7 % 3 }} {{ 'a' ~ 1 ~ [2] }}",
    "{{ item.reference|replace('Settings', 'Preferences')|wordwrap(12)|indent(2) }}",
    "{{ item.reference|truncate(12, leeway=0) }} {{ '%-6s|'|format('ab') }}",
    "{% for i in range(3) %}{% for j in range(2) %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
    "{{ range(5)|batch(2)|list }} {{ range(5)|slice(2)|list }} {{ range(4)|sum }}",
    "{{ ', '.join(item.keywords) }} {{ 'a-b'.replace('-', '+') }} {{ 'ab'.center(6, '*') }}",
    "{{ item.turns|map(attribute='text')|join('; ') }}"
    " {{ item.turns|join(',', attribute='role') }}",
    "{% set ns = namespace(n=0) %}{% for t in item.turns %}{% set ns.n = ns.n + 1 %}"
    "{% endfor %}{{ ns.n }}",
    "{{ item.input }} {{ item.keywords }} {{ params }}",
]


@pytest.mark.parametrize("source", NORMAL)
def test_normal_templates_render_as_plain_jinja_does(source: str) -> None:
    assert compile_template(source).render(CONTEXT) == PLAIN.from_string(source).render(CONTEXT)


def spec(**fields: Any) -> ExperimentSpec:
    document = {
        "name": "limits",
        "endpoint": "local",
        "parameters": {"model": ["m"], "prompt": ["concise", "friendly"]},
        "prompts": {
            "concise": "Answer in two sentences: {{ item.input.question }}",
            "friendly": "Answer warmly: {{ item.input.question }}",
        },
        "pipeline": [
            {
                "name": "draft",
                "system": "You are a support agent.",
                "user": "{{ prompts[params.prompt] }}",
            },
            {"name": "polish", "user": "Polish this reply: {{ stages.draft.output }}"},
        ],
        "dataset": [{"input": {"question": "How do I reset my password?"}}],
        "scorers": [{"type": "keyword", "required_present": ["a"]}],
        **fields,
    }
    return ExperimentSpec.model_validate(document)


def test_pipeline_stages_render_prompts_and_earlier_outputs() -> None:
    templates = PipelineTemplates(spec())
    item = {"input": {"question": "Why?"}}
    params = {"model": "m", "prompt": "friendly"}
    assert templates.render_stage(0, params, item, {}) == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Answer warmly: Why?"},
    ]
    assert templates.render_stage(1, params, item, {"draft": "Because."}) == [
        {"role": "user", "content": "Polish this reply: Because."}
    ]


def test_a_prompt_rendered_inside_a_stage_shares_its_loop_budget() -> None:
    loop = "{% for i in range(60000) %}{% endfor %}"
    templates = PipelineTemplates(
        spec(
            prompts={"concise": loop + "p", "friendly": "f"},
            pipeline=[{"name": "draft", "user": loop + "{{ prompts[params.prompt] }}"}],
        )
    )
    with pytest.raises(TemplateLimitExceeded, match="more than 100,000 loop iterations"):
        templates.render_stage(0, {"prompt": "concise"}, {}, {})
    assert templates.render_stage(0, {"prompt": "friendly"}, {}, {}) == [
        {"role": "user", "content": "f"}
    ]


# --- each limit is exact --------------------------------------------------------------------


def test_loops_may_iterate_exactly_up_to_the_limit() -> None:
    exactly = "{% for i in range(50000) %}{% endfor %}{% for i in range(50000) %}{% endfor %}ok"
    assert compile_template(exactly).render() == "ok"
    assert MAX_LOOP_ITERATIONS == 100_000
    one_more = exactly + "{% for i in [1] %}{% endfor %}"
    with pytest.raises(TemplateLimitExceeded, match="more than 100,000 loop iterations"):
        compile_template(one_more).render()


def test_limits_can_be_set_per_template_and_each_render_starts_afresh() -> None:
    limits = TemplateLimits(loop_iterations=10)
    ten = compile_template("{% for i in range(10) %}{{ i }}{% endfor %}", limits)
    assert ten.render() == "0123456789"
    assert ten.render() == "0123456789"
    with pytest.raises(TemplateLimitExceeded, match="more than 10 loop iterations"):
        compile_template("{% for i in range(11) %}{% endfor %}", limits).render()


def test_output_may_reach_exactly_the_limit() -> None:
    limits = TemplateLimits(output_chars=10)
    assert compile_template("{{ 'x' * 10 }}", limits).render() == "x" * 10
    with pytest.raises(TemplateLimitExceeded, match="template output larger than 10 characters"):
        compile_template("{{ 'x' * 10 }}y", limits).render()
    source = "{% for i in range(20000) %}" + "x" * 100 + "{% endfor %}"
    assert len(compile_template(source).render()) == MAX_OUTPUT_CHARS
    with pytest.raises(TemplateLimitExceeded, match="larger than 2,000,000 characters"):
        compile_template(source + "!").render()


def test_values_may_reach_exactly_the_size_limit() -> None:
    assert len(compile_template("{{ 'x' * 1000000 }}").render()) == 1_000_000
    assert len(compile_template("{{ 'x'|center(1000000) }}").render()) == 1_000_000
    with pytest.raises(TemplateLimitExceeded, match="'\\*' result over 1,000,000"):
        compile_template("{{ 'x' * 1000001 }}").render()


def test_macros_may_nest_exactly_up_to_the_depth_limit() -> None:
    source = "{% macro m(n) %}{% if n > 1 %}{{ m(n - 1) }}{% else %}deep{% endif %}{% endmacro %}"
    assert compile_template(source + "{{ m(100) }}").render() == "deep"
    with pytest.raises(TemplateLimitExceeded, match="more than 100 nested macro calls"):
        compile_template(source + "{{ m(101) }}").render()


def test_python_recursion_errors_become_the_limit_error() -> None:
    limits = TemplateLimits(macro_depth=1_000_000)
    source = "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}"
    with pytest.raises(TemplateLimitExceeded, match="template recursion too deep"):
        compile_template(source, limits).render()


def test_a_render_stops_at_its_deadline() -> None:
    limits = TemplateLimits(seconds=0.05)
    slow = "{% for i in range(100000) %}{{ range(2000)|list|sort|first }}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateLimitExceeded, match=r"rendering took longer than 0\.05 s"):
        compile_template(slow, limits).render()
    assert time.monotonic() - started < QUICK


def test_integers_may_have_up_to_the_digit_limit() -> None:
    assert compile_template("{{ 10 ** 4000 }}").render() == "1" + "0" * 4000
    with pytest.raises(TemplateLimitExceeded, match="template exponent too large"):
        compile_template("{{ 10 ** 5000 }}").render()


# --- the judge's prompt ---------------------------------------------------------------------


async def test_a_judge_prompt_past_a_limit_is_a_scorer_error() -> None:
    fields = {"type": "llm_judge", "model": "judge", "prompt": "{{ output * 10**9 }}"}
    scorer = build_scorer(LlmJudgeScorerSpec.model_validate(fields))
    assert isinstance(scorer, LlmJudgeScorer)
    context = ScoreContext(item={}, params={}, stage_outputs={}, llm=None)
    with pytest.raises(ScorerError, match="judge prompt: template error: template value too"):
        scorer.render("out", context)
