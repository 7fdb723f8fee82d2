"""Prompt craft: instructions whose wording makes the simulated model answer better or worse.

A few cues, like real prompt advice: asking for the exact names from the input makes an answer
mention more of its keywords, inviting creativity makes it drift. None of the phrases occurs in
the repository's own prompts, so their answers are the same as before the cues existed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .prompt import model_quality

#: The lowest and highest chance of mentioning a keyword that any prompt can reach.
MIN_QUALITY = 0.05
MAX_QUALITY = 0.97


@dataclass(frozen=True)
class Cue:
    """One wording and its effect; `instruction` is a sentence that triggers it, which the
    simulated proposer adds to a template, `rationale` how a proposer would argue for it."""

    pattern: re.Pattern[str]
    bonus: float  # added to the chance of mentioning each keyword
    instruction: str
    rationale: str
    fixes: str = ""  # the failure it cures: "missing" keywords or a "disclaimer"
    no_disclaimer: bool = False


HELPFUL_CUES = (
    Cue(
        re.compile(r"\buse the exact (?:names|terms)\b"),
        0.10,
        "Use the exact names from the text.",
        "Asks for the exact names, which the low-scored answers missed.",
        fixes="missing",
    ),
    Cue(
        re.compile(r"\bmention every key term\b|\ball key terms\b"),
        0.08,
        "Mention every key term.",
        "Asks for every key term, so fewer of them go missing.",
        fixes="missing",
    ),
    Cue(
        re.compile(r"\bbe specific\b"),
        0.04,
        "Be specific.",
        "Asks for specifics instead of generic filler.",
    ),
    Cue(
        re.compile(r"\bcheck each fact\b|\bdouble-check\b"),
        0.03,
        "Check each fact against the text.",
        "Asks the model to check its facts against the input.",
    ),
    Cue(
        re.compile(r"\bwithout (?:a |any )?disclaimers?\b|\bno disclaimers?\b"),
        0.0,
        "Answer without a disclaimer.",
        "Forbids the 'As an AI' disclaimer that some low-scored answers start with.",
        fixes="disclaimer",
        no_disclaimer=True,
    ),
)
HARMFUL_CUES = (
    Cue(
        re.compile(r"\bbe creative\b"),
        -0.12,
        "Be creative.",
        "Invites a livelier answer that may read better.",
    ),
    Cue(
        re.compile(r"\bparaphrase\b|\bin your own words\b"),
        -0.08,
        "Put it in your own words.",
        "Asks for a fresh wording rather than a copy of the input.",
    ),
)
CUES = HELPFUL_CUES + HARMFUL_CUES


@dataclass(frozen=True)
class Craft:
    """What the cues of a request's text do to its answer."""

    bonus: float = 0.0  # the sum of the matched cues' bonuses
    no_disclaimer: bool = False  # the "As an AI language model," prefix never appears


NO_CRAFT = Craft()


def craft(lower_text: str) -> Craft:
    """The combined effect of the cues in `lower_text` (all of a request's messages, lowercased)."""
    matched = [cue for cue in CUES if cue.pattern.search(lower_text)]
    if not matched:
        return NO_CRAFT
    return Craft(
        bonus=sum(cue.bonus for cue in matched),
        no_disclaimer=any(cue.no_disclaimer for cue in matched),
    )


def clamp_quality(quality: float) -> float:
    """`quality` within [MIN_QUALITY, MAX_QUALITY]; no model's own quality reaches the top, so
    only a helpful cue can."""
    return min(MAX_QUALITY, max(MIN_QUALITY, quality))


def prompt_quality(prompt_text: str, model: str) -> float:
    """The true quality of a prompt on the simulated endpoint at temperature 0: the chance that
    `model` mentions each keyword of the question when sent `prompt_text` (all the request's
    messages). Answers are random draws around it, so a benchmark compares the prompts an
    optimiser found by this number to tell a real gain from a lucky sample."""
    return clamp_quality(model_quality(model) + craft(prompt_text.lower()).bonus)
