"""The Jinja environment templates render in: sandboxed, and with every render's work bounded.

Templates come from experiment files, which may come from untrusted callers (DESIGN §9).
Jinja's sandbox keeps them away from Python internals; this module keeps them from freezing or
exhausting the process, with the budget in `template_budget`, the checks of computed values in
`template_values` and the bounded filters in `template_filters`. Each render
(`BoundedTemplate.render`, prompts rendered inside it included) gets a budget of
`TemplateLimits`:

- loop iterations: every iteration of every `{% for %}` (recursive loops too) is counted, by
  wrapping each loop's iterable when the template is compiled; `range()` is capped on its own;
- values: `*`, `+` and `~` on strings and lists, `%` and `str.format`, and the string methods
  and filters that can amplify (`replace`, `join`, `center`, `indent`, `wordwrap`...) are
  checked BEFORE they run: their result may not exceed `value_size`, nor may a width, a
  precision or a size argument; printing a list or dict counts its nested size;
- numbers: `**`, `*` and `+` on integers may not make one of more than `integer_digits` digits;
- recursion: macro calls nest at most `macro_depth` deep (Python's RecursionError is caught);
- work: every character the render builds (printed values, checked results, loop bodies' text)
  counts towards `built_chars`, and the render stops after `seconds` of wall-clock time;
- output: rendering stops once the output exceeds `output_chars`.

Past any limit rendering raises `TemplateLimitExceeded`, whose message names the limit.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from ..domain.errors import TemplateLimitExceeded
from .template_budget import (
    ACTIVE_BUDGET,
    DEFAULT_LIMITS,
    RenderBudget,
    TemplateLimits,
    current_budget,
)
from .template_filters import (
    BOUNDED_GLOBALS,
    CONCAT_FILTER,
    LOOP_FILTER,
    bounded_filters,
    counted,
    finalize,
)
from .template_values import (
    BINOP_CHECKS,
    STR_METHOD_CHECKS,
    BoundedEscapeFormatter,
    BoundedFormatter,
)

_TEMPLATE_NUMBERS = itertools.count(1)


class _Instrument(NodeTransformer):
    """Rewrites a parsed template so its loops count iterations and its `~` checks sizes."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        literal = sum(len(data.data) for data in _own_text(node.body))
        node.iter = nodes.Filter(
            node.iter, LOOP_FILTER, [nodes.Const(literal)], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def _own_text(body: list[nodes.Node]) -> Iterator[nodes.TemplateData]:
    """The literal text of a loop body, not counting nested loops (they count their own)."""
    for node in body:
        if isinstance(node, nodes.TemplateData):
            yield node
        elif not isinstance(node, nodes.For):
            yield from _own_text(list(node.iter_child_nodes()))


class BoundedTemplate(Template):
    """A template whose `render` runs within its `limits` (see the module docstring)."""

    limits: TemplateLimits = DEFAULT_LIMITS

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render; raises TemplateLimitExceeded past a limit. Renders inside a render (lazy
        prompts) share its loop, work, depth and time budget; each counts its own output."""
        outer = ACTIVE_BUDGET.get()
        budget = outer if outer is not None else RenderBudget(self.limits)
        token = ACTIVE_BUDGET.set(budget) if outer is None else None
        limit = budget.limits.output_chars
        try:
            parts = []
            size = 0
            for part in self.root_render_func(self.new_context(dict(*args, **kwargs))):
                size += len(part)
                if size > limit:
                    raise TemplateLimitExceeded(f"template output larger than {limit:,} characters")
                parts.append(part)
            return "".join(parts)
        except RecursionError:
            raise TemplateLimitExceeded("template recursion too deep") from None
        except Exception:
            return self.environment.handle_exception()
        finally:
            if token is not None:
                ACTIVE_BUDGET.reset(token)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """The bounded render as a single chunk (Jinja's streaming would bypass the budget)."""
        yield self.render(*args, **kwargs)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with undefined names as errors and every render bounded."""

    intercepted_binops = frozenset(BINOP_CHECKS)
    template_class = BoundedTemplate

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            finalize=finalize,
        )
        self.globals.update(BOUNDED_GLOBALS)
        self.filters.update(bounded_filters(self.filters))

    def compile_bounded(
        self, source: str, limits: TemplateLimits = DEFAULT_LIMITS
    ) -> BoundedTemplate:
        """Compile `source` to a template rendering within `limits`.

        Raises jinja2.TemplateSyntaxError. Compiling folds constant expressions, so it runs
        within `limits` too: a constant that would break one is left for the render to refuse.
        """
        token = ACTIVE_BUDGET.set(RenderBudget(limits))
        # A name of its own, which tracebacks keep: a failure names the template it came from.
        filename = f"<template {next(_TEMPLATE_NUMBERS)}>"
        try:
            code = self.compile(source, filename=filename)
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
        finally:
            ACTIVE_BUDGET.reset(token)
        assert isinstance(template, BoundedTemplate)
        template.limits = limits
        return template

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every template, however compiled, counts its loops and checks its `~`."""
        tree = _Instrument().visit(super()._parse(source, name, filename))
        assert isinstance(tree, nodes.Template)
        return tree

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Compile within the caller's limits (or the defaults): constant folding runs code."""
        if ACTIVE_BUDGET.get() is not None:
            return super().compile(*args, **kwargs)
        token = ACTIVE_BUDGET.set(RenderBudget(DEFAULT_LIMITS))
        try:
            return super().compile(*args, **kwargs)
        finally:
            ACTIVE_BUDGET.reset(token)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        BINOP_CHECKS[operator](current_budget(), left, right)
        return self.binop_table[operator](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: string methods that can amplify are checked first; macro and
        recursive-loop calls count towards the depth limit (and their loops iterations)."""
        kind = type(obj)
        if kind is BuiltinMethodType and type(obj.__self__) in (str, Markup):
            check = STR_METHOD_CHECKS.get(obj.__name__)
            if check is not None:
                args = check(current_budget(), obj.__self__, obj.__name__, args)
            return super().call(context, obj, *args, **kwargs)
        if kind is not Macro and kind is not LoopContext:
            return super().call(context, obj, *args, **kwargs)
        budget = current_budget()
        if kind is LoopContext and args:
            args = (counted(args[0], budget, 0), *args[1:])
        budget.enter_call()
        try:
            result = super().call(context, obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        if isinstance(result, str):
            budget.value(len(result), "macro result")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed `str.format` / `format_map`, with field widths and sizes bounded."""
        if (
            not isinstance(value, MethodType | BuiltinMethodType)
            or value.__name__ not in ("format", "format_map")
            or not isinstance(value.__self__, str)
        ):
            return None
        f_self: str = value.__self__
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            budget = current_budget()
            formatter: BoundedFormatter
            if isinstance(f_self, Markup):
                formatter = BoundedEscapeFormatter(self, budget, escape=f_self.escape)
            else:
                formatter = BoundedFormatter(self, budget)
            return type(f_self)(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)


#: The one environment every PromptLooper template compiles in.
SANDBOX = BoundedSandbox()
