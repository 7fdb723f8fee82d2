"""Markdown pieces for the report: tables and one-line text that no value from a sweep can
break or fill with markup."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table of these rows, every cell made safe (`cell`)."""

    def row_line(cells: Iterable[Any]) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    return [row_line(headers), "|" + "---|" * len(headers), *(row_line(row) for row in rows)]


def cell(text: Any) -> str:
    """One table cell: HTML escaped, line breaks flattened, backslashes and pipes escaped
    (backslashes first: a value's own backslash before a pipe would cancel the pipe's escape),
    so no value breaks the table or puts markup into the page a reader renders."""
    return line(text).replace("\\", "\\\\").replace("|", "\\|")


def line(text: Any) -> str:
    """Text from the sweep (names, values, messages) for one line of Markdown: its HTML
    escaped and its whitespace runs, line breaks included, made single spaces."""
    return " ".join(no_html(str(text)).split())


def no_html(text: str) -> str:
    """`text` with `&`, `<` and `>` as entities: raw HTML in a value shows as text."""
    return html.escape(text, quote=False)


def fenced(text: str, info: str = "", *, most_lines: int) -> list[str]:
    """`text` as a fenced code block (its first `most_lines` lines, then how many more): the
    fence is longer than any backtick run inside, so no text can close it early, and inside
    it raw HTML shows as text."""
    lines = text.splitlines() or [""]
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    block = [fence + info, *lines[:most_lines], fence]
    if len(lines) > most_lines:
        block.append(f"({len(lines) - most_lines} more lines not shown)")
    return block


def value(parameter: Any) -> str:
    """A parameter's value as text: strings as they are, anything else as JSON."""
    return parameter if isinstance(parameter, str) else json.dumps(parameter, ensure_ascii=False)
