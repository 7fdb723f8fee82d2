"""evolve in the monitor: the latest generation's proposer call on one line, then the prompts it
added (or why it added none), one line each, cut to the width."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from ...domain.records import Evolution, GenerationRecord, ProposalRecord

#: Proposal lines shown under the summary: the latest generation's accepted ones first.
PROPOSAL_LINES = 4


def generation_summary(evolution: Evolution) -> Content:
    """'gen 2: 3 accepted, 1 rejected (proposer large-model, cached)', or what the sweep does
    before its first proposals."""
    if not evolution.generations:
        return Content.assemble(
            ("gen 0", "bold"),
            f": racing the experiment's {len(evolution.prompts)} prompts; "
            "the proposer writes new ones after it",
        )
    latest = evolution.generations[-1]
    proposer = f"proposer {latest.model}" + (", cached" if latest.cached else "")
    if latest.error is not None:
        return Content.assemble(
            (f"gen {latest.generation}", "bold"),
            ": ",
            (f"the proposer's answer could not be read: {latest.error}", "$error"),
            f" ({proposer})",
        )
    accepted = sum(p.status == "accepted" for p in latest.proposals)
    rejected = len(latest.proposals) - accepted
    return Content.assemble(
        (f"gen {latest.generation}", "bold"),
        ": ",
        (f"{accepted} accepted", "$success" if accepted else ""),
        ", ",
        (f"{rejected} rejected", "$warning" if rejected else ""),
        f" ({proposer})",
    )


def proposal_lines(generation: GenerationRecord, most: int = PROPOSAL_LINES) -> list[Content]:
    """The generation's proposals, accepted first: name, parents and rationale, or the reason
    a rejected one was refused."""
    ordered = sorted(generation.proposals, key=lambda p: p.status != "accepted")
    return [_proposal_line(p) for p in ordered[:most]]


def _proposal_line(proposal: ProposalRecord) -> Content:
    parents = ", ".join(proposal.parents) or "–"
    if proposal.status == "accepted":
        return Content.assemble(
            (proposal.name or "", "bold $secondary"),
            (f" ← {parents}  ", "$text-muted"),
            proposal.rationale,
        )
    return Content.assemble(
        ("rejected", "$warning"),
        (f" ← {parents}  ", "$text-muted"),
        proposal.reason or "",
    )


class GenerationsView(Vertical):
    """The summary line and the latest generation's proposals; redrawn only when they change."""

    DEFAULT_CSS = """
    GenerationsView {
        height: auto;
    }
    GenerationsView Static {
        height: auto;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    GenerationsView #generation-prompts {
        padding-left: 2;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: The lineage last drawn (None: nothing yet).
        self.evolution: Evolution | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="generation-summary")
        yield Static(id="generation-prompts")

    def show(self, evolution: Evolution) -> None:
        if evolution == self.evolution:
            return
        self.evolution = evolution
        self.query_one("#generation-summary", Static).update(generation_summary(evolution))
        prompts = self.query_one("#generation-prompts", Static)
        lines = proposal_lines(evolution.generations[-1]) if evolution.generations else []
        prompts.update(Content("\n").join(lines))
        prompts.display = bool(lines)
