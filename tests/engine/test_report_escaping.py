"""The Markdown report shows whatever a sweep holds as text: a config value, model, prompt name
or error message with `|`, backslashes, raw HTML or line breaks neither breaks a table (every
row keeps the header's column count) nor reaches the rendered page as markup."""

from __future__ import annotations

import html
import io
import re

import yaml

from promptlooper_tui.workbench import Workbench
from tests.fixtures.fake_llm import (
    FakeLLM,
    fake_llm_fixture,  # noqa: F401  (provides the `fake_llm` fixture)
    status,
)

from ..conftest import make_experiment

HOSTILE = 'pipe | back\\slash \\| <script>alert("x")</script> & <b>bold</b>\nsecond line'
MODEL = f"model {HOSTILE}"
PROMPT = "prompt <img src=x onerror=alert(1)> | \\"
ERROR = 'refused | back\\slash \\| <script>alert("e")</script> & more'


def split_row(line: str) -> list[str]:
    """The cells of a GFM table row: a backslash escapes the next character, so an escaped pipe
    stays inside its cell and an escaped backslash cannot escape the pipe after it."""
    assert line.startswith("|") and line.endswith("|"), line
    cells, cell, chars = [], "", iter(line[1:-1])
    for char in chars:
        if char == "\\":
            cell += char + next(chars, "")
        elif char == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += char
    return [*cells, cell]


def shown(cell: str) -> str:
    """What a Markdown renderer shows for a cell: escapes resolved, entities decoded."""
    return html.unescape(re.sub(r"\\(.)", r"\1", cell.strip()))


def tables(report: str) -> list[list[list[str]]]:
    """Every table of the report as rows of cells (the header first, the rule dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*report.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                current.append(split_row(line))
        elif current:
            found.append(current)
            current = []
    return found


async def test_hostile_values_neither_break_tables_nor_inject_html(
    workbench: Workbench, fake_llm: FakeLLM
) -> None:
    await workbench.add_endpoint("fake", fake_llm.base_url)
    spec = make_experiment(
        name="hostile",
        description="Reads <script>alert('d')</script> & friends",
        endpoint="fake",
        parameters={"model": [MODEL, "plain-model"], "prompt": [PROMPT], "note": [HOSTILE]},
        prompts={PROMPT: "Answer: {{ item.input.question }}"},
        pipeline=[{"name": "reply", "user": "{{ prompts[params.prompt] }}"}],
        sweep={"max_concurrency": 1},
    )
    # The first call of the sweep is refused with a message full of markup; the rest answer.
    fake_llm.script(status(400, ERROR))
    imported = await workbench.import_text(yaml.safe_dump(spec))
    summary = await workbench.run_sweep(await workbench.create_sweep(imported.id))
    assert summary.runs.failed == 1 and summary.runs.completed == 5, summary

    out = io.StringIO()
    await workbench.export("hostile", "report", out)
    report = out.getvalue()

    assert "<script" not in report.lower() and "<img" not in report and "<b>" not in report
    assert "&lt;script&gt;alert('d')&lt;/script&gt; &amp; friends" in report
    found = tables(report)
    assert len(found) == 4, report  # config space, leaderboard, distributions, failures
    for table in found:
        widths = {len(row) for row in table}
        assert widths == {len(table[0])}, table
    cells = {shown(cell) for table in found for row in table for cell in row}
    flat = " ".join(HOSTILE.split())
    assert any(f"model={' '.join(MODEL.split())}" in cell for cell in cells), cells
    # Fixed parameters are listed in the config space, each value a cell of its own.
    assert {flat, " ".join(PROMPT.split())} <= cells, cells
    assert any(ERROR in cell for cell in cells), cells
    # The config space lists the swept model values, line break flattened, as one cell.
    [space, *_] = found
    values = {shown(cell) for row in space for cell in row}
    assert f"{' '.join(MODEL.split())}, plain-model" in values, space
