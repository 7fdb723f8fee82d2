"""The proposer's request and how its answer is read: the request says how many templates to
write and shows the best ones verbatim, failures capped; the answer is untrusted text, read
leniently, and whatever it holds becomes proposals or a reason, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptlooper_tui.domain.experiment import ProposerSpec, SweepSettings
from promptlooper_tui.engine.evolve import Brief, ShownPrompt
from promptlooper_tui.engine.evolve_proposer import (
    OUTPUT_SHOWN,
    proposer_messages,
    proposer_request,
    read_answer,
)
from promptlooper_tui.simulated.replies import simulate_chat
from promptlooper_tui.store.evolve import Failure

PROPOSALS = [
    {"template": "One sentence: {{ item.input.change }}", "parent": "plain", "rationale": "a"},
    {"template": "Name it: {{ item.input.change }}", "parent": "plain", "rationale": "b"},
]
ANSWER = json.dumps({"proposals": PROPOSALS})


# --- reading the answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        ANSWER,
        f"```json\n{ANSWER}\n```",
        f"```\n{ANSWER}\n```",
        f"Here are two new templates:\n\n{ANSWER}\n\nEach keeps the change's text.",
        json.dumps(PROPOSALS),  # a bare list of proposals
    ],
)
def test_the_proposals_are_read_wherever_the_json_sits(text: str) -> None:
    assert read_answer(text, 4) == (PROPOSALS, None)


@pytest.mark.parametrize(
    "text",
    [
        f"Here are [2] new templates: {ANSWER}",
        f"Changes {{in short}}: wording.\n{ANSWER}",
    ],
)
def test_brackets_in_the_words_around_the_object_do_not_hide_it(text: str) -> None:
    assert read_answer(text, 4) == (PROPOSALS, None)


def test_more_proposals_than_asked_for_are_capped() -> None:
    many = json.dumps({"proposals": PROPOSALS * 5})
    proposals, error = read_answer(many, 3)
    assert error is None and proposals == (PROPOSALS * 5)[:3]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the answer holds no JSON"),
        ("I cannot help with that.", "the answer holds no JSON"),
        ('{"proposals": "x"}', 'the answer has no "proposals" list'),
        ('{"templates": []}', 'the answer has no "proposals" list'),
        ('{"proposals": [1, 2,]}', "the answer is not valid JSON"),
        ("{proposals: [1]}", "the answer is not valid JSON"),
        ("x" * 1_000_000, "the answer holds no JSON"),
        ("{" + "x" * 1_000_000 + "}", "the answer is not valid JSON"),
    ],
)
def test_an_answer_that_cannot_be_read_gives_a_reason(text: str, reason: str) -> None:
    proposals, error = read_answer(text, 4)
    assert proposals == [] and error is not None and error.startswith(reason)


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deeply_nested_json_is_a_reason_not_a_recursion_error(depth: int) -> None:
    """json.loads raises RecursionError, not ValueError, on deep nesting: a hostile or broken
    answer must reject the generation's proposals, not fail the sweep (its answer is cached,
    so a resumed sweep would fail again on it)."""
    for text in ('{"proposals": ' + "[" * depth + "]" * depth + "}", "[" * depth + "]" * depth):
        proposals, error = read_answer(text, 4)
        assert proposals == [] and error is not None and "not valid JSON" in error


# --- the request ---------------------------------------------------------------------------------


SETTINGS = SweepSettings(
    strategy="evolve",
    generations=3,
    proposals=5,
    proposer=ProposerSpec(model="large-model", params={"temperature": 0.9, "top_p": 0.5}),
)
SHOWN = [
    ShownPrompt("keyworded", "Keep the {{ item.input.change }} names.\n  Indented {{ x }}", 0.8, 9),
    ShownPrompt('say "hi" & go', "Plain: {{ item.input.change }}", 0.61234, 9),
]


def brief(**changes: Any) -> Brief:
    values: dict[str, Any] = {
        "generation": 2,
        "best": SHOWN,
        "leader_key": "k",
        "leader_config": {"prompt": "keyworded"},
        "trained": [0, 2, 4],
        "known": {s.name: s.template for s in SHOWN},
    }
    return Brief(**(values | changes))


def user_text(failures: list[tuple[str, Failure]] | None = None, **changes: Any) -> str:
    messages = proposer_messages(
        brief(**changes),
        SETTINGS,
        ["item.input.change"],
        ["keyword (weight 3)"],
        failures or [],
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_the_request_asks_for_the_number_of_templates_and_names_the_variables() -> None:
    text = user_text()
    assert "Generation 2 of 3. Write 5 new prompt templates" in text
    assert "{{ item.input.change }}" in text and "keyword (weight 3)" in text
    assert '{"proposals": [{"template":' in text


def test_every_shown_template_is_verbatim_best_first_with_its_score() -> None:
    text = user_text()
    for shown in SHOWN:
        assert f">\n{shown.template}\n</template>" in text
    assert text.index(SHOWN[0].template) < text.index(SHOWN[1].template)
    assert '<template name="keyworded" score="0.800" items="9">' in text
    # A name with quotes cannot end the attribute early.
    assert '<template name="say &quot;hi&quot; &amp; go" score="0.612" items="9">' in text


def test_failures_show_the_start_of_their_output_and_their_scores() -> None:
    long_output = "A" * OUTPUT_SHOWN + "TAIL-NOT-SHOWN"
    failure = Failure(4, 0.25, long_output, (("keyword", 0.25), ("judge", None)))
    text = user_text([('say "hi" & go', failure)])
    assert "A" * OUTPUT_SHOWN in text and "TAIL-NOT-SHOWN" not in text
    assert '<failure template="say &quot;hi&quot; &amp; go" item="4" score="0.250">' in text
    assert "<scorers>keyword: 0.25; judge: failed</scorers>" in text


def test_without_failures_the_request_has_no_failure_section() -> None:
    text = user_text()
    assert "scored lowest on" not in text and "<failure" not in text


def test_the_request_parameters_are_the_proposers_with_defaults() -> None:
    assert proposer_request(SETTINGS) == {
        "model": "large-model",
        "temperature": 0.9,
        "top_p": 0.5,
        "max_tokens": 2_000,
    }
    plain = SETTINGS.model_copy(update={"proposer": ProposerSpec(model="m")})
    assert proposer_request(plain) == {"model": "m", "temperature": 0.7, "max_tokens": 2_000}


def test_templates_tried_before_are_listed_for_the_proposer_not_to_write_again() -> None:
    # A rewrite of the best template the simulated proposer would often write.
    again = f"Use the exact names from the text. {SHOWN[0].template}"
    tried = [ShownPrompt("g1.2", again, 0.61, 6)]
    text = user_text(tried=tried)
    assert f'<tried name="g1.2" score="0.610" items="6">\n{again}\n</tried>' in text
    assert "<tried" not in user_text()
    # The simulated proposer reads the list: it writes none of the tried texts again.
    for seed in range(30):
        body = {
            "model": "large-model",
            "seed": seed,
            "messages": [{"role": "user", "content": text}],
        }
        answer = json.loads(simulate_chat(body).text)
        assert all(p["template"].strip() != tried[0].template for p in answer["proposals"])
