"""An evolved prompt in the inspector: its generation, parents and the proposer's rationale, and
a unified diff of its template against its first parent's."""

from __future__ import annotations

from difflib import unified_diff

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from ...domain.records import Evolution, ProposalRecord


def template_diff(parent: str, child: str, *, parent_name: str, child_name: str) -> Content:
    """A unified diff, line by line: removed lines in the theme's error colour, added ones in
    its success colour. Templates are plain text here (a `[` is never read as markup)."""
    lines = unified_diff(
        parent.splitlines(),
        child.splitlines(),
        fromfile=parent_name,
        tofile=child_name,
        lineterm="",
    )
    return Content("\n").join(Content.styled(line, _line_style(line)) for line in lines)


def _line_style(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "bold"
    if line.startswith("@@"):
        return "$text-muted"
    if line.startswith("+"):
        return "$success"
    if line.startswith("-"):
        return "$error"
    return ""


class PromptLineage(Vertical):
    """Where an evolved prompt comes from, and what it changed in its first parent."""

    DEFAULT_CSS = """
    PromptLineage {
        height: auto;
    }
    PromptLineage .lineage-heading {
        margin-top: 1;
        text-style: bold;
        color: $primary;
    }
    PromptLineage .lineage-facts {
        padding-left: 2;
    }
    PromptLineage .lineage-diff {
        margin: 1 0 0 2;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, evolution: Evolution, proposal: ProposalRecord) -> None:
        super().__init__()
        self._evolution = evolution
        self._proposal = proposal

    def compose(self) -> ComposeResult:
        proposal, evolution = self._proposal, self._evolution
        yield Static(
            f"Prompt {proposal.name} · generation {proposal.generation} of the evolve sweep",
            classes="lineage-heading",
            markup=False,
        )
        yield Static(
            Content.assemble(
                ("parents ", "bold"),
                ", ".join(proposal.parents) or "none recorded",
                "\n",
                ("rationale ", "bold"),
                proposal.rationale or "none given",
            ),
            classes="lineage-facts",
        )
        if not proposal.parents:
            return
        first = proposal.parents[0]
        parent = evolution.template(first)
        if parent is None:
            missing = f"the template of parent {first!r} is not in the sweep's lineage"
            yield Static(Content.styled(missing, "$warning"), classes="lineage-facts")
            return
        yield Static(
            template_diff(
                parent, proposal.template, parent_name=first, child_name=proposal.name or ""
            ),
            classes="lineage-diff",
        )
