"""The Markdown report of an evolve sweep: training and held-out scores side by side (and a
warning when the winner overfits), and how the prompts evolved: every generation's proposer
call, every proposal with its parents, rationale, template and rejection reason, and the
winner's lineage with its diff against its parent. Read back with a CommonMark parser (rich's,
installed with textual), so a template's backticks or HTML cannot break out of its block."""

from __future__ import annotations

import difflib
import html
import io

from markdown_it import MarkdownIt

from promptlooper_tui.domain.records import LeaderboardEntry
from promptlooper_tui.export.markdown import fenced
from promptlooper_tui.export.report_evolution import HELD_OUT_NOTE, held_out_notes, lineage
from promptlooper_tui.workbench import Workbench
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT, run_evolve_sweep

from ..conftest import experiment_yaml
from .test_report_escaping import tables

NAME = EVOLVE_EXPERIMENT["name"]
#: An own prompt with backtick runs and raw HTML, which the proposer's rewrites keep.
PROMPTS = {
    **EVOLVE_EXPERIMENT["prompts"],
    "keyworded": "Summarise this change in one sentence for release notes. Keep the product "
    "names, like `Billing` or ```` fenced ```` <b>bold</b>.\n```\nChange: {{ item.input.change }}",
}


async def report_of(wb: Workbench, ref: str, sweep: str | None = None) -> str:
    out = io.StringIO()
    await wb.export(ref, "report", out, sweep=sweep)
    return out.getvalue()


def parsed(report: str) -> tuple[list[str], list[str]]:
    """The report's fenced blocks' contents, and any raw HTML a renderer would pass through."""
    tokens = MarkdownIt("commonmark").parse(report)
    inline = [child for token in tokens for child in token.children or []]
    raw = [t.content for t in [*tokens, *inline] if t.type in ("html_block", "html_inline")]
    return [token.content for token in tokens if token.type == "fence"], raw


def leaderboard_table(report: str) -> list[list[str]]:
    [ranked] = [t for t in tables(report) if t[0][0].strip() == "rank"]
    return [[cell.strip() for cell in row] for row in ranked]


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


async def test_the_sweep_report_shows_train_and_held_out_scores_and_how_the_prompts_evolved(
    workbench: Workbench,
) -> None:
    # The fixture's seed crowns a proposal and rejects one, so that the report shows a
    # lineage, a diff and a rejection (the simulated endpoint is deterministic: a seed always
    # gives the same sweep).
    sweep_id = await run_evolve_sweep(workbench, prompts=PROMPTS)
    report = await report_of(workbench, NAME, sweep_id)
    board = await workbench.ranking(NAME, sweep=sweep_id)
    evolution = await workbench.evolution(sweep_id)
    fences, raw_html = parsed(report)
    assert raw_html == []

    ranked = leaderboard_table(report)
    assert ranked[0][2:5] == ["score", "train", "held-out"]
    assert [row[3:5] for row in ranked[1:]] == [
        [score(e.train_score), score(e.holdout_score)] for e in board.entries
    ]
    winner = board.entries[0]
    assert winner.holdout_n and winner.train_n, winner
    assert HELD_OUT_NOTE in report
    overfits = (winner.train_score or 0) - (winner.holdout_score or 0) > 0.05
    assert ("**Overfitting:**" in report) == overfits

    section = report[report.index("## How the prompts evolved") : report.index("## Score")]
    proposals = [p for generation in evolution.generations for p in generation.proposals]
    assert len(evolution.generations) == 2 and {p.status for p in proposals} == {
        "accepted",
        "rejected",
    }
    for generation in evolution.generations:
        assert f"### Generation {generation.generation}\n" in section
        assert f"Proposer {generation.model}, {generation.tokens:,} tokens, paid." in section
    for proposal in proposals:
        parents = ", ".join(proposal.parents)
        assert f"#### {proposal.name or 'rejected'} (from {parents})" in section
        assert f"Rationale: {html.escape(proposal.rationale, quote=False)}" in section
        if proposal.reason:
            assert f"Rejected: {html.escape(proposal.reason, quote=False)}" in section
        assert proposal.template + "\n" in fences
    # The proposer rewrote the prompt with backticks: its rewrites are whole blocks too.
    assert any("```` fenced ````" in proposal.template for proposal in proposals)

    name = winner.config["prompt"]
    chain = lineage(evolution, name)
    assert len(chain) > 1 and chain[-1] in evolution.prompts, chain
    assert f"Winner: **{name}** (train {score(winner.train_score)} on " in section
    assert "Lineage (first parents): " + " ← ".join(chain) + " (the experiment's own)." in section
    diff = difflib.unified_diff(
        (evolution.template(chain[1]) or "").splitlines(),
        (evolution.template(name) or "").splitlines(),
        fromfile=chain[1],
        tofile=name,
        lineterm="",
    )
    assert "\n".join(diff) + "\n" in fences


async def test_the_experiment_report_of_an_evolve_sweep_says_what_the_sweep_chose(
    workbench: Workbench,
) -> None:
    sweep_id = await run_evolve_sweep(workbench)
    report = await report_of(workbench, NAME)
    ranked = leaderboard_table(report)
    # Every sweep of the version ranked together: no split to show in the table...
    assert "train" not in ranked[0] and HELD_OUT_NOTE not in report
    # ...so the lineage section names the sweep's winner, its scores and where its split is.
    winner = (await workbench.ranking(NAME, sweep=sweep_id, top=1)).entries[0]
    section = report[report.index("## How the prompts evolved") :]
    assert f"Winner: **{winner.config['prompt']}** (train {score(winner.train_score)}" in section
    assert f"(--sweep {sweep_id})" in section
    assert "Evolve: generation 0 raced the experiment's own configs on the 9 training" in report


async def test_a_report_of_another_strategy_has_no_lineage(workbench: Workbench) -> None:
    imported = await workbench.import_text(experiment_yaml())
    await workbench.run_sweep(await workbench.create_sweep(imported.id))
    report = await report_of(workbench, "support")
    assert "How the prompts evolved" not in report and "held-out" not in report


def test_a_winner_well_below_its_training_score_on_held_out_items_is_flagged() -> None:
    def entry(train: float, held: float) -> LeaderboardEntry:
        return LeaderboardEntry.model_validate(
            {
                "rank": 1,
                "config": {"prompt": "g2.1"},
                "score": train,
                "ci_low": 0.0,
                "ci_high": 1.0,
                "n": 12,
                "tied_with_leader": True,
                "train_score": train,
                "train_n": 9,
                "holdout_score": held,
                "holdout_n": 3,
            }
        )

    assert held_out_notes(entry(0.9, 0.86)) == [HELD_OUT_NOTE]
    assert held_out_notes(entry(0.8, 0.95)) == [HELD_OUT_NOTE]
    [_, _, warning] = held_out_notes(entry(0.9, 0.8))
    assert warning.startswith("**Overfitting:** the winner scores 0.8000 on the held-out items")


def test_a_fenced_template_keeps_its_text_and_shows_forty_lines() -> None:
    nasty = "````\n```\n<script>alert(1)</script>\n~~~\n    indented `x`"
    fences, raw_html = parsed("\n".join(["text", *fenced(nasty, "jinja", most_lines=40), "after"]))
    assert fences == [nasty + "\n"] and raw_html == []
    long = "\n".join(f"line {i}" for i in range(45))
    block = fenced(long, most_lines=40)
    assert block[0] == "```" and block[41] == "```" and block[1:41] == long.splitlines()[:40]
    assert block[42] == "(5 more lines not shown)"
