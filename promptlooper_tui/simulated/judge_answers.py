"""Answers to "rate this 1-10" prompts: a rating from the overlap of output and reference."""

from __future__ import annotations

import random
import re

from .prompt import LOWER_TOKEN_RE, STOPWORDS, Prompt

#: A prompt that asks for a rating on a 1-10 scale.
JUDGE_RE = re.compile(r"\b1\s*(?:-|\u2013|to)\s*10\b|\bout of 10\b", re.IGNORECASE)
#: ...and wants nothing but the number.
ONLY_NUMBER_RE = re.compile(r"\bonly (?:the|a|one) (?:number|integer|digit)\b", re.IGNORECASE)
_MARKER_RE = re.compile(
    r"\b(?:(?P<ref>reference|expected|gold|ideal|correct)(?:[ \t]+(?:answer|output|response))?"
    r"|(?P<out>(?:(?:model|candidate|student|assistant)[ \t]+)?(?:output|answer|response))"
    r"|(?P<other>question|input|prompt|context|criteria|task|rubric))[ \t]*:",
    re.IGNORECASE,
)
_JUDGE_SHAPES = (
    "Rating: {n}/10",
    "**{n}**",
    "I'd give this a {n} out of 10.",
    "Score: {n}\nReason: {reason}",
    "{n}",
)


def judge_rating(prompt: Prompt, quality: float, rng: random.Random) -> int:
    """1..10 from the word overlap (F1) of the marked output and reference, else seeded 4..8."""
    sections = _marked_sections(prompt.all_text)
    output, reference = sections.get("out"), sections.get("ref")
    reference_words = _bag(reference) if reference is not None else set()
    if output is None or not reference_words:
        return rng.randint(4, 8)
    output_words = _bag(output)
    shared = len(output_words & reference_words)
    if not shared:
        return 1
    precision, recall = shared / len(output_words), shared / len(reference_words)
    rating = 1 + round(9 * 2 * precision * recall / (precision + recall))
    # A weaker judge is a noisier judge.
    if rng.random() < (1.0 - quality) * 0.5:
        rating += rng.choice((-1, 1))
    return min(10, max(1, rating))


def _marked_sections(text: str) -> dict[str, str]:
    """Text after the last "Output:"/"Answer:" ("out") and "Reference:" ("ref") markers.

    A section runs to the next marker of any kind, so "Question:" etc. end it too.
    """
    matches = list(_MARKER_RE.finditer(text))
    sections: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        sections[match.lastgroup or "other"] = text[match.end() : end].strip()
    return sections


def _bag(text: str) -> set[str]:
    """Lowercase content tokens for overlap: numbers and 3+ letter non-stopwords."""
    return {
        token
        for token in LOWER_TOKEN_RE.findall(text.lower())
        if token.isdigit() or (len(token) >= 3 and token not in STOPWORDS)
    }


def judge_reason(rating: int) -> str:
    """The one-line reason a judge gives with `rating`."""
    if rating >= 8:
        return "The output closely matches what was asked."
    if rating >= 5:
        return "The output is partly correct but misses some details."
    return "The output differs substantially from what was expected."


def judge_answer(prompt: Prompt, quality: float, rng: random.Random) -> str:
    """A judge's free-form reply: the rating in one of the shapes real judges write it in."""
    rating = judge_rating(prompt, quality, rng)
    return rng.choice(_JUDGE_SHAPES).format(n=rating, reason=judge_reason(rating))
