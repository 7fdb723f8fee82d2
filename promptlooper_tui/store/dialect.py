"""The store's SQL, written once with SQLite's `?` placeholders, as PostgreSQL reads it.

Almost all of it is standard SQL both engines take as it is (upserts with ON CONFLICT, CASE,
coalesce, window-free aggregates). What differs is mechanical and translated here, once per
distinct statement:

* `?` placeholders become `$1`, `$2`, ... (outside string literals);
* a JSON array given as one parameter, `json_each(?)`, becomes `unnest(?::text[]) AS value`
  (both yield a `value` column) and its parameter a list: PostgreSQL's planner counts on an
  array's length, where it took a JSON array for 100 rows and scanned a small table whole;
* `json_extract(column, '$.field')` becomes `(column::json ->> 'field')`.

Anything else that must differ is spelled out per backend in the module that holds the query,
choosing on `Database.dialect`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_JSON_EACH = re.compile(r"\bjson_each\(\?\)(?: AS (\w+))?", re.IGNORECASE)
_JSON_EXTRACT = re.compile(r"\bjson_extract\((\w+(?:\.\w+)?), '\$\.(\w+)'\)", re.IGNORECASE)


@dataclass(frozen=True)
class Translated:
    sql: str
    #: Positions of parameters that are JSON arrays in the store's SQL, lists here.
    arrays: tuple[int, ...]

    def params(self, params: Sequence[Any]) -> Sequence[Any]:
        if not self.arrays:
            return params
        converted = list(params)
        for index in self.arrays:
            converted[index] = json.loads(converted[index])
        return converted


@functools.lru_cache(maxsize=2048)
def to_postgres(sql: str) -> Translated:
    code = _unquoted(sql)
    arrays = tuple(code[: match.start()].count("?") for match in _JSON_EACH.finditer(code))
    sql = _JSON_EACH.sub(_unnest, sql)
    sql = _JSON_EXTRACT.sub(r"(\1::json ->> '\2')", sql)
    return Translated(_number_placeholders(sql), arrays)


def _unnest(match: re.Match[str]) -> str:
    """`json_each(?)` as an array's rows, named `value` as SQLite names them."""
    return (
        f"unnest(?::text[]) AS {match.group(1)}(value)"
        if match.group(1)
        else ("unnest(?::text[]) AS value")
    )


def _unquoted(sql: str) -> str:
    """`sql` with its string literals blanked (same length), so a match is in code."""
    return re.sub(r"'[^']*'", lambda literal: " " * len(literal.group()), sql)


def _number_placeholders(sql: str) -> str:
    parts: list[str] = []
    number = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?" and not quoted:
            number += 1
            parts.append(f"${number}")
            continue
        parts.append(char)
    return "".join(parts)
