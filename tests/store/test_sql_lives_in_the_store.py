"""SQL lives in the store: no other layer writes a statement (the team server puts a second
backend behind the store's named operations, so SQL elsewhere would bypass it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import promptlooper_tui

PACKAGE = Path(promptlooper_tui.__file__).parent
STORE = PACKAGE / "store"

#: The start of a statement, in a string literal, in the capitals the code writes SQL in (prose
#: such as "select the best config from..." is not SQL; docstrings are skipped).
STATEMENT = re.compile(
    r"^\s*(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)"
    r"|ALTER\s+TABLE|DROP\s+(TABLE|INDEX)|PRAGMA\s|WITH\s+\w+\s+AS|BEGIN|COMMIT)",
    re.DOTALL,
)


def test_no_module_outside_the_store_holds_sql() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text[:60]!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if STORE not in path.parents
        for line, text in _string_literals(path)
        if STATEMENT.match(text)
    ]
    assert found == []


def test_the_check_sees_sql_in_plain_and_formatted_strings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""SELECT x FROM y in a docstring is prose."""\n'
        'A = "SELECT id FROM runs WHERE x = ?"\n'
        'def f(t):\n    return f"DELETE FROM {t} WHERE id = ?"\n'
        'B = "select the best config from the leaderboard"\n'
    )
    matched = [text for _, text in _string_literals(module) if STATEMENT.match(text)]
    assert matched == ["SELECT id FROM runs WHERE x = ?", "DELETE FROM "]


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    )
