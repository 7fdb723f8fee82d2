"""The simulated proposer: rewrites of the templates shown, better with a larger model."""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2
import pytest

from promptlooper_tui.simulated.craft import craft
from promptlooper_tui.simulated.replies import simulate_chat

TEMPLATES = {
    "plain": "Summarise this change for release notes in one sentence: {{ item.input.change }}",
    "keyworded": (
        "Summarise this change in one sentence for release notes. Keep the product names.\n"
        "Change: {{ item.input.change }}"
    ),
    "area": "For the {{ item.input.area }} team, summarise: {{ item.input.change }}",
    "fourth": "Describe this change: {{ item.input.change }}",
}
MISSING = (
    '<failure template="plain" item="12" score="0.333">\n<output>\n'
    "Start with exports and check the result.\n</output>\n"
    '<scorers>keyword: 0.5 {"missing": ["Billing", "CSV"]}; format:length: 1.0</scorers>\n'
    "</failure>"
)
#: As the engine writes it: the scores alone.
LOW_KEYWORD_SCORE = MISSING.replace(
    ' {"missing": ["Billing", "CSV"]}; format:length: 1.0', "; tone: 1.00"
)
DISCLAIMER = (
    '<failure template="keyworded" item="3" score="0.2">\n<output>\n'
    "As an AI language model, here is my answer.\nThe key point is Importer.\n</output>\n"
    "<scorers>tone: 0.20; format:length: 1.00</scorers>\n</failure>"
)
EXPRESSION_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def block(name: str, text: str, score: float = 0.5) -> str:
    """A template block as the engine writes it, the name quoted as an attribute."""
    quoted = name.replace("&", "&amp;").replace('"', "&quot;")
    return f'<template name="{quoted}" score="{score:.3f}" items="30">\n{text}\n</template>'


def meta_prompt(
    count: int, templates: dict[str, str] | None = None, failures: str = MISSING
) -> str:
    shown = TEMPLATES if templates is None else templates
    blocks = "\n".join(
        block(name, text, 0.8 - 0.1 * rank) for rank, (name, text) in enumerate(shown.items())
    )
    return (
        "You improve prompt templates for a language model.\n"
        f"The best templates so far, best first:\n{blocks}\n"
        f"The lowest-scored items:\n{failures}\n"
        f"Write {count} new prompt templates that would score higher. Answer with JSON only: "
        '{"proposals": [{"template": "...", "parent": "NAME", "rationale": "..."}]}'
    )


def propose(prompt: str, model: str = "medium-model", **params: Any) -> list[dict[str, str]]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], **params}
    answer = json.loads(simulate_chat(body).text)
    assert list(answer) == ["proposals"]
    proposals: list[dict[str, str]] = answer["proposals"]
    return proposals


def broken(template: str, parent: str) -> bool:
    """A syntax error, or a variable its parent does not read."""
    try:
        jinja2.Environment().parse(template)
    except jinja2.TemplateSyntaxError:
        return True
    return set(re.findall(r"item\.input\.\w+", template)) != set(
        re.findall(r"item\.input\.\w+", parent)
    )


def test_n_proposals_that_rewrite_shown_parents_keeping_variables_and_subject() -> None:
    proposals = propose(meta_prompt(6))
    assert len(proposals) == 6
    for proposal in proposals:
        assert set(proposal) == {"template", "parent", "rationale"}
        parent = TEMPLATES[proposal["parent"]]
        template = proposal["template"]
        assert template.strip() not in {text.strip() for text in TEMPLATES.values()}
        assert proposal["rationale"].endswith(".") and "\n" not in proposal["rationale"]
        # The simulated answers read the subject after the last colon: it stays last.
        assert template.rpartition(":")[2] == parent.rpartition(":")[2]
        if not broken(template, parent):
            assert set(EXPRESSION_RE.findall(parent)) <= set(EXPRESSION_RE.findall(template))


def test_the_best_template_is_the_parent_most_often_and_only_the_top_three_are() -> None:
    parents = [
        proposal["parent"] for seed in range(100) for proposal in propose(meta_prompt(4), seed=seed)
    ]
    counts = {name: parents.count(name) for name in TEMPLATES}
    assert counts["plain"] > counts["keyworded"] > counts["area"] > 0
    assert counts["fourth"] == 0


def test_deterministic_for_a_body_and_different_for_another_seed() -> None:
    prompt = meta_prompt(5)
    assert propose(prompt, temperature=0.7, seed=1) == propose(prompt, temperature=0.7, seed=1)
    assert propose(prompt, temperature=0.7, seed=1) != propose(prompt, temperature=0.7, seed=2)
    assert propose(prompt, temperature=0.7) != propose(prompt, temperature=0.3)


def edit_rates(model: str) -> tuple[float, float, float]:
    """Over 200 requests of 4 proposals: the share of helpful edits (a higher craft bonus, a
    new disclaimer ban, or two sentences instead of one), of broken ones, and the mean bonus
    gained."""
    helpful = broken_count = total = 0
    gained = 0.0
    for seed in range(200):
        for proposal in propose(meta_prompt(4), model, temperature=0.7, seed=seed):
            total += 1
            parent = TEMPLATES[proposal["parent"]]
            if broken(proposal["template"], parent):
                broken_count += 1
                continue
            new, old = craft(proposal["template"].lower()), craft(parent.lower())
            gained += new.bonus - old.bonus
            # A cue, a disclaimer ban, or room for a second sentence (the keywords' cure).
            roomier = "two sentences" in proposal["template"] and "two sentences" not in parent
            helpful += (
                new.bonus > old.bonus or (new.no_disclaimer and not old.no_disclaimer) or roomier
            )
    return helpful / total, broken_count / total, gained / total


def test_a_larger_proposer_makes_more_helpful_edits_and_fewer_broken_ones() -> None:
    tiny_helpful, tiny_broken, tiny_gain = edit_rates("tiny-model")
    large_helpful, large_broken, large_gain = edit_rates("large-model")
    assert large_helpful > tiny_helpful + 0.25, (tiny_helpful, large_helpful)
    assert large_gain > tiny_gain + 0.02, (tiny_gain, large_gain)
    assert tiny_broken > 0.08, tiny_broken
    assert large_broken < 0.06, large_broken
    assert tiny_broken > 2 * large_broken


@pytest.mark.parametrize("missing", [MISSING, LOW_KEYWORD_SCORE])
def test_the_failures_shown_steer_the_helpful_edits(missing: str) -> None:
    def added(failures: str) -> list[str]:
        edits = []
        for seed in range(50):
            for proposal in propose(meta_prompt(4, failures=failures), "large-model", seed=seed):
                parent = TEMPLATES[proposal["parent"]]
                edits.append(proposal["template"].removesuffix(parent))
        return edits

    for_missing, for_disclaimer = added(missing), added(DISCLAIMER)
    names_for_missing = sum("exact names" in edit or "key term" in edit for edit in for_missing)
    names_for_disclaimer = sum(
        "exact names" in edit or "key term" in edit for edit in for_disclaimer
    )
    bans_for_missing = sum("disclaimer" in edit for edit in for_missing)
    bans_for_disclaimer = sum("disclaimer" in edit for edit in for_disclaimer)
    assert names_for_missing > 2 * names_for_disclaimer
    assert bans_for_disclaimer > 2 * bans_for_missing


def test_no_proposal_repeats_a_shown_template_or_another_proposal() -> None:
    """Shown the parent and its earlier rewrites, the proposer still writes new ones."""
    one = {"plain": TEMPLATES["plain"]}
    first = propose(meta_prompt(20, one), "large-model")
    shown = {"plain": TEMPLATES["plain"]} | {
        f"gen1-{index}": proposal["template"] for index, proposal in enumerate(first)
    }
    again = propose(meta_prompt(20, shown), "large-model")
    texts = [proposal["template"].strip() for proposal in again]
    assert len(set(texts)) == 20
    assert not set(texts) & {text.strip() for text in shown.values()}


@pytest.mark.parametrize(
    "prompt",
    [
        "Write 4 new prompt templates. Answer with JSON only.",
        meta_prompt(4, {}),
        meta_prompt(4, {"empty": "   "}),
    ],
)
def test_no_readable_template_no_proposals(prompt: str) -> None:
    body = {"model": "large-model", "messages": [{"role": "user", "content": prompt}]}
    assert simulate_chat(body).text == '{"proposals": []}'


def test_the_proposer_answers_before_the_json_and_judge_answers() -> None:
    prompt = meta_prompt(3) + "\nRate each idea 1-10 internally; fields: template, parent"
    body = {
        "model": "small-model",
        "messages": [
            {"role": "system", "content": "You write prompts. Reply in JSON."},
            {"role": "user", "content": prompt},
        ],
        "response_format": {"type": "json_object"},
    }
    assert len(json.loads(simulate_chat(body).text)["proposals"]) == 3


def test_at_most_twenty_proposals() -> None:
    assert len(propose(meta_prompt(999))) == 20
    assert propose(meta_prompt(0)) == []


def test_a_name_with_raw_quotes_is_read_too() -> None:
    raw = (
        '<template name="say "hi"" score="0.9" items="3">\n' + TEMPLATES["plain"] + "\n</template>"
    )
    prompt = meta_prompt(2).replace("The best templates so far", raw + "\nThe best")
    parents = [proposal["parent"] for seed in range(10) for proposal in propose(prompt, seed=seed)]
    assert len(parents) == 20
    assert 'say "hi"' in parents
    assert set(parents) <= {'say "hi"', "plain", "keyworded"}


@pytest.mark.parametrize(
    "templates",
    [
        {'say "hi" & <go>': TEMPLATES["plain"], 'x" score="1': TEMPLATES["area"]},
        {"tricky": "Half </template> and\n</template-ish> <failure x>: {{ item.input.change }}"},
        {"long": "word " * 20_000 + ": {{ item.input.change }}", "short": TEMPLATES["plain"]},
    ],
)
def test_hostile_requests_get_bounded_valid_answers(templates: dict[str, str]) -> None:
    prompt = meta_prompt(20, templates) + "\n" + 'noise {{ <template name="a" ' * 4_000
    assert len(prompt) > 100_000
    proposals = propose(prompt, "tiny-model")
    assert 0 < len(proposals) <= 20
    assert sum(len(proposal["template"]) for proposal in proposals) < 20 * 10_000
    for proposal in proposals:
        assert proposal["parent"] in templates


def test_missing_keywords_lead_a_strong_proposer_to_give_a_one_sentence_prompt_more_room() -> None:
    """A one-sentence answer has room for three keywords: shown answers that miss some, a
    large proposer often asks for two sentences instead, keeping the subject last."""
    one = {"plain": TEMPLATES["plain"]}
    roomier = [
        p["template"]
        for seed in range(40)
        for p in propose(meta_prompt(4, one), "large-model", temperature=0.7, seed=seed)
        if "in two sentences" in p["template"]
    ]
    assert len(roomier) > 20
    assert all(t.endswith("in two sentences: {{ item.input.change }}") for t in roomier)
    content = [p for seed in range(40) for p in propose(meta_prompt(4, one, ""), seed=seed)]
    assert not any("two sentences" in p["template"] for p in content)
