"""Jinja's filters and globals as a bounded render uses them: each checks its input against the
running render's budget before it runs, and counts what it builds; plus the two internal
filters compiled templates call (a loop's iteration counter, and the `~` operator).
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import markup_join, str_join
from jinja2.utils import _PassArg, generate_lorem_ipsum, pass_context, pass_eval_context

from ..domain.errors import TemplateLimitExceeded
from .template_budget import ACTIVE_BUDGET, RenderBudget, current_budget
from .template_values import as_text, check_printf, measure, printable, replace_size

# The internal filters the compiled templates call; names no template can spell.
LOOP_FILTER = "promptlooper:loop"
CONCAT_FILTER = "promptlooper:concat"


def _check_stringified(budget: RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
    printable(budget, value, "filtered value")
    return value


def _check_center(budget: RenderBudget, value: Any, width: Any = 80) -> Any:
    budget.argument(width, "center() width")
    printable(budget, value, "filtered value")
    return value


def _check_indent(
    budget: RenderBudget, value: Any, width: Any = 4, *args: Any, **kwargs: Any
) -> Any:
    budget.argument(width, "indent() width")
    text = as_text(budget, value, "filtered value")
    step = width if isinstance(width, int) else len(str(width))
    budget.value(len(text) + (text.count("\n") + 1) * max(step, 0), "indent() result")
    return text


def _check_wordwrap(
    budget: RenderBudget,
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    budget.argument(width, "wordwrap() width")
    text = as_text(budget, value, "filtered value")
    lines = text.count(" ") + text.count("\n") + len(text) // max(width, 1) + 1
    breaks = len(wrapstring) if isinstance(wrapstring, str) else 2
    budget.value(len(text) + lines * breaks, "wordwrap() result")
    return text


def _check_truncate(
    budget: RenderBudget, value: Any, length: Any = 255, *args: Any, **kwargs: Any
) -> Any:
    budget.argument(length, "truncate() length")
    budget.argument(kwargs.get("leeway"), "truncate() leeway")
    printable(budget, value, "filtered value")
    return value


def _check_format(budget: RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
    text = as_text(budget, value, "filtered value")
    check_printf(budget, text, kwargs or args)
    return text


def _check_replace(
    budget: RenderBudget, value: Any, old: Any = "", new: Any = "", count: Any = None
) -> Any:
    text = as_text(budget, value, "filtered value")
    budget.value(replace_size(text, old, new, count), "replace() result")
    return value


def _check_count(parameter: str, what: str) -> Callable[..., Any]:
    def check(budget: RenderBudget, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget.argument(args[0] if args else kwargs.get(parameter), what)
        return value

    return check


def _check_tojson(budget: RenderBudget, value: Any, indent: Any = None) -> Any:
    budget.argument(indent, "tojson() indent")
    size, depth = measure(value, budget.limits.value_size)
    step = indent if isinstance(indent, int) else 0
    budget.value(size + size * max(step, 0) * depth, "tojson() result")
    return value


def _check_pprint(budget: RenderBudget, value: Any) -> Any:
    size, depth = measure(value, budget.limits.value_size)
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
        budget = current_budget()
        value = check(budget, *args[skip:], **kwargs)
        result = func(*args[:skip], value, *args[skip + 1 :], **kwargs)
        if isinstance(result, str):
            budget.built += len(result)
        return result

    return bounded


@pass_eval_context
def _bounded_join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """Jinja's `join`, refusing a result over the size limit before building it."""
    budget = current_budget()
    items = list(value)
    parts = (
        items if attribute is None else map(make_attrgetter(eval_ctx.environment, attribute), items)
    )
    size = max(len(items) - 1, 0) * len(str(d))
    for part in parts:
        size += len(part) if type(part) is str else printable(budget, part, "joined value")
    budget.value(size, "join() result")
    return sync_do_join(eval_ctx, items, d, attribute)


@pass_context
def _count_loop(context: Any, iterable: Iterable[Any], literal: int = 0) -> Iterator[Any]:
    """The iterable of a `{% for %}` loop, counting each iteration (and the body's text)."""
    return counted(iterable, current_budget(), literal)


def counted(iterable: Iterable[Any], budget: RenderBudget, literal: int) -> Iterator[Any]:
    for item in iterable:
        budget.loops += 1
        budget.built += literal
        if budget.loops >= budget.next_check:
            budget.tick()
        yield item


@pass_eval_context
def _concat(eval_ctx: Any, parts: list[Any]) -> str:
    """The `~` operator, refusing a result over the size limit before building it."""
    budget = current_budget()
    budget.value(sum(printable(budget, part, "'~' operand") for part in parts), "'~' result")
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    limit = current_budget().limits.range_size
    try:
        size = len(numbers)
    except OverflowError:
        size = limit + 1
    if size > limit:
        raise TemplateLimitExceeded(f"template work limit: range() of more than {limit:,} items")
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's `lipsum`, refused when its text would be too large."""
    budget = current_budget()
    low, high = min, max
    for number in (n, low, high):
        budget.argument(number, "lipsum() argument")
    # A lorem ipsum word is under 12 characters with its separator.
    budget.value(abs(n) * builtins.max(abs(low), abs(high)) * 12, "lipsum() result")
    return generate_lorem_ipsum(n, html, low, high)


def finalize(value: Any) -> Any:
    """Every `{{ ... }}` passes here before it turns into text: count (and bound) its size."""
    budget = ACTIVE_BUDGET.get()
    if budget is not None:
        if type(value) is str:
            budget.built += len(value)
        else:
            budget.built += printable(budget, value, "printed value")
        if budget.built > budget.limits.built_chars:
            budget.check_built()
    return value


#: The globals that replace Jinja's own.
BOUNDED_GLOBALS: dict[str, Callable[..., Any]] = {
    "range": _bounded_range,
    "lipsum": _bounded_lipsum,
}


def bounded_filters(standard: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The filters that replace Jinja's `standard` ones, and the internal ones."""
    filters = {
        name: _bounded_filter(standard[name], check) for name, check in _FILTER_CHECKS.items()
    }
    filters["join"] = _bounded_join
    filters[LOOP_FILTER] = _count_loop
    filters[CONCAT_FILTER] = _concat
    return filters
