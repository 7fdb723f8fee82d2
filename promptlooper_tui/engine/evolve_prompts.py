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
#: Names a template may read without the experiment's prompts using them: a for loop's
#: `loop.index`, a macro's `caller`, and the sandbox's own helpers (`range`, `namespace`...),
#: which hold no data and whose use is bounded like any render.
_ALWAYS = frozenset({"loop", "caller", *SANDBOX.globals})


def variable_paths(source: str) -> set[str]:
    """The dotted variables a template reads (`item.input.change`, `params.tone`), outermost
    chains only; names the template binds itself ({% set %}, {% for %}) are left out.
    Raises jinja2.TemplateSyntaxError."""
    tree = SANDBOX.parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    bound.update(macro.name for macro in tree.find_all(nodes.Macro))
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


def read_variables(templates: Iterable[str]) -> list[str]:
    """The variables the given templates read, each once and none that another extends:
    `item.input.change` alone where they read `item.input.change` and `item.input`."""
    paths = {path for source in templates for path in variable_paths(source)}
    outer = {path for path in paths if not any(path.startswith(f"{o}.") for o in paths)}
    return sorted(outer)


def may_read(path: str, variables: Iterable[str]) -> bool:
    """Whether a template may read `path`: one of `variables` or a part of one
    (`item.input.change.upper`), or a loop's or macro's own name. Not what contains one:
    `item` holds the item's reference answer too."""
    if path.split(".", 1)[0] in _ALWAYS:
        return True
    return any(path == v or path.startswith(f"{v}.") for v in variables)


class ProposalCheck:
    """Checks proposed templates against an experiment: its variables, and a trial render."""

    def __init__(self, spec: ExperimentSpec, parameter: str) -> None:
        self._spec = spec
        self._parameter = parameter
        #: The variables the experiment's prompts read: the only ones a proposal may.
        self.variables = read_variables(spec.prompts.values())

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
        invented = sorted(p for p in paths if not may_read(p, self.variables))
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
        stage_params.update(spec.pipeline[0].params)
        try:
            templates = PipelineTemplates(spec)
            # On its own first, so that its own error is what the reason says, then in the
            # stage that uses it.
            templates.prompts[trial_name].render(templates.context(stage_params, item, {}))
            templates.render_stage(0, stage_params, item, {})
        # The template is the proposer's text: whatever its render raises rejects it (a
        # filter given a bad argument raises ValueError, not a template error).
        except Exception as exc:
            return f"does not render for a training item: {exc}"
        return None
