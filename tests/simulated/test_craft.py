"""Prompt craft: cue wording moves the simulated model's answers, and nothing else does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from promptlooper_tui.simulated.craft import (
    CUES,
    MAX_QUALITY,
    MIN_QUALITY,
    NO_CRAFT,
    clamp_quality,
    craft,
    prompt_quality,
)
from promptlooper_tui.simulated.replies import simulate_chat

SAMPLES = Path(__file__).parents[2] / "sample_experiments"
SUMMARY = (
    "Summarise this change for release notes in one sentence: Billing exports Templates as CSV"
)
#: Keyword questions with their keywords, and no length words: the answer has room for every
#: keyword, so the share mentioned is the per-keyword chance itself.
QUESTIONS = [
    (f"Which settings of {product} matter for {topic} on {platform} with {tool}?", words)
    for product in ("Grafana", "Postgres", "Kubernetes", "Terraform", "Nginx")
    for topic in ("latency", "backups", "security", "billing", "scaling")
    for platform in ("Linux", "Windows")
    for tool in ("Ansible", "Docker", "Jenkins", "Vault")
    for words in [(product, topic, platform, tool)]
]
EXACT_NAMES = "Use the exact names from the text. "


def chat(model: str, prompt: str, **params: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **params}


def mention_rate(model: str, prefix: str) -> float:
    hits = total = 0
    for question, words in QUESTIONS:
        text = simulate_chat(chat(model, prefix + question, temperature=0.0)).text
        for word in words:
            total += 1
            hits += word in text
    return hits / total


def test_a_helpful_cue_raises_the_true_quality_and_a_harmful_one_lowers_it() -> None:
    assert prompt_quality(SUMMARY, "medium-model") == pytest.approx(0.72)
    assert prompt_quality(EXACT_NAMES + SUMMARY, "medium-model") == pytest.approx(0.82)
    assert prompt_quality("Be specific. " + SUMMARY, "medium-model") == pytest.approx(0.76)
    assert prompt_quality("Be creative. " + SUMMARY, "medium-model") == pytest.approx(0.60)
    assert prompt_quality("Paraphrase it. " + SUMMARY, "medium-model") == pytest.approx(0.64)
    # Effects add up.
    both = "Be creative. Mention every key term. " + SUMMARY
    assert prompt_quality(both, "medium-model") == pytest.approx(0.68)


def test_quality_is_clamped() -> None:
    every_helpful = " ".join(cue.instruction for cue in CUES if cue.bonus > 0)
    assert prompt_quality(every_helpful + " " + SUMMARY, "large-model") == MAX_QUALITY
    assert clamp_quality(-0.4) == MIN_QUALITY
    assert clamp_quality(1.3) == MAX_QUALITY
    # At a high temperature a weak model's harmed prompt bottoms out, still answering.
    worst = "Be creative. Put it in your own words. " + SUMMARY
    for seed in range(20):
        assert simulate_chat(chat("tiny-model", worst, temperature=2.0, seed=seed)).text


def test_every_cue_instruction_triggers_its_own_cue() -> None:
    for cue in CUES:
        assert cue.pattern.search(cue.instruction.lower()), cue.instruction


def test_the_sample_experiments_prompts_carry_no_cue() -> None:
    """Their answers must not change: benchmarks and snapshots were measured on them."""
    prompts = []
    for path in SAMPLES.glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())
        prompts += list((spec.get("prompts") or {}).values())
        prompts += [
            stage.get(role, "") for stage in spec["pipeline"] for role in ("system", "user")
        ]
    assert len(prompts) > 5
    for prompt in prompts:
        assert craft(prompt.lower()) == NO_CRAFT, prompt


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        # Captured before craft existed: cue-less prompts keep their exact bytes.
        (
            chat("tiny-model", SUMMARY, temperature=0.7, seed=6),
            "As an AI language model, here is my answer.\nStart with exports and check the result.",
        ),
        (
            chat("large-model", "How do I configure Terraform remote state stored in Amazon S3?"),
            "Most people find that configure and Terraform is what matters most. The key point is "
            "remote and stored. Make sure to review Amazon first. This usually involves S3.",
        ),
        (
            chat(
                "medium-model",
                "Summarise this change in one sentence for release notes. Keep the product names."
                "\nChange: Importer filters Invoices in Parallel",
                temperature=0.0,
            ),
            "This usually involves Importer, filters and Invoices.",
        ),
    ],
)
def test_cue_less_answers_are_unchanged(body: dict[str, Any], reply: str) -> None:
    assert craft(body["messages"][0]["content"].lower()) == NO_CRAFT
    assert simulate_chat(body).text == reply


@pytest.mark.parametrize("model", ["tiny-model", "medium-model"])
def test_the_exact_names_cue_gets_more_keywords_mentioned(model: str) -> None:
    assert len(QUESTIONS) == 200
    without, with_cue = mention_rate(model, ""), mention_rate(model, EXACT_NAMES)
    assert with_cue - without > 0.05, (without, with_cue)


def test_forbidding_the_disclaimer_removes_it() -> None:
    def disclaimers(prefix: str) -> int:
        return sum(
            simulate_chat(chat("tiny-model", prefix + SUMMARY, seed=seed)).text.startswith(
                "As an AI"
            )
            for seed in range(200)
        )

    assert disclaimers("") > 10
    assert disclaimers("Answer without a disclaimer. ") == 0
    assert disclaimers("No disclaimers please. ") == 0


def test_a_cue_in_the_system_message_counts() -> None:
    system = {"role": "system", "content": "Answer without a disclaimer."}
    user = {"role": "user", "content": SUMMARY}
    replies = [
        simulate_chat({"model": "tiny-model", "messages": [system, user], "seed": seed}).text
        for seed in range(200)
    ]
    assert not any(reply.startswith("As an AI") for reply in replies)
