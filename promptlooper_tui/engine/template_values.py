"""Sizes of the values a template computes, checked before they are built: operators (`*`, `+`,
`**`, `%`), `str.format` and the string methods that can amplify (`replace`, `join`, padding).

Each check receives the running render's `RenderBudget` and refuses a result, a width or a
number over its limits (see `engine.sandbox`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2.sandbox import SandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace

from .template_budget import RenderBudget

# -- sizes ---------------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, set, frozenset, dict, Namespace, type({}.keys()), type({}.values()))


def measure(value: Any, limit: int) -> tuple[int, int]:
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


def printable(budget: RenderBudget, value: Any, what: str) -> int:
    """The printed size of `value`, refused when a list or dict would print too large."""
    if isinstance(value, str):
        return len(value)
    size = measure(value, budget.limits.value_size)[0]
    if size > budget.limits.value_size:
        budget.value(size, what)
    return size


def as_text(budget: RenderBudget, value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    printable(budget, value, what)
    return str(value)


# -- operators -----------------------------------------------------------------------------------

_SIZED = (str, list, tuple)
_PRINTF = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def _check_multiply(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, _SIZED):
        left, right = right, left
    if isinstance(left, _SIZED) and isinstance(right, int):
        budget.value(len(left) * max(right, 0), "'*' result")
    elif isinstance(left, int) and isinstance(right, int):
        budget.integer(left.bit_length() + right.bit_length(), "number")


def _check_add(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, _SIZED) and isinstance(right, _SIZED):
        budget.value(len(left) + len(right), "'+' result")
    elif isinstance(left, int) and isinstance(right, int):
        budget.integer(max(left.bit_length(), right.bit_length()) + 1, "number")


def _check_power(budget: RenderBudget, base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        # A lower bound of the result's bits: the true size is at most twice it.
        budget.integer((abs(base).bit_length() - 1) * exponent, "exponent")


def _check_modulo(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, str):
        check_printf(budget, left, right)


def check_printf(budget: RenderBudget, template: str, args: Any) -> None:
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
        total += padding + printable(budget, value, "'%' argument")
        if total > limit:
            budget.value(total, "'%' result")
    budget.value(total, "'%' result")


def _number(digits: str) -> int:
    """A width or precision written in a format string (capped: it only has to be refused)."""
    return int(digits) if len(digits) <= 18 else 10**18


BINOP_CHECKS: dict[str, Callable[[RenderBudget, Any, Any], None]] = {
    "*": _check_multiply,
    "+": _check_add,
    "**": _check_power,
    "%": _check_modulo,
}


# -- str.format ----------------------------------------------------------------------------------


class BoundedFormatter(SandboxedFormatter):
    """Jinja's sandboxed `str.format`, refusing wide fields and large results before each field."""

    def __init__(self, env: SandboxedEnvironment, budget: RenderBudget, **kwargs: Any) -> None:
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
        self._size += padding + printable(budget, value, "format() argument")
        budget.value(self._size, "format() result")
        return super().format_field(value, format_spec)


class BoundedEscapeFormatter(BoundedFormatter, SandboxedEscapeFormatter):
    """The bounded formatter for autoescaped templates (HTML-escaping what it formats)."""


# -- string methods ------------------------------------------------------------------------------


def _width_method(
    budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    width = args[0] if args else 0
    budget.argument(width, f"{name}() width")
    budget.value(max(len(text), width if isinstance(width, int) else 0), f"{name}() result")
    return args


def replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(old, str) and isinstance(new, str)):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _replace_method(
    budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    if len(args) >= 2:
        count = args[2] if len(args) > 2 else -1
        budget.value(replace_size(text, args[0], args[1], count), "replace() result")
    return args


def _join_method(
    budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    if len(args) != 1:
        return args
    items = list(args[0])
    size = sum(len(item) for item in items if isinstance(item, str))
    budget.value(size + max(len(items) - 1, 0) * len(text), "join() result")
    return (items,)


def _expandtabs_method(
    budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    tabsize = args[0] if args else 8
    budget.argument(tabsize, "expandtabs() tab size")
    if isinstance(tabsize, int):
        budget.value(len(text) + text.count("\t") * max(tabsize, 0), "expandtabs() result")
    return args


def _translate_method(
    budget: RenderBudget, text: str, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    table = args[0] if args else None
    widest = 1
    if isinstance(table, Mapping):
        widest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
    budget.value(len(text) * max(widest, 1), "translate() result")
    return args


_StrMethodCheck = Callable[[RenderBudget, str, str, tuple[Any, ...]], tuple[Any, ...]]
STR_METHOD_CHECKS: dict[str, _StrMethodCheck] = {
    "center": _width_method,
    "ljust": _width_method,
    "rjust": _width_method,
    "zfill": _width_method,
    "replace": _replace_method,
    "join": _join_method,
    "expandtabs": _expandtabs_method,
    "translate": _translate_method,
}
