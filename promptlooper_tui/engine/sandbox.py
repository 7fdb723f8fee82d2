"""The Jinja environment templates render in: sandboxed, and with every render's work bounded.

Templates come from experiment files, which may come from untrusted callers (DESIGN §9).
Jinja's sandbox keeps them away from Python internals; this module keeps them from freezing or
exhausting the process. Each render (`BoundedTemplate.render`, prompts rendered inside it
included) gets a budget of `TemplateLimits`:

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

import builtins
import functools
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from ..domain.errors import TemplateLimitExceeded

#: Iterations of all `{% for %}` loops of one render, together.
MAX_LOOP_ITERATIONS = 100_000
#: Items one `range()` may have (Jinja's own sandbox allows 100,000).
MAX_RANGE = 100_000
#: Characters (or list items) one computed value may have: a `*`, `+`, `~`, `%`, `format`,
#: `replace`, `join` or padding result, a width or precision, a printed list or dict.
MAX_VALUE_SIZE = 1_000_000
#: Decimal digits an integer computed by `**`, `*` or `+` may have (Python's own limit for
#: turning an integer into text).
MAX_INTEGER_DIGITS = 4_300
#: Macro calls (and recursive-loop calls) nested inside one another.
MAX_MACRO_DEPTH = 100
#: Characters one render may output.
MAX_OUTPUT_CHARS = 2_000_000
#: Characters one render may build in all: printed values, checked results, loop bodies' text.
MAX_BUILT_CHARS = 50_000_000
#: Wall-clock seconds one render may take.
MAX_RENDER_SECONDS = 2.0

# The clock and the built-characters total are checked every this many loop iterations (and on
# every macro call and large value), so a loop's cheap iterations stay cheap.
_CHECK_EVERY = 64
_LARGE_VALUE = 65_536
_BITS_PER_DIGIT = math.log2(10)
# The internal filters the compiled templates call; a name no template can spell.
_LOOP_FILTER = "promptlooper:loop"
_TEMPLATE_NUMBERS = itertools.count(1)
_CONCAT_FILTER = "promptlooper:concat"


@dataclass(frozen=True)
class TemplateLimits:
    """What one render may do; the defaults are the module's MAX_* constants."""

    loop_iterations: int = MAX_LOOP_ITERATIONS
    range_size: int = MAX_RANGE
    value_size: int = MAX_VALUE_SIZE
    integer_digits: int = MAX_INTEGER_DIGITS
    macro_depth: int = MAX_MACRO_DEPTH
    output_chars: int = MAX_OUTPUT_CHARS
    built_chars: int = MAX_BUILT_CHARS
    seconds: float = MAX_RENDER_SECONDS


DEFAULT_LIMITS = TemplateLimits()


class _RenderBudget:
    """The work one render (with the prompts it renders inside) has done so far."""

    __slots__ = ("built", "deadline", "depth", "limits", "loops", "next_check")

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.loops = 0
        self.built = 0
        self.depth = 0
        self.deadline = time.monotonic() + limits.seconds
        self.next_check = min(_CHECK_EVERY, limits.loop_iterations + 1)

    def tick(self) -> None:
        """The periodic check of a loop: the iteration count, the built total and the clock."""
        limits = self.limits
        if self.loops > limits.loop_iterations:
            raise TemplateLimitExceeded(
                f"template work limit: more than {limits.loop_iterations:,} loop iterations"
            )
        self.next_check = min(self.loops + _CHECK_EVERY, limits.loop_iterations + 1)
        self.check_built()
        self.check_clock()

    def check_built(self) -> None:
        if self.built > self.limits.built_chars:
            raise TemplateLimitExceeded(
                f"template work limit: more than {self.limits.built_chars:,} characters built"
            )

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(
                f"template work limit: rendering took longer than {self.limits.seconds:g} s"
            )

    def value(self, size: int, what: str) -> None:
        """Account for a value of `size` characters or items about to be built."""
        if size > self.limits.value_size:
            raise TemplateLimitExceeded(
                f"template value too large: {what} over {self.limits.value_size:,} "
                "characters or items"
            )
        self.built += size
        if size >= _LARGE_VALUE:
            self.check_built()
            self.check_clock()

    def argument(self, number: Any, what: str) -> None:
        """Refuse a width, length or count argument larger than the value size limit."""
        if isinstance(number, int) and abs(number) > self.limits.value_size:
            raise TemplateLimitExceeded(
                f"template value too large: {what} {number:,} is over {self.limits.value_size:,}"
            )

    def integer(self, bits: float, what: str) -> None:
        if bits > self.limits.integer_digits * _BITS_PER_DIGIT:
            raise TemplateLimitExceeded(
                f"template {what} too large: the result would have over "
                f"{self.limits.integer_digits:,} digits"
            )

    def enter_call(self) -> None:
        self.depth += 1
        if self.depth > self.limits.macro_depth:
            raise TemplateLimitExceeded(
                f"template recursion too deep: more than {self.limits.macro_depth:,} "
                "nested macro calls"
            )
        self.check_clock()


_BUDGET: ContextVar[_RenderBudget | None] = ContextVar("promptlooper_template_budget", default=None)


def _current() -> _RenderBudget:
    """The running render's budget; outside any render (never in PromptLooper), a fresh one."""
    budget = _BUDGET.get()
    return budget if budget is not None else _RenderBudget(DEFAULT_LIMITS)


# -- sizes ---------------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, set, frozenset, dict, Namespace, type({}.keys()), type({}.values()))


def _measure(value: Any, limit: int) -> tuple[int, int]:
    """(about how many characters `value` prints as, how deeply it nests), stopping past `limit`.

    Shared references count every time they print, so `[[x, x], [x, x]]`-style doubling is
    seen before anything turns it into text.
    """
    if isinstance(value, str):
        return len(value), 0
    if not isinstance(value, _CONTAINERS):
        return 1, 0
    size = depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and size <= limit:
        item, level = stack.pop()
        if isinstance(item, str):
            size += len(item) + 4  # quotes and separator
            continue
        if isinstance(item, Namespace):
            item = item._Namespace__attrs  # type: ignore[attr-defined]
        if isinstance(item, dict):
            children: Iterable[Any] = (part for pair in item.items() for part in pair)
        elif isinstance(item, _CONTAINERS):
            children = item
        else:
            size += 3
            continue
        size += 2
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in children)
    return size, depth


def _printable(budget: _RenderBudget, value: Any, what: str) -> int:
    """The printed size of `value`, refused when a list or dict would print too large."""
    if isinstance(value, str):
        return len(value)
    size = _measure(value, budget.limits.value_size)[0]
    if size > budget.limits.value_size:
        budget.value(size, what)
    return size


def _text(budget: _RenderBudget, value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    _printable(budget, value, what)
    return str(value)


# -- operators -----------------------------------------------------------------------------------

_SIZED = (str, list, tuple)
_PRINTF = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def _check_multiply(budget: _RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, _SIZED):
        left, right = right, left
    if isinstance(left, _SIZED) and isinstance(right, int):
        budget.value(len(left) * max(right, 0), "'*' result")
    elif isinstance(left, int) and isinstance(right, int):
        budget.integer(left.bit_length() + right.bit_length(), "number")


def _check_add(budget: _RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, _SIZED) and isinstance(right, _SIZED):
        budget.value(len(left) + len(right), "'+' result")
    elif isinstance(left, int) and isinstance(right, int):
        budget.integer(max(left.bit_length(), right.bit_length()) + 1, "number")


def _check_power(budget: _RenderBudget, base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        # A lower bound of the result's bits: the true size is at most twice it.
        budget.integer((abs(base).bit_length() - 1) * exponent, "exponent")


def _check_modulo(budget: _RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_printf(budget, left, right)


def _check_printf(budget: _RenderBudget, template: str, args: Any) -> None:
    """Refuse `template % args` when a width or precision, or the result, would be too large."""
    limit = budget.limits.value_size
    mapping = args if isinstance(args, Mapping) else None
    values = iter(args if isinstance(args, tuple) else (args,))
    total = len(template)
    for match in _PRINTF.finditer(template):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        padding = 0
        for number in (width, precision):
            if number == "*":
                star = next(values, 0)
                padding += abs(star) if isinstance(star, int) else 0
            elif number:
                padding += _number(number)
        budget.argument(padding, "'%' width or precision")
        if key is not None and mapping is not None:
            value = mapping.get(key[1:-1], "")
        else:
            value = next(values, "")
        total += padding + _printable(budget, value, "'%' argument")
        if total > limit:
            budget.value(total, "'%' result")
    budget.value(total, "'%' result")


def _number(digits: str) -> int:
    """A width or precision written in a format string (capped: it only has to be refused)."""
    return int(digits) if len(digits) <= 18 else 10**18


_BINOP_CHECKS: dict[str, Callable[[_RenderBudget, Any, Any], None]] = {
    "*": _check_multiply,
    "+": _check_add,
    "**": _check_power,
    "%": _check_modulo,
}


# -- str.format ----------------------------------------------------------------------------------


class _BoundedFormatter(SandboxedFormatter):
    """Jinja's sandboxed `str.format`, refusing wide fields and large results before each field."""

    def __init__(self, env: BoundedSandbox, budget: _RenderBudget, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._budget = budget
        self._size = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._size = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = self._budget
        padding = sum(_number(number) for number in _DIGITS.findall(format_spec))
        budget.argument(padding, "format() width or precision")
        self._size += padding + _printable(budget, value, "format() argument")
        budget.value(self._size, "format() result")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


# -- string methods ------------------------------------------------------------------------------


def _width_method(
    budget: _RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    width = args[0] if args else 0
    budget.argument(width, f"{name}() width")
    budget.value(max(len(text), width if isinstance(width, int) else 0), f"{name}() result")
    return args


def _replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(old, str) and isinstance(new, str)):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _replace_method(
    budget: _RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    if len(args) >= 2:
        count = args[2] if len(args) > 2 else -1
        budget.value(_replace_size(text, args[0], args[1], count), "replace() result")
    return args


def _join_method(
    budget: _RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    if len(args) != 1:
        return args
    items = list(args[0])
    size = sum(len(item) for item in items if isinstance(item, str))
    budget.value(size + max(len(items) - 1, 0) * len(text), "join() result")
    return (items,)


def _expandtabs_method(
    budget: _RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    tabsize = args[0] if args else 8
    budget.argument(tabsize, "expandtabs() tab size")
    if isinstance(tabsize, int):
        budget.value(len(text) + text.count("\t") * max(tabsize, 0), "expandtabs() result")
    return args


def _translate_method(
    budget: _RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    table = args[0] if args else None
    widest = 1
    if isinstance(table, Mapping):
        widest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
    budget.value(len(text) * max(widest, 1), "translate() result")
    return args


_StrMethodCheck = Callable[[_RenderBudget, str, str, tuple[Any, ...]], tuple[Any, ...]]
_STR_METHOD_CHECKS: dict[str, _StrMethodCheck] = {
    "center": _width_method,
    "ljust": _width_method,
    "rjust": _width_method,
    "zfill": _width_method,
    "replace": _replace_method,
    "join": _join_method,
    "expandtabs": _expandtabs_method,
    "translate": _translate_method,
}


# -- filters -------------------------------------------------------------------------------------


def _check_stringified(budget: _RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
    _printable(budget, value, "filtered value")
    return value


def _check_center(budget: _RenderBudget, value: Any, width: Any = 80) -> Any:
    budget.argument(width, "center() width")
    _printable(budget, value, "filtered value")
    return value


def _check_indent(
    budget: _RenderBudget, value: Any, width: Any = 4, *args: Any, **kwargs: Any
) -> Any:
    budget.argument(width, "indent() width")
    text = _text(budget, value, "filtered value")
    step = width if isinstance(width, int) else len(str(width))
    budget.value(len(text) + (text.count("\n") + 1) * max(step, 0), "indent() result")
    return text


def _check_wordwrap(
    budget: _RenderBudget,
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    budget.argument(width, "wordwrap() width")
    text = _text(budget, value, "filtered value")
    lines = text.count(" ") + text.count("\n") + len(text) // max(width, 1) + 1
    breaks = len(wrapstring) if isinstance(wrapstring, str) else 2
    budget.value(len(text) + lines * breaks, "wordwrap() result")
    return text


def _check_truncate(
    budget: _RenderBudget, value: Any, length: Any = 255, *args: Any, **kwargs: Any
) -> Any:
    budget.argument(length, "truncate() length")
    budget.argument(kwargs.get("leeway"), "truncate() leeway")
    _printable(budget, value, "filtered value")
    return value


def _check_format(budget: _RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
    text = _text(budget, value, "filtered value")
    _check_printf(budget, text, kwargs or args)
    return text


def _check_replace(
    budget: _RenderBudget, value: Any, old: Any = "", new: Any = "", count: Any = None
) -> Any:
    text = _text(budget, value, "filtered value")
    budget.value(_replace_size(text, old, new, count), "replace() result")
    return value


def _check_count(parameter: str, what: str) -> Callable[..., Any]:
    def check(budget: _RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget.argument(args[0] if args else kwargs.get(parameter), what)
        return value

    return check


def _check_tojson(budget: _RenderBudget, value: Any, indent: Any = None) -> Any:
    budget.argument(indent, "tojson() indent")
    size, depth = _measure(value, budget.limits.value_size)
    step = indent if isinstance(indent, int) else 0
    budget.value(size + size * max(step, 0) * depth, "tojson() result")
    return value


def _check_pprint(budget: _RenderBudget, value: Any) -> Any:
    size, depth = _measure(value, budget.limits.value_size)
    budget.value(size * (1 + depth), "pprint() result")
    return value


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "truncate": _check_truncate,
    "format": _check_format,
    "replace": _check_replace,
    "batch": _check_count("linecount", "batch() line count"),
    "slice": _check_count("slices", "slice() count"),
    "tojson": _check_tojson,
    "pprint": _check_pprint,
    **dict.fromkeys(
        [
            "capitalize",
            "e",
            "escape",
            "forceescape",
            "lower",
            "safe",
            "string",
            "striptags",
            "title",
            "trim",
            "upper",
            "urlencode",
            "urlize",
            "wordcount",
            "xmlattr",
        ],
        _check_stringified,
    ),
}


def _bounded_filter(func: Callable[..., Any], check: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, checked by `check(budget, value, *args)` before it runs, its result counted."""
    skip = 0 if _PassArg.from_obj(func) is None else 1

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _current()
        value = check(budget, *args[skip:], **kwargs)
        result = func(*args[:skip], value, *args[skip + 1 :], **kwargs)
        if isinstance(result, str):
            budget.built += len(result)
        return result

    return bounded


@pass_eval_context
def _bounded_join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """Jinja's `join`, refusing a result over the size limit before building it."""
    budget = _current()
    items = list(value)
    parts = (
        items if attribute is None else map(make_attrgetter(eval_ctx.environment, attribute), items)
    )
    size = max(len(items) - 1, 0) * len(str(d))
    for part in parts:
        size += len(part) if type(part) is str else _printable(budget, part, "joined value")
    budget.value(size, "join() result")
    return sync_do_join(eval_ctx, items, d, attribute)


@pass_context
def _count_loop(context: Any, iterable: Iterable[Any], literal: int = 0) -> Iterator[Any]:
    """The iterable of a `{% for %}` loop, counting each iteration (and the body's text)."""
    return _counted(iterable, _current(), literal)


def _counted(iterable: Iterable[Any], budget: _RenderBudget, literal: int) -> Iterator[Any]:
    for item in iterable:
        budget.loops += 1
        budget.built += literal
        if budget.loops >= budget.next_check:
            budget.tick()
        yield item


@pass_eval_context
def _concat(eval_ctx: Any, parts: list[Any]) -> str:
    """The `~` operator, refusing a result over the size limit before building it."""
    budget = _current()
    budget.value(sum(_printable(budget, part, "'~' operand") for part in parts), "'~' result")
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    limit = _current().limits.range_size
    try:
        size = len(numbers)
    except OverflowError:
        size = limit + 1
    if size > limit:
        raise TemplateLimitExceeded(f"template work limit: range() of more than {limit:,} items")
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's `lipsum`, refused when its text would be too large."""
    budget = _current()
    low, high = min, max
    for number in (n, low, high):
        budget.argument(number, "lipsum() argument")
    # A lorem ipsum word is under 12 characters with its separator.
    budget.value(abs(n) * builtins.max(abs(low), abs(high)) * 12, "lipsum() result")
    return generate_lorem_ipsum(n, html, low, high)


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}` passes here before it turns into text: count (and bound) its size."""
    budget = _BUDGET.get()
    if budget is not None:
        if type(value) is str:
            budget.built += len(value)
        else:
            budget.built += _printable(budget, value, "printed value")
        if budget.built > budget.limits.built_chars:
            budget.check_built()
    return value


# -- compiling -----------------------------------------------------------------------------------


class _Instrument(NodeTransformer):
    """Rewrites a parsed template so its loops count iterations and its `~` checks sizes."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        literal = sum(len(data.data) for data in _own_text(node.body))
        node.iter = nodes.Filter(
            node.iter, _LOOP_FILTER, [nodes.Const(literal)], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


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
        outer = _BUDGET.get()
        budget = outer if outer is not None else _RenderBudget(self.limits)
        token = _BUDGET.set(budget) if outer is None else None
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
                _BUDGET.reset(token)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """The bounded render as a single chunk (Jinja's streaming would bypass the budget)."""
        yield self.render(*args, **kwargs)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with undefined names as errors and every render bounded."""

    intercepted_binops = frozenset(_BINOP_CHECKS)
    template_class = BoundedTemplate

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            finalize=_finalize,
        )
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _bounded_filter(self.filters[name], check)
        self.filters["join"] = _bounded_join
        self.filters[_LOOP_FILTER] = _count_loop
        self.filters[_CONCAT_FILTER] = _concat

    def compile_bounded(
        self, source: str, limits: TemplateLimits = DEFAULT_LIMITS
    ) -> BoundedTemplate:
        """Compile `source` to a template rendering within `limits`.

        Raises jinja2.TemplateSyntaxError. Compiling folds constant expressions, so it runs
        within `limits` too: a constant that would break one is left for the render to refuse.
        """
        token = _BUDGET.set(_RenderBudget(limits))
        # A name of its own, which tracebacks keep: a failure names the template it came from.
        filename = f"<template {next(_TEMPLATE_NUMBERS)}>"
        try:
            code = self.compile(source, filename=filename)
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
        finally:
            _BUDGET.reset(token)
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
        if _BUDGET.get() is not None:
            return super().compile(*args, **kwargs)
        token = _BUDGET.set(_RenderBudget(DEFAULT_LIMITS))
        try:
            return super().compile(*args, **kwargs)
        finally:
            _BUDGET.reset(token)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _BINOP_CHECKS[operator](_current(), left, right)
        return self.binop_table[operator](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: string methods that can amplify are checked first; macro and
        recursive-loop calls count towards the depth limit (and their loops iterations)."""
        kind = type(obj)
        if kind is BuiltinMethodType and type(obj.__self__) in (str, Markup):
            check = _STR_METHOD_CHECKS.get(obj.__name__)
            if check is not None:
                args = check(_current(), obj.__self__, obj.__name__, args)
            return super().call(context, obj, *args, **kwargs)
        if kind is not Macro and kind is not LoopContext:
            return super().call(context, obj, *args, **kwargs)
        budget = _current()
        if kind is LoopContext and args:
            args = (_counted(args[0], budget, 0), *args[1:])
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
            budget = _current()
            formatter: _BoundedFormatter
            if isinstance(f_self, Markup):
                formatter = _BoundedEscapeFormatter(self, budget, escape=f_self.escape)
            else:
                formatter = _BoundedFormatter(self, budget)
            return type(f_self)(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)


#: The one environment every PromptLooper template compiles in.
SANDBOX = BoundedSandbox()
