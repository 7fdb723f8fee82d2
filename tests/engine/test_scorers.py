"""Scorers as a user sees them: keyword fractions, format checks, and the registry."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import (
    FormatScorerSpec,
    KeywordScorerSpec,
)
from promptlooper_tui.domain.tokens import estimate_tokens
from promptlooper_tui.engine.scorers import (
    FormatScorer,
    KeywordScorer,
    ScoreContext,
    Scorer,
    ScorerError,
    build_scorer,
    register,
    registered_types,
)
from promptlooper_tui.engine.scorers import base as scorer_base


def context(item: dict[str, Any] | None = None) -> ScoreContext:
    return ScoreContext(item=item or {}, params={}, stage_outputs={})


async def keyword(output: str, item: dict[str, Any] | None = None, **spec: Any) -> float:
    scorer = build_scorer(KeywordScorerSpec(type="keyword", **spec))
    return await scorer.score(None, output, context(item))


async def fmt(output: str, **spec: Any) -> float:
    scorer = build_scorer(FormatScorerSpec.model_validate({"type": "format", **spec}))
    return await scorer.score(None, output, context())


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("   \n\t", 0), ("one", 2), ("one two three", 4), ("a b c d", 6)],
)
def test_estimate_tokens_is_four_thirds_of_words_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


# --- registry -------------------------------------------------------------------------------


def test_build_scorer_picks_the_class_by_type() -> None:
    assert isinstance(
        build_scorer(KeywordScorerSpec(type="keyword", required_absent=["x"])), KeywordScorer
    )
    scorer = build_scorer(FormatScorerSpec(type="format", format="json", weight=2.5))
    assert isinstance(scorer, FormatScorer)
    assert scorer.weight == 2.5
    assert not scorer.spends_tokens
    assert {"keyword", "format"} <= set(registered_types())


class FakeSpec:
    """The two fields a scorer spec must have for the registry."""

    def __init__(self, type: str) -> None:
        self.type = type
        self.weight = 1.0


def test_unregistered_type_is_a_key_error_naming_the_known_types() -> None:
    with pytest.raises(KeyError, match=r"'no_such_type'.*format.*keyword"):
        build_scorer(FakeSpec("no_such_type"))


async def test_a_later_scorer_registers_without_touching_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A private copy of the registry, so the test scorer does not outlive this test.
    monkeypatch.setattr(scorer_base, "_REGISTRY", dict(scorer_base._REGISTRY))

    @register
    class ConstantScorer(Scorer):
        type: ClassVar[str] = "test_constant"
        spends_tokens: ClassVar[bool] = True

        async def score(self, input: Any, output: str, context: ScoreContext) -> float:
            return 0.25

    scorer = build_scorer(FakeSpec("test_constant"))
    assert isinstance(scorer, ConstantScorer)
    assert scorer.spends_tokens
    assert await scorer.score(None, "x", context()) == 0.25
    assert "test_constant" in registered_types()
    with pytest.raises(ValueError, match="already registered"):
        register(type("Other", (ConstantScorer,), {}))


# --- keyword --------------------------------------------------------------------------------


async def test_keyword_score_is_the_fraction_of_checks_satisfied() -> None:
    spec = {"required_present": ["refund", "days", "receipt"], "required_absent": ["sorry"]}
    assert await keyword("Refunds take 5 days with a receipt.", **spec) == 1.0
    assert await keyword("Refunds take 5 days. Sorry!", **spec) == 0.5
    assert await keyword("Sorry, no.", **spec) == 0.0


async def test_keyword_case_sensitivity() -> None:
    assert await keyword("PARIS is the capital", required_present=["Paris"]) == 1.0
    assert (
        await keyword("PARIS is the capital", required_present=["Paris"], case_sensitive=True)
        == 0.0
    )
    assert await keyword("no Error here", required_absent=["error"], case_sensitive=True) == 1.0


async def test_keyword_terms_from_an_item_field() -> None:
    item = {"facts": ["Marie Curie", "1903", "physics"]}
    output = "Marie Curie shared the 1903 Nobel Prize."
    assert await keyword(output, item, required_present_from="facts") == pytest.approx(2 / 3)
    assert await keyword(output, {"facts": "nobel"}, required_present_from="facts") == 1.0
    # Spec terms and item terms count together.
    assert (
        await keyword(output, item, required_present=["Prize"], required_present_from="facts")
        == 0.75
    )


async def test_keyword_item_without_checks_scores_one() -> None:
    assert await keyword("anything", {"facts": []}, required_present_from="facts") == 1.0


async def test_keyword_missing_or_malformed_item_field_is_a_scorer_error() -> None:
    with pytest.raises(ScorerError, match="facts"):
        await keyword("x", {"other": 1}, required_present_from="facts")
    with pytest.raises(ScorerError, match="facts"):
        await keyword("x", {"facts": {"a": 1}}, required_present_from="facts")


# --- format: json ---------------------------------------------------------------------------

FENCED = 'Here is the result:\n```json\n{"name": "Ada", "age": 36}\n```\nHope it helps!'
PROSE = 'Sure! The answer is {"name": "Ada", "age": 36} as requested.'


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ('{"name": "Ada", "age": 36}', 1.0),
        ("  [1, 2, 3]\n", 1.0),
        (FENCED, 0.5),
        (PROSE, 0.5),
        ('See [1] for the source. Result: {"ok": true}', 0.5),
        ('Use {name} as a placeholder, then {"ok": true}', 0.5),
        ('{"name": "Ada", "age": }', 0.0),
        ("The name is Ada and she is 36.", 0.0),
    ],
)
async def test_json_format(output: str, score: float) -> None:
    assert await fmt(output, format="json") == score


# --- format: markdown -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ("# Summary\n\nThe study found three effects.", 1.0),
        ("Steps:\n- mix\n- bake", 1.0),
        ("1. First\n2. Second", 1.0),
        ("This is **important** to know.", 1.0),
        ("Call `run()` first.", 1.0),
        ("See [the docs](https://example.com).", 1.0),
        ("| a | b |\n|---|---|\n| 1 | 2 |", 1.0),
        ("Code:\n```python\nprint(1)\n```\nDone.", 1.0),
        ("Code:\n```python\nprint(1)\n", 0.5),
        ("The study found three effects. 3*4*5 is 60; my_var_name is fine.", 0.0),
        ("", 0.0),
    ],
)
async def test_markdown_format(output: str, score: float) -> None:
    assert await fmt(output, format="markdown") == score


# --- format: length -------------------------------------------------------------------------


def words(n: int) -> str:
    return " ".join(["word"] * n)


@pytest.mark.parametrize(
    ("n_words", "score"),
    [
        (30, 1.0),  # 40 tokens: inside [20, 40]
        (15, 1.0),  # 20 tokens: the lower bound itself
        (6, 8 / 20),  # 8 tokens: below min, n / min
        (45, 0.5),  # 60 tokens: 20 over a max of 40
        (60, 0.0),  # 80 tokens: twice the max
        (300, 0.0),
    ],
)
async def test_length_format(n_words: int, score: float) -> None:
    assert await fmt(
        words(n_words), format="length", min_tokens=20, max_tokens=40
    ) == pytest.approx(score)


async def test_length_with_one_bound() -> None:
    assert await fmt(words(300), format="length", min_tokens=10) == 1.0
    assert await fmt("", format="length", max_tokens=10) == 1.0


# --- format: structure ----------------------------------------------------------------------

PERSON = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string"},
    },
}  # checks = 2 required + 3 typed properties = 5


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ('{"name": "Ada", "age": 36}', 1.0),
        (FENCED, 1.0),
        (PROSE, 1.0),
        ('{"name": "Ada"}', 0.5 * (1 - 1 / 5)),  # one missing required property
        ('{"name": 7, "age": "old"}', 0.5 * (1 - 2 / 5)),  # two type errors
        ("[1, 2]", 0.5 * (1 - 1 / 5)),  # wrong top-level type: one error
        ("no json here", 0.0),
    ],
)
async def test_structure_format(output: str, score: float) -> None:
    assert await fmt(output, format="structure", schema=PERSON) == pytest.approx(score)


def test_invalid_schema_is_bad_input_at_build_time() -> None:
    with pytest.raises(BadInput, match="JSON Schema"):
        build_scorer(
            FormatScorerSpec.model_validate(
                {"type": "format", "format": "structure", "schema": {"type": "no-such-type"}}
            )
        )


async def test_structure_scoring_is_fast() -> None:
    scorer = build_scorer(
        FormatScorerSpec.model_validate({"type": "format", "format": "structure", "schema": PERSON})
    )
    ctx = context()
    start = time.perf_counter()
    for _ in range(2000):
        await scorer.score(None, PROSE, ctx)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("output", ["[a" * 10_000, "{a" * 10_000, "a_" * 10_000, "**a" * 7_000])
async def test_long_pathological_outputs_score_fast(output: str) -> None:
    start = time.perf_counter()
    for rule in ("json", "markdown", "structure"):
        await fmt(output, format=rule, schema=PERSON)
    assert time.perf_counter() - start < 0.5
