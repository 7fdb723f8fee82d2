r"""`--format env`: the best config's parameters as KEY=VALUE lines that a POSIX shell
(`set -a; . ./best.env`) and python-dotenv (`dotenv_values`, interpolation on as by default)
both read as the same values.

The two disagree on escapes, so each value takes the first of these forms both read alike:

1. single quotes, for values without `'`, a backslash or `${`: sh takes everything literally,
   while dotenv unescapes `\\` and `\'` and expands `${...}` even inside single quotes;
2. double quotes with only `\` and `"` escaped (both unescape exactly `\\` and `\"`), for values
   without `$` or a backtick: sh expands those, and dotenv would keep a backslash put before them;
3. form 2 with the value's one special character (`$` or a backtick) written as `${KEY}`, the key
   having been assigned that character on the line before (`K='$'` then `K="a${K}HOME"`): both
   read lines in order, so `${K}` is still that character there, and neither expands it again.

No form fits a value holding both `$` and a backtick along with a quote, backslash or `${`, nor
a NUL (sh variables cannot hold one) or a carriage return (dotenv reads with universal newlines,
turning it into a line feed): such a value raises BadInput instead of writing a wrong file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TextIO

from ..domain.errors import BadInput
from ..domain.records import RankedScope
from .best import best_config
from .source import ExportJob

PREFIX = "PROMPTLOOPER_"

_NOT_KEY_CHAR = re.compile(r"[^A-Z0-9]")
_SINGLE_QUOTE_UNSAFE = re.compile(r"['\\]|\$\{")
_SPECIALS = ("$", "`")


async def write_env(job: ExportJob, out: TextIO) -> None:
    """Write the best config's parameters (`prompt` as its template text) with a comment
    header. Every line is built before the first is written, so a BadInput writes nothing."""
    data = await best_config(job)
    lines = [assignment(key, value) for key, value in env_values(data).items()]
    out.write(_header(data) + "".join(line + "\n" for line in lines))


def env_values(data: Mapping[str, Any]) -> dict[str, str]:
    """The environment a best-config document (see `best_config`) exports, key by key.

    Keys are `PROMPTLOOPER_` + the parameter name upper-cased with every other character
    than A-Z and 0-9 made `_`; strings stay as they are, other values are JSON-encoded
    (`0.4`, `true`, `["a", "b"]`); `prompt` holds the winning prompt's template text.
    """
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in data["params"].items():
        key = env_key(name)
        if key in names:
            raise BadInput(
                f"parameters {names[key]!r} and {name!r} would both be {key} in a .env file; "
                "rename one, or use --format json"
            )
        names[key] = name
        values[key] = data["prompt"] if name == "prompt" and "prompt" in data else _text(value)
    return values


def env_key(name: str) -> str:
    return PREFIX + _NOT_KEY_CHAR.sub("_", name.upper())


def assignment(key: str, value: str) -> str:
    """The line(s) assigning `value` to `key`, read alike by sh and python-dotenv."""
    for char, what in (("\0", "a NUL character"), ("\r", "a carriage return")):
        if char in value:
            raise BadInput(f"{key}: the value holds {what}, which a .env file cannot carry")
    if not _SINGLE_QUOTE_UNSAFE.search(value):
        return f"{key}='{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    specials = [char for char in _SPECIALS if char in value]
    if not specials:
        return f'{key}="{escaped}"'
    if len(specials) > 1:
        raise BadInput(
            f"{key}: the value mixes '$' and '`' with quotes, backslashes or '${{', which no "
            ".env quoting reads the same in sh and python-dotenv; use --format json or yaml"
        )
    special = specials[0]
    reference = "${" + key + "}"
    return (
        f"# {reference} below is a literal {special}, assigned on the next line (sh and "
        "python-dotenv both read it so)\n"
        f"{key}='{special}'\n{key}=\"{escaped.replace(special, reference)}\""
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _header(data: Mapping[str, Any]) -> str:
    return (
        f"# PromptLooper best config of {data['experiment']} "
        f"(version {data['experiment_version']})\n"
        f"# ranked: {RankedScope.model_validate(data['ranked']).describe()}; "
        f"score {data['score']} (95% CI {data['ci_low']}-{data['ci_high']}, n={data['n']}); "
        f"exported {data['exported_at']}\n"
        "# load with: set -a; . ./best.env; set +a   (or python-dotenv's dotenv_values)\n"
    )
