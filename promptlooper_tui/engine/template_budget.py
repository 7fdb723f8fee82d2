"""The budget of one template render: the limits it runs within and the work done so far.

`TemplateLimits` says what one render may do (DESIGN §9); a `RenderBudget` counts what a render
(with the prompts it renders inside) has done, and raises `TemplateLimitExceeded`, naming the
limit, once it is past one. The running render's budget is `ACTIVE_BUDGET`, so that the checks
Jinja calls from inside a template (operators, filters, loops) find it.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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


class RenderBudget:
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


ACTIVE_BUDGET: ContextVar[RenderBudget | None] = ContextVar(
    "promptlooper_template_budget", default=None
)


def current_budget() -> RenderBudget:
    """The running render's budget; outside any render (never in PromptLooper), a fresh one."""
    budget = ACTIVE_BUDGET.get()
    return budget if budget is not None else RenderBudget(DEFAULT_LIMITS)
