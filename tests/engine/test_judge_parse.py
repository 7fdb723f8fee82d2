"""Reading a judge's 1-10 rating out of the answers real models give."""

from __future__ import annotations

import time

import pytest

from promptlooper_tui.engine.scorers import parse_rating

ANSWERS: list[tuple[str, float | None]] = [
    # The shapes the simulated endpoint gives (and real judges use).
    ("Rating: 7/10", 7),
    ("**8**", 8),
    ("I'd give this a 7 out of 10.", 7),
    ("Score: 7\nReason: The output is partly correct but misses some details.", 7),
    ("7", 7),
    ("  9\n", 9),
    # Decimals, brackets, markup, JSON.
    ("7.5/10", 7.5),
    ("Rating: 8.5", 8.5),
    ("Rating: [[6]]", 6),
    ("My final verdict: [[3]]", 3),
    ("**Score:** 8", 8),
    ("Overall rating: **8/10**", 8),
    ('{"score": 8, "reason": "Covers both steps."}', 8),
    ('```json\n{"rating": 6, "explanation": "ok"}\n```', 6),
    ('Here is my evaluation: {"overall_score": "9/10"}', 9),
    # Prose.
    ("8/10 - good", 8),
    ("The answer deserves a 9.", 9),
    ("I would rate it as 6 because it skips a step.", 6),
    ("On a scale of 1 to 10, I'd rate this response 8.", 8),
    ("Rating (1-10): 7", 7),
    ("The score is 8.", 8),
    ("Score = 9", 9),
    ("Rating - 4", 4),
    ("Score: 7 out of 10", 7),
    ("I give it 10/10, flawless.", 10),
    ("rating: 1", 1),
    # An explicit rating beats stray numbers (step numbers, counts, the scale).
    ("Step 1: compare the facts.\nStep 2: check the tone.\nRating: 4", 4),
    ("Score: 7\nReason: it matched 9 of 10 facts.", 7),
    ("Rating: 6\n\nExplanation: The output mentions 2 of the 3 facts.", 6),
    ("Rating: 7/10. A perfect 10/10 answer would also cite the manual.", 7),
    ("Clarity score: 5. Accuracy is fine. Final score: 8", 8),
    ("Using a score of 1-10, I'd rate it a 7.", 7),
    # Out of range, another scale, or no rating at all: None, never clamped.
    ("Rating: 15", None),
    ("Score: 0", None),
    ("Rating: -1", None),
    ("11/10", None),
    ("Rating: 3/5", None),
    ('{"score": 42}', None),
    ('{"score": true}', None),
    ("The answer is good.", None),
    ("", None),
    ("It mentions 3 of the 5 steps.", None),
]


@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
def test_parse_rating(answer: str, expected: float | None) -> None:
    assert parse_rating(answer) == expected


@pytest.mark.parametrize(
    "answer",
    ["score" + " " * 20_000 + "x", "Score: " * 5_000, "1" * 20_000, "[[" * 10_000, "{" * 5_000],
)
def test_parse_rating_stays_fast_on_pathological_answers(answer: str) -> None:
    started = time.perf_counter()
    parse_rating(answer)
    assert time.perf_counter() - started < 0.5
