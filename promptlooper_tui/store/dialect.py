"""The store's SQL, written once with SQLite's `?` placeholders, as PostgreSQL reads it.

Almost all of it is standard SQL both engines take as it is (upserts with ON CONFLICT, CASE,
coalesce, window-free aggregates). What differs is mechanical and translated here, once per
distinct statement:

* `?` placeholders become `$1`, `$2`, ... (outside string literals);
* a JSON array given as one parameter, `json_each(?)`, becomes
  `json_array_elements_text(?::json)` (both yield a `value` column);
* `json_extract(column, '$.field')` becomes `(column::json ->> 'field')`.

Anything else that must differ is spelled out per backend in the module that holds the query,
choosing on `Database.dialect`.
"""

from __future__ import annotations

import functools
import re

_JSON_EACH = re.compile(r"\bjson_each\(\?\)", re.IGNORECASE)
_JSON_EXTRACT = re.compile(r"\bjson_extract\((\w+(?:\.\w+)?), '\$\.(\w+)'\)", re.IGNORECASE)


@functools.lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    sql = _JSON_EACH.sub("json_array_elements_text(?::json)", sql)
    sql = _JSON_EXTRACT.sub(r"(\1::json ->> '\2')", sql)
    return _number_placeholders(sql)


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
