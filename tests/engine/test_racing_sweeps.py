"""A race on the simulated endpoint, as a user meets it: losers stop early and say why on the
leaderboard, in the status object and in the report; the winner is the best survivor."""

from __future__ import annotations

import io
import random
from typing import Any

import yaml

from promptlooper_tui.domain.records import LeaderboardEntry
from promptlooper_tui.workbench import Workbench

ITEMS = 48
WORDS = [
    "Vault",
    "Kafka",
    "Redis",
    "Nginx",
    "Docker",
    "Grafana",
    "Jenkins",
    "Sentry",
    "Consul",
    "Nomad",
    "Envoy",
    "Helm",
    "Celery",
    "Django",
    "Flask",
    "Spark",
    "Flink",
    "Trino",
    "Druid",
    "Mongo",
    "Okta",
    "Stripe",
    "Twilio",
    "Fastly",
    "Caddy",
    "Etcd",
    "Minio",
]


def race_yaml(**sweep: Any) -> str:
    """Two models x two prompts: a one-sentence answer names at most 3 of an item's 8
    keywords, a four-sentence one all of them; the large model names more."""
    rng = random.Random("race-items")
    items = []
    for _ in range(ITEMS):
        words = rng.sample(WORDS, 8)
        question = f"How do I use {', '.join(words[:-1])} and {words[-1]} together?"
        items.append({"input": {"question": question}, "keywords": words})
    experiment = {
        "name": "race",
        "parameters": {"model": ["small-model", "large-model"], "prompt": ["one", "plain"]},
        "prompts": {
            "one": "Answer in one sentence: {{ item.input.question }}",
            "plain": "Answer: {{ item.input.question }}",
        },
        "pipeline": [{"name": "answer", "user": "{{ prompts[params.prompt] }}"}],
        "dataset": items,
        "scorers": [{"type": "keyword", "required_present_from": "keywords"}],
        "sweep": {"strategy": "racing", "items_per_round": 4, "seed": 1, **sweep},
    }
    return yaml.safe_dump(experiment, sort_keys=False)


def by_config(entries: list[LeaderboardEntry]) -> dict[tuple[str, str], LeaderboardEntry]:
    return {(e.config["model"], e.config["prompt"]): e for e in entries}


async def test_a_race_drops_the_losers_early_and_each_decision_says_why(
    workbench: Workbench,
) -> None:
    imported = await workbench.import_text(race_yaml())
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)
    summary = await workbench.sweep_summary(sweep_id, top=100)

    assert summary.status == "completed"
    assert summary.runs.completed < 4 * ITEMS / 2  # well under the grid's calls
    entries = by_config(summary.leaderboard)
    winner = summary.leaderboard[0]
    assert (winner.config["model"], winner.config["prompt"]) == ("large-model", "plain")
    assert winner.decision is not None and winner.decision.state == "alive"
    for key in [("small-model", "one"), ("large-model", "one"), ("small-model", "plain")]:
        decision = entries[key].decision
        assert decision is not None and decision.state == "eliminated", key
        assert decision.at_n is not None and decision.at_n < ITEMS
        assert decision.at_n == entries[key].n  # it ran exactly the items it was judged on
        assert decision.p is not None and decision.p <= 0.05
        assert decision.against is not None and decision.against["model"] == "large-model"
    # What the race dropped ranks after what it kept.
    assert [e.dropped for e in summary.leaderboard] == [False, True, True, True]


async def test_the_report_says_how_the_winner_was_chosen(workbench: Workbench) -> None:
    imported = await workbench.import_text(race_yaml())
    await workbench.run_sweep(await workbench.create_sweep(imported.id))
    out = io.StringIO()
    await workbench.export(imported.id, "report", out)
    report = out.getvalue()
    section = report[report.index("## How the winner was chosen") :]
    section = section[: section.index("\n## ", 1)]
    assert "confidence sequence" in section and "0.05 / 3" in section
    assert "3 of 4 candidates stopped early" in section
    rows = [line for line in section.splitlines() if "| eliminated |" in line]
    assert len(rows) == 3
    assert all("model=large-model" in row.split("|")[4] for row in rows)


async def test_without_min_effect_and_with_it(workbench: Workbench) -> None:
    """Two equally good prompts (the same answers, so no difference at all) are declared
    equivalent with an indifference zone, and race to the end without one."""
    text = race_yaml().replace("Answer: {{", "Reply: {{")
    tied = yaml.safe_load(text)
    tied["parameters"] = {"prompt": ["plain", "again"]}
    tied["parameters"]["model"] = "large-model"
    tied["prompts"]["again"] = tied["prompts"]["plain"]
    for min_effect, state in ((0.1, "equivalent"), (0.0, "alive")):
        tied["name"] = f"tied-{int(min_effect * 10)}"
        tied["sweep"]["min_effect"] = min_effect
        imported = await workbench.import_text(yaml.safe_dump(tied))
        sweep_id = await workbench.create_sweep(imported.id)
        await workbench.run_sweep(sweep_id)
        board = (await workbench.sweep_summary(sweep_id, top=100)).leaderboard
        states = sorted(e.decision.state for e in board if e.decision is not None)
        assert states == sorted(["alive", state]), min_effect


async def test_guided_search_races_what_it_proposes(workbench: Workbench) -> None:
    imported = await workbench.import_text(race_yaml(strategy="guided", samples=4))
    sweep_id = await workbench.create_sweep(imported.id)
    await workbench.run_sweep(sweep_id)
    summary = await workbench.sweep_summary(sweep_id, top=100)
    assert summary.runs.completed < 4 * ITEMS
    states = [e.decision.state for e in summary.leaderboard if e.decision is not None]
    assert states[0] == "alive" and "eliminated" in states
    out = io.StringIO()
    await workbench.export(imported.id, "report", out, sweep=sweep_id)
    section = out.getvalue().split("## How the winner was chosen")[1].split("\n## ")[0]
    assert "Guided search proposed 4 configs" in section and "| eliminated |" in section
