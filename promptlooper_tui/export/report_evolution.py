"""The report of an evolve sweep: what the leaderboard's train and held-out columns mean (and a
warning when the winner does much worse on the held-out items than on the training ones), how
evolve chose its winner, and "How the prompts evolved": each generation's proposer call and
proposals, and the winner's lineage back to the experiment's own prompt with its diff against
its parent."""

from __future__ import annotations

import difflib
from typing import Any

from ..domain.records import Evolution, LeaderboardEntry, ProposalRecord
from ..engine.ranking import Scope, leaderboard
from .markdown import fenced, line
from .source import ExportJob

#: A winner whose held-out mean is more than this below its training mean is flagged.
OVERFIT_GAP = 0.05
#: Lines of a template, or of a diff, the report shows; the rest are counted.
SHOWN_LINES = 40

HELD_OUT_NOTE = (
    "train: the mean on the training items, the ones the proposer saw; held-out: the mean on "
    "the held-out items, which it never saw (- where a config did not run them). The winner "
    "is the finalist best on the held-out items."
)


def held_out_notes(winner: LeaderboardEntry) -> list[str]:
    """The sentences under a leaderboard with train and held-out columns."""
    warning = overfitting(winner)
    return [HELD_OUT_NOTE] if warning is None else [HELD_OUT_NOTE, "", warning]


def overfitting(winner: LeaderboardEntry) -> str | None:
    """A warning when the winner's held-out mean is more than OVERFIT_GAP below its training
    mean (its prompt may fit the items the proposer saw more than the task), else None."""
    train, held = winner.train_score, winner.holdout_score
    if train is None or held is None or train - held <= OVERFIT_GAP:
        return None
    return (
        f"**Overfitting:** the winner scores {held:.4f} on the held-out items, {train - held:.4f} "
        f"below its {train:.4f} on the training items (more than {OVERFIT_GAP:g}): its prompt "
        "may fit the items the proposer saw better than the task."
    )


def evolve_rules(settings: dict[str, Any], evolution: Evolution, items: int) -> str:
    """How an evolve sweep with these stored `settings` decides, for "How the winner was
    chosen" (`items`: the dataset's size)."""
    held = len(evolution.holdout_items)
    judged = (
        f"the best {settings['top_k']} survivors and generation 0's winner ran the {held} "
        "held-out items, which the proposer never saw; the winner is the finalist best there."
        if held
        else "the winner is the best survivor on the training items: no items were held out "
        "(holdout 0), so the report cannot show whether it overfits."
    )
    return (
        f"Evolve: generation 0 raced the experiment's own configs on the {items - held} training "
        f"items, {settings['items_per_round']} a round (a survivor the leader confidently beat "
        "was eliminated, one confidently within min_effect of it declared equivalent). After "
        f"each generation's race, the proposer ({line(settings['proposer']['model'])}) was shown "
        "the best prompts with their training scores and the leader's lowest-scored training "
        f"items, and wrote up to {settings['proposals']} new templates, which raced the "
        "survivors on the same items; a proposal scoring below the leader on the items it ran "
        f"stopped there (behind). After {settings['generations']} generation(s), {judged}"
    )


async def how_the_prompts_evolved(job: ExportJob) -> str:
    """The section "How the prompts evolved" of the report of evolve sweep `job.sweep`."""
    evolution = job.evolution
    assert evolution is not None
    held = len(evolution.holdout_items)
    own = ", ".join(line(name) for name in evolution.prompts)
    lines = [
        "## How the prompts evolved",
        "",
        f"Evolve rewrote the templates of parameter {line(evolution.parameter)}, starting from "
        f"the experiment's own prompts (generation 0): {own}. {held} of {len(job.spec.items)} "
        "items were held out from the proposer.",
        "",
        *await _winner(job, evolution),
    ]
    for generation in evolution.generations:
        tokens = f"{generation.tokens:,} tokens, " + (
            "from the cache" if generation.cached else "paid"
        )
        lines += ["", f"### Generation {generation.generation}", ""]
        lines.append(f"Proposer {line(generation.model)}, {tokens}.")
        if generation.error:
            lines.append(f"Its answer could not be read: {line(generation.error)}")
        for proposal in generation.proposals:
            lines += ["", *_proposal(proposal)]
    if not evolution.generations:
        lines += ["", "No generation has been proposed yet."]
    return "\n".join(lines)


async def _winner(job: ExportJob, evolution: Evolution) -> list[str]:
    """The sweep's winner (ranked alone: the finalist best on held-out items), its scores, and
    its lineage with its diff against its parent."""
    scope = Scope(
        version=job.sweep.experiment_version,
        sweep_ids=(job.sweep.id,),
        asked_sweep=job.sweep.id,
    )
    board = await leaderboard(job.db, scope, top=1)
    if not board.entries:
        return ["No config has a score yet."]
    winner = board.entries[0]
    name = str(winner.config.get(evolution.parameter))
    if not winner.holdout_n:
        scores = f"train {_score(winner.train_score)}; it has not run the held-out items"
    else:
        scores = (
            f"train {_score(winner.train_score)} on {winner.train_n} items, held-out "
            f"{_score(winner.holdout_score)} on {winner.holdout_n}"
        )
    lines = [f"Winner: **{line(name)}** ({scores})."]
    if job.asked_sweep is None:
        # The leaderboard above ranks every sweep of the version by mean score, without the
        # split: say what this sweep chose, and where its split is.
        lines[0] += (
            f" The leaderboard above ranks every sweep of version {job.sweep.experiment_version}"
            f" by mean score; the report of this sweep alone (--sweep {job.sweep.id}) shows "
            "each config's training and held-out scores."
        )
        warning = overfitting(winner)
        lines += [] if warning is None else ["", warning]
    chain = lineage(evolution, name)
    if len(chain) == 1:
        own = "It is one of the experiment's own prompts: no proposal ended ahead of it."
        return [*lines, "", own]
    origin = chain[-1]
    own = " (the experiment's own)" if origin in evolution.prompts else ""
    lines += ["", "Lineage (first parents): " + " ← ".join(line(n) for n in chain) + own + "."]
    parent = chain[1]
    diff = difflib.unified_diff(
        (evolution.template(parent) or "").splitlines(),
        (evolution.template(name) or "").splitlines(),
        fromfile=parent,
        tofile=name,
        lineterm="",
    )
    lines += ["", f"Its template against its parent's ({line(parent)}):", ""]
    return [*lines, *fenced("\n".join(diff), "diff", most_lines=SHOWN_LINES)]


def lineage(evolution: Evolution, name: str) -> list[str]:
    """`name`, its first parent, that one's first parent... back to a prompt no proposal wrote
    (the experiment's own)."""
    chain = [name]
    while (proposal := evolution.proposal(chain[-1])) is not None and proposal.parents:
        if proposal.parents[0] in chain:  # stored text: never loop on it
            break
        chain.append(proposal.parents[0])
    return chain


def _proposal(proposal: ProposalRecord) -> list[str]:
    title = proposal.name if proposal.status == "accepted" else "rejected"
    parents = ", ".join(proposal.parents) or "no parent named"
    lines = [f"#### {line(title)} (from {line(parents)})", ""]
    lines.append(f"Rationale: {line(proposal.rationale) or '(none given)'}")
    if proposal.reason:
        lines.append(f"Rejected: {line(proposal.reason)}")
    return [*lines, "", *fenced(proposal.template, "jinja", most_lines=SHOWN_LINES)]


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
