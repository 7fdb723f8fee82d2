"""Plain prose answers that mention more of the question's keywords the better the model."""

from __future__ import annotations

import random
import re

from .prompt import Prompt, keywords

_LENGTH_RULES = (
    (re.compile(r"\b(?:one|1|single)[ -]sentence\b"), 1),
    (re.compile(r"\b(?:two|2) sentences\b|\bbrief(?:ly)?\b|\bconcise(?:ly)?\b|\bshort\b"), 2),
    (re.compile(r"\b(?:three|3) sentences\b"), 3),
    (re.compile(r"\bdetailed\b|\bin detail\b|\bstep[- ]by[- ]step\b|\bthorough(?:ly)?\b"), 6),
)
_DEFAULT_SENTENCES = 4
_STEPS_RE = re.compile(r"\bstep[- ]by[- ]step\b")
_SLOT_TEMPLATES = (
    "To do this, open {x} and follow the prompts.",
    "The key point is {x}.",
    "Start with {x} and check the result.",
    "In short, it comes down to {x}.",
    "Make sure to review {x} first.",
    "This usually involves {x}.",
    "Most people find that {x} is what matters most.",
    "It also helps to think about {x}.",
)
_FILLERS = (
    "This is a common question.",
    "The details can vary with your setup.",
    "It is usually straightforward once you know where to look.",
    "Let me know if you need more help.",
    "Results may differ slightly between versions.",
    "A quick test will confirm it works.",
)
_KEYWORDS_PER_SENTENCE = 3
_AI_DISCLAIMER = "As an AI language model,"


def ordinary_answer(
    prompt: Prompt,
    quality: float,
    rng: random.Random,
    sentences: int | None = None,
    *,
    no_disclaimer: bool = False,
) -> str:
    """Template sentences mentioning each keyword of the question with probability `quality`;
    a weak model starts some with a disclaimer, unless `no_disclaimer` (the prompt forbade it)."""
    count = sentences or _sentence_budget(prompt.lower)
    limit = count * _KEYWORDS_PER_SENTENCE
    chosen: list[str] = []
    for word in _subject_first(keywords(prompt.last_user), prompt.last_user):
        if rng.random() < quality:
            chosen.append(word)
            if len(chosen) == limit:
                break
    lines = _sentences(chosen, count, rng)
    steps = sentences is None and _STEPS_RE.search(prompt.lower) is not None
    text = (
        "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)) if steps else " ".join(lines)
    )
    # Drawn even when forbidden, so every draw after it falls the same either way.
    disclaims = rng.random() < (1.0 - quality) * 0.3
    if disclaims and not no_disclaimer:
        return f"{_AI_DISCLAIMER} here is my answer.\n{text}"
    return text


def _subject_first(words: list[str], text: str) -> list[str]:
    """`words` with those after the message's last colon first: prompts put the instruction
    first and the subject after it ("Question: ...", "Change: ..."), and an answer is about
    the subject."""
    _, colon, subject = text.rpartition(":")
    if not colon:
        return words
    wanted = {word.lower() for word in keywords(subject)}
    return sorted(words, key=lambda word: word.lower() not in wanted)


def _sentence_budget(lower: str) -> int:
    for pattern, sentences in _LENGTH_RULES:
        if pattern.search(lower):
            return sentences
    return _DEFAULT_SENTENCES


def _sentences(words: list[str], count: int, rng: random.Random) -> list[str]:
    groups = _split_even(words, count)
    templates = rng.sample(_SLOT_TEMPLATES, len(groups))
    lines = [
        template.format(x=_join_words(group))
        for template, group in zip(templates, groups, strict=True)
    ]
    return lines + rng.sample(_FILLERS, count - len(groups))


def _split_even(items: list[str], parts: int) -> list[list[str]]:
    """`items` in order, cut into min(parts, len(items)) groups whose sizes differ by <= 1."""
    groups = min(parts, len(items))
    if not groups:
        return []
    size, extra = divmod(len(items), groups)
    out, start = [], 0
    for index in range(groups):
        end = start + size + (1 if index < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
