"""Evolve's strategy alone: the seeded train/held-out split, generation 0 racing the
experiment's configs on training items only, proposals probed against the leader, the winner
judged on the held-out items, and batches rebuilt identically from the history (resume)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.experiment import CategoricalParameter, ProposerSpec, SweepSettings
from promptlooper_tui.engine.evolve import Brief, EvolveStrategy, split_items
from promptlooper_tui.engine.search_space import Space, config_key
from promptlooper_tui.engine.strategy import Batch
from promptlooper_tui.store.evolve import Proposal

from .strategy_fakes import FakeHistory

PROMPTS = {"plain": "Say: {{ item.q }}", "short": "Briefly: {{ item.q }}", "odd": "Hm {{ item.q }}"}
SPACE: Space = {
    "model": CategoricalParameter(values=["small", "large"]),
    "prompt": CategoricalParameter(values=list(PROMPTS)),
}
#: Each prompt's true quality; names the fake proposer gives its templates are in here too.
QUALITY = {"plain": 0.6, "short": 0.55, "odd": 0.3, "great": 0.9, "awful": 0.1, "meh": 0.58}
N_ITEMS = 40


def score(config: Mapping[str, Any], item: int) -> float:
    """A prompt's quality, the large model a little better, items harder or easier, and a
    little deterministic noise of each config's own."""
    base = QUALITY[str(config.get("prompt", "plain"))]
    model = 0.05 if config.get("model") == "large" else 0.0
    noise = 0.02 * math.sin(item * 7.3 + len(config_key(config)))
    return base + model + 0.05 * math.sin(item) + noise


class FakeSource:
    """Answers generation g with a proposal of each quality `answers[g]` names (None: one
    rejected); an accepted one is named g<g>.<n>, its template starts with its quality."""

    def __init__(self, answers: Mapping[int, list[str | None]]) -> None:
        self.answers = answers
        self.briefs: list[Brief] = []

    async def propose(self, brief: Brief) -> list[Proposal]:
        self.briefs.append(brief)
        proposals = []
        number = 0
        for position, quality in enumerate(self.answers.get(brief.generation, [])):
            name = None
            if quality is not None:
                number += 1
                name = f"g{brief.generation}.{number}"
            template = f"{quality}~{brief.generation}.{position} {{{{ item.q }}}}"
            proposals.append(
                Proposal(
                    generation=brief.generation,
                    position=position,
                    template=template,
                    parents=(brief.best[0].name,),
                    rationale="",
                    name=name,
                    reason=None if name else "rejected by the check",
                )
            )
        return proposals


def quality_score(names: Mapping[str, str]) -> Any:
    """`score`, reading a proposal's quality from the name its template was given."""

    def scored(config: Mapping[str, Any], item: int) -> float:
        prompt = str(config.get("prompt", "plain"))
        return score({**config, "prompt": names.get(prompt, prompt)}, item)

    return scored


def evolve(
    source: FakeSource | None,
    space: Space = SPACE,
    n_items: int = N_ITEMS,
    fixed_prompt: str | None = None,
    **settings: Any,
) -> EvolveStrategy:
    defaults: dict[str, Any] = {
        "strategy": "evolve",
        "generations": 2,
        "proposals": 2,
        "proposer": ProposerSpec(model="large-model"),
        "holdout": 0.3,
        "items_per_round": 2,
        "seed": 5,
    }
    return EvolveStrategy(
        space,
        SweepSettings(**(defaults | settings)),
        n_items,
        parameter="prompt",
        prompts=PROMPTS,
        fixed_prompt=fixed_prompt,
        source=source,
    )


async def drive(
    strategy: EvolveStrategy, history: FakeHistory | None = None, start: int = 0
) -> tuple[list[Batch], FakeHistory]:
    """Every batch from `start` on, as the runner plans them: prepare, then next_batch."""
    history = history or FakeHistory()
    names: dict[str, str] = {}
    batches = []
    for number in range(start, 500):
        await strategy.prepare(number, history)
        for name, template in strategy.prompts.items():
            names[name] = template.split("~")[0] if "~" in template else name
        batch = strategy.next_batch(number, history)
        if batch is None:
            return batches, history
        batches.append(batch)
        history.record(batch, quality_score(names))
    raise AssertionError("the sweep did not end within 500 batches")


def decisions(batches: list[Batch]) -> dict[str, Any]:
    return {key: d for batch in batches for key, d in batch.decided.items()}


def training_mean(history: FakeHistory, config: Mapping[str, Any], train: list[int]) -> float:
    scores = history.item_scores(config_key(config))
    known = [scores[i] for i in train if i in scores]
    return sum(known) / len(known)


def planned_runs(batches: list[Batch], repeats: int = 1) -> int:
    return sum(len(b.configs) * len(b.items) for b in batches) * repeats


# --- the split -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "holdout"), [(40, 0.3), (15, 0.3), (10, 0.25), (60, 0.8)])
def test_the_split_is_seeded_disjoint_and_holds_out_the_share(n: int, holdout: float) -> None:
    train, held = split_items(n, holdout, seed=3)
    assert (train, held) == split_items(n, holdout, seed=3)
    assert set(train).isdisjoint(held)
    assert sorted(train + held) == list(range(n))
    assert len(held) == round(n * holdout)
    assert any(split_items(n, holdout, seed=s)[1] != held for s in range(4, 8))


def test_a_tiny_share_still_holds_out_one_item_and_none_holds_out_nothing() -> None:
    assert len(split_items(10, 0.01, seed=0)[1]) == 1
    assert split_items(10, 0.0, seed=0) == (list(range(10)), [])


def test_too_few_training_items_is_refused_naming_the_numbers() -> None:
    with pytest.raises(BadInput, match=r"at least 3 training items.* 5 .*0\.6 holds out 3"):
        split_items(5, 0.6, seed=0)
    with pytest.raises(BadInput, match="at least 3 training items"):
        evolve(FakeSource({}), n_items=4, holdout=0.5)


# --- what runs where ---------------------------------------------------------------------------


async def test_generation_0_races_the_experiments_configs_on_training_items_only() -> None:
    source = FakeSource({1: ["meh"], 2: ["meh"]})
    strategy = evolve(source)
    history = FakeHistory()
    first: list[Batch] = []
    # Generation 0 needs no proposer: next_batch alone plans it, up to generation 1.
    with pytest.raises(RuntimeError, match="needs generation 1"):
        while (batch := strategy.next_batch(len(first), history)) is not None:
            first.append(batch)
            history.record(batch, score)
    assert first and not source.briefs
    starting = {config_key({"model": m, "prompt": p}) for m in ["small", "large"] for p in PROMPTS}
    assert {config_key(c) for b in first for c in b.configs} == starting
    held = set(strategy.held_out)
    assert all(held.isdisjoint(b.items) for b in first)
    assert set(strategy.train) >= {item for b in first for item in b.items}


async def test_held_out_items_run_only_in_the_last_batch_and_no_run_is_planned_twice() -> None:
    for seed in range(4):
        strategy = evolve(FakeSource({1: ["great", "awful"], 2: ["meh", None]}), seed=seed)
        batches, _ = await drive(strategy)
        held = set(strategy.held_out)
        assert all(held.isdisjoint(b.items) for b in batches[:-1]), seed
        assert batches[-1].items == strategy.held_out
        planned = [(config_key(c), item) for b in batches for c in b.configs for item in b.items]
        assert len(planned) == len(set(planned)), f"seed {seed}: a run planned twice"


async def test_a_clearly_worse_proposal_stops_after_the_probe() -> None:
    strategy = evolve(FakeSource({1: ["awful"], 2: []}))
    batches, _ = await drive(strategy)
    awful = {"model": "large", "prompt": "g1.1"}
    decision = decisions(batches)[config_key(awful)]
    assert decision.state in ("behind", "eliminated")
    # The probe: two blocks of items_per_round items (MIN_SHARED is 3).
    assert decision.at_n == 4
    assert sum(len(b.items) for b in batches if awful in b.configs) == 4


async def test_a_clearly_better_proposal_runs_on_and_leads_the_next_generation() -> None:
    source = FakeSource({1: ["great", "awful"], 2: ["meh"]})
    strategy = evolve(source, top_k=1)
    batches, _ = await drive(strategy)
    # It runs with the leader's other parameter (the large model) and its own prompt name.
    great = {"model": "large", "prompt": "g1.1"}
    assert great in batches[-1].configs
    assert config_key(great) not in decisions(batches)
    second = source.briefs[1]
    assert second.generation == 2
    assert second.best[0].name == "g1.1" and second.leader_config == great
    assert second.leader_key == config_key(great)
    # top_k 1: the best survivor, and generation 0's winner (the best hand-written config).
    assert batches[-1].configs == [great, {"model": "large", "prompt": "plain"}]


async def test_all_proposals_rejected_leave_the_generation_empty_and_the_sweep_goes_on() -> None:
    source = FakeSource({1: [None, None], 2: ["great"]})
    strategy = evolve(source)
    batches, _ = await drive(strategy)
    assert [b.generation for b in source.briefs] == [1, 2]
    prompts = {c["prompt"] for b in batches for c in b.configs}
    assert "g1.1" not in prompts and "g2.1" in prompts
    assert "g1.1" not in strategy.prompts
    assert batches[-1].items == strategy.held_out


async def test_the_held_out_batch_is_the_top_k_survivors_and_the_best_hand_written() -> None:
    # Proposals about as good as the leader: several configs survive to the end.
    source = FakeSource({1: ["meh", "plain"], 2: ["short", "meh"]})
    most_survivors = 0
    for top_k in (1, 2, 3, 4):
        strategy = evolve(source, top_k=top_k, min_effect=0, alpha=0.01)
        source.briefs.clear()
        batches, history = await drive(strategy)
        *training, held_out = batches
        decided = decisions(batches)
        survivors = {
            config_key(c): c for b in training for c in b.configs if config_key(c) not in decided
        }
        most_survivors = max(most_survivors, len(survivors))

        ranked = sorted(
            survivors.values(),
            key=lambda c, h=history, train=strategy.train: training_mean(h, c, train),
            reverse=True,
        )
        expected = ranked[:top_k]
        hand_written = source.briefs[0].leader_config  # generation 0's winner
        if hand_written not in expected:
            expected.append(hand_written)
        assert held_out.configs == expected, top_k
    assert most_survivors >= 3, "the scenario should keep several survivors"


async def test_a_resumed_sweep_plans_the_same_batches_from_its_history() -> None:
    answers: dict[int, list[str | None]] = {1: ["great", "awful", None], 2: ["meh", "great"]}
    strategy = evolve(FakeSource(answers), generations=2, proposals=3)
    whole, _ = await drive(strategy)
    names = {name: text.split("~")[0] for name, text in strategy.prompts.items() if "~" in text}
    for stop in range(len(whole)):
        history = FakeHistory()
        for batch in whole[:stop]:
            history.record(batch, quality_score(names))
        resumed = evolve(FakeSource(answers), generations=2, proposals=3)
        rest, _ = await drive(resumed, history, start=stop)
        assert rest == whole[stop:], f"resumed after {stop} batches"


async def test_max_runs_is_never_passed_and_one_too_small_is_refused() -> None:
    answers: dict[int, list[str | None]] = {1: ["great", "meh"], 2: ["meh", "great"]}
    for repeats in (1, 2):
        # 6 starting configs x 2 items x 3 generations' shares, and 4 finalists x 12 held out.
        least = (6 * 2 * 3 + 4 * 12) * repeats
        with pytest.raises(BadInput, match=f"max_runs is {least - 1}, .* at least {least}"):
            evolve(FakeSource(answers), max_runs=least - 1, repeats=repeats)
        for max_runs in (least, least + 7, 2 * least, 5 * least):
            strategy = evolve(FakeSource(answers), max_runs=max_runs, repeats=repeats)
            batches, _ = await drive(strategy)
            assert planned_runs(batches, repeats) <= max_runs, (repeats, max_runs)
            assert batches[-1].items == strategy.held_out


# --- the proposer's part -----------------------------------------------------------------------


async def test_next_batch_without_prepare_raises_at_a_generations_first_batch() -> None:
    source = FakeSource({1: ["meh"], 2: ["great"], 3: ["awful"]})
    strategy = evolve(source, generations=3)
    history = FakeHistory()
    number = 0
    with pytest.raises(RuntimeError, match="needs generation 1: prepare it"):
        while (batch := strategy.next_batch(number, history)) is not None:
            history.record(batch, score)
            number += 1
    assert not source.briefs
    # prepare asks once, however often it is called for the same batch.
    await strategy.prepare(number, history)
    await strategy.prepare(number, history)
    assert [b.generation for b in source.briefs] == [1]
    strategy2 = evolve(source, generations=3)
    source.briefs.clear()
    await drive(strategy2)
    assert [b.generation for b in source.briefs] == [1, 2, 3]


async def test_a_plan_without_a_source_stops_where_the_proposer_would_answer() -> None:
    strategy = evolve(None)
    history = FakeHistory()
    number = 0
    while (batch := strategy.next_batch(number, history)) is not None:
        history.record(batch, score)
        number += 1
    assert number > 0
    with pytest.raises(RuntimeError, match="needs a proposal source"):
        await strategy.prepare(number, history)


async def test_the_brief_shows_the_best_top_k_prompts_best_first_and_training_items() -> None:
    # Proposals about as good as the leader: several prompts survive to be shown.
    for top_k in (1, 2, 3):
        source = FakeSource({1: ["meh", "plain"], 2: ["short"]})
        strategy = evolve(source, top_k=top_k, min_effect=0, alpha=0.01)
        await drive(strategy)
        for brief in source.briefs:
            assert 1 <= len(brief.best) <= top_k
            scores = [shown.score for shown in brief.best]
            assert scores == sorted(scores, reverse=True)
            assert len({shown.name for shown in brief.best}) == len(brief.best)
            assert all(shown.template == strategy.prompts[shown.name] for shown in brief.best)
            assert brief.trained and set(brief.trained) <= set(strategy.train)
            assert set(brief.known) >= set(PROMPTS)
        assert max(len(brief.best) for brief in source.briefs) == top_k
        assert source.briefs[0].best[0].name == "plain"
        assert set(source.briefs[1].known) >= {"g1.1", "g1.2"}
    source = FakeSource({1: ["great"], 2: []})
    await drive(evolve(source))
    assert source.briefs[1].best[0].name == "g1.1"


async def test_a_lone_prompt_that_is_not_swept_evolves_too() -> None:
    """`prompt: plain` (one value): generation 0's configs name it too, and each proposal's
    config names its prompt beside the leader's other parameters."""
    space: Space = {"model": CategoricalParameter(values=["small", "large"])}
    source = FakeSource({1: ["great"], 2: ["awful"]})
    strategy = evolve(source, space=space, fixed_prompt="plain", top_k=1)
    batches, _ = await drive(strategy)
    assert source.briefs[0].best[0].name == "plain"
    assert batches[-1].configs[0] == {"model": "large", "prompt": "g1.1"}
    assert {"model": "large", "prompt": "plain"} in batches[-1].configs
    assert all("prompt" in config for batch in batches for config in batch.configs)
    planned = [(config_key(c), item) for b in batches for c in b.configs for item in b.items]
    assert len(planned) == len(set(planned))
