"""What a request may carry into a handler (DESIGN section 9): bodies up to `MAX_BODY_BYTES`
(else 413), JSON nested at most `MAX_JSON_DEPTH` deep, strings of valid Unicode only (no lone
surrogates), no NaN or infinite numbers; bodies and queries parsed into the route's pydantic
models, every problem a 422 naming where it is."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..domain.errors import BadInput, Issue, ValidationError

#: The largest request body (2 MiB); experiment YAML is the largest real one, far below it.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: How deeply a request body's JSON may nest (the real bodies nest three levels at most).
MAX_JSON_DEPTH = 32
#: Largest whole number a query may carry into the store (SQLite's 64-bit integers).
MAX_SQL_INT = 2**63 - 1
_SURROGATE = re.compile(r"[\ud800-\udfff]")


async def json_body(request: Request) -> Any:
    """The body as JSON data (`{}` when empty), within the bounds above."""
    raw = await _read_body(request)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadInput(
            f"the request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        ) from None
    except ValueError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None
    _check_json(data)
    return data


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `MAX_BODY_BYTES` (from its
    Content-Length, or while it streams in without one)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def _check_json(data: Any) -> None:
    """Refuse JSON nested deeper than `MAX_JSON_DEPTH` and strings that are not valid Unicode
    (lone surrogates from `\\ud800` escapes cannot be stored or encoded); walks without
    recursion, so any depth fails fast."""
    pending: list[tuple[Any, str, int]] = [(data, "body", 0)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadInput(
                f"the request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
            )
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise BadInput(f"{path}: the text has a lone surrogate (\\ud800-\\udfff)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    raise BadInput(f"{path}: a key has a lone surrogate (\\ud800-\\udfff)")
                pending.append((item, f"{path}.{key[:40]}", depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def parse_model(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """`data` as `model`, or a ValidationError whose issues name `where` and the field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [
                Issue(
                    message=error["msg"].removeprefix("Value error, "),
                    path=".".join([where, *(str(part) for part in error["loc"])]),
                    source="request",
                )
                for error in exc.errors()
            ]
        ) from None
