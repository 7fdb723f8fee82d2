"""How a proposed prompt template is checked before evolve runs it.

A proposal is a template like any other: compiled in
the same sandbox, it may use only the variables the experiment's own prompts use (a proposer
that invents `{{ item.reference }}` would read the answer it is judged against), and it must
render for a training item before a single run is spent on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import TemplateError, nodes

from ..domain.experiment import ExperimentSpec
from .sandbox import SANDBOX
from .templates import PipelineTemplates, compile_template

#: The longest proposed template accepted, in characters.
MAX_TEMPLATE_CHARS = 8_000
#: Names a template may read without the experiment's prompts using them.
_ALWAYS = frozenset({"loop"})


def variable_paths(source: str) -> set[str]:
    """The dotted variables a template reads (`item.input.change`, `params.tone`), outermost
    chains only; names the template binds itself ({% set %}, {% for %}) are left out.
    Raises jinja2.TemplateSyntaxError."""
    tree = SANDBOX.parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[str] = set()
    _collect(tree, bound, found)
    return found


def _collect(node: nodes.Node, bound: set[str], found: set[str]) -> None:
    path = _chain(node)
    if path is not None:
        if path.split(".", 1)[0] not in bound:
            found.add(path)
        return
    for child in node.iter_child_nodes():
        _collect(child, bound, found)


def _chain(node: nodes.Node) -> str | None:
    """`a.b["c"]` as "a.b.c" when `node` is a chain of constant lookups on a name."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return node.name
    if isinstance(node, nodes.Getattr):
        head = _chain(node.node)
        return None if head is None else f"{head}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        head = _chain(node.node)
        return None if head is None else f"{head}.{node.arg.value}"
    return None


def allowed_paths(templates: Iterable[str]) -> frozenset[str]:
    """Every variable the given templates read, with each of its prefixes (`item`,
    `item.input`, `item.input.change`)."""
    allowed: set[str] = set(_ALWAYS)
    for source in templates:
        for path in variable_paths(source):
            parts = path.split(".")
            allowed.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(allowed)


class ProposalCheck:
    """Checks proposed templates against an experiment: its variables, and a trial render."""

    def __init__(self, spec: ExperimentSpec, parameter: str) -> None:
        self._spec = spec
        self._parameter = parameter
        self._allowed = allowed_paths(spec.prompts.values())
        used = [p for p in self._allowed if p not in _ALWAYS]
        #: The variables the experiment's prompts read (leaves: no prefix of another).
        self.variables = sorted(
            p for p in used if not any(other.startswith(p + ".") for other in used)
        )

    def problem(
        self,
        template: str,
        known: Mapping[str, str],
        params: Mapping[str, Any],
        item: Mapping[str, Any],
    ) -> str | None:
        """Why `template` cannot join the sweep, or None: too long, a syntax error, a variable
        the experiment's prompts do not use, the same text as a prompt in `known` (by name),
        or a failed render of the first pipeline stage with it for `item`."""
        if not template.strip():
            return "the template is empty"
        if len(template) > MAX_TEMPLATE_CHARS:
            return f"the template has {len(template):,} characters (at most {MAX_TEMPLATE_CHARS:,})"
        try:
            paths = variable_paths(template)
            compile_template(template)
        except TemplateError as exc:
            return f"template syntax error: {exc}"
        invented = sorted(p for p in paths if p not in self._allowed)
        if invented:
            uses = ", ".join(self.variables) or "no variables"
            return f"uses {', '.join(invented)}, which the experiment's prompts do not ({uses})"
        for name, text in known.items():
            if text.strip() == template.strip():
                return f"the same text as prompt {name!r}"
        return self._trial(template, params, item)

    def _trial(
        self, template: str, params: Mapping[str, Any], item: Mapping[str, Any]
    ) -> str | None:
        trial_name = "__proposal__"
        spec = self._spec.model_copy(
            update={"prompts": {**self._spec.prompts, trial_name: template}}
        )
        stage_params = {**self._spec.fixed_parameters(), **params, self._parameter: trial_name}
        try:
            templates = PipelineTemplates(spec)
            templates.render_stage(0, {**stage_params, **spec.pipeline[0].params}, item, {})
        # The template is the proposer's text: whatever its render raises rejects it (a
        # filter given a bad argument raises ValueError, not a template error).
        except Exception as exc:
            return f"does not render for a training item: {exc}"
        return None
