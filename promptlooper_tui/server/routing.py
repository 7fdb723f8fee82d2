"""The HTTP API's machinery: a route table whose handlers are thin Workbench calls, request
parsing into pydantic models, the one error-to-status mapping, and the OpenAPI document built
from the same table (so the description cannot drift from the routes).

A handler is `async def h(wb, *, <path params>, query=<model>, body=<model>)`; it returns a
value of its declared response type (serialised as JSON), `None` (204), or a ready
`starlette.responses.Response` (exports, in one of the route's `media_types`).

Every request is bounded before a handler runs: bodies up to `MAX_BODY_BYTES` (else 413), JSON
nested at most `MAX_JSON_DEPTH` deep, strings of valid Unicode only (no lone surrogates), no
NaN or infinite numbers; query values within their declared ranges (else 422 naming the
parameter). A method a path does not serve is a 405 whose `Allow` header lists the ones it does.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..domain.errors import (
    BadInput,
    Conflict,
    EndpointError,
    Issue,
    NotFound,
    PromptLooperError,
    ValidationError,
)
from ..workbench import Workbench
from .gate import ShuttingDown, WorkGate
from .read_cache import ReadCache

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]

#: The largest request body (2 MiB); experiment YAML is the largest real one, far below it.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: How deeply a request body's JSON may nest (the real bodies nest three levels at most).
MAX_JSON_DEPTH = 32
#: Largest whole number a query may carry into the store (SQLite's 64-bit integers).
MAX_SQL_INT = 2**63 - 1
_SURROGATE = re.compile(r"[\ud800-\udfff]")

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "details"],
    "properties": {
        "error": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "source": {"type": "string"},
                    "path": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_ERROR_STATUSES = {
    "400": "Bad input",
    "401": "Missing or wrong bearer token",
    "404": "Unknown id or name",
    "409": "Not possible in the object's current state",
    "421": "The Host header names no host this daemon answers for",
    "422": "Invalid request or experiment (details: path, line, message)",
    "503": "The daemon is shutting down",
}
#: Media types that carry the route's response document (YAML is the same data as JSON); the
#: other ones a route serves are text documented as strings.
_STRUCTURED_MEDIA = ("application/json", "application/yaml")
_BODY_ERROR_STATUSES = {"413": f"The request body is larger than {MAX_BODY_BYTES} bytes"}


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    status: int
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: Any
    media_types: tuple[str, ...]
    public: bool
    #: A pollable read whose answers the `ReadCache` may share between requests.
    cached: bool


class ApiRouter:
    """Collects routes with `@router.get(...)` / `.post` / `.delete`; `routes()` builds them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.table: list[ApiRoute] = []

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        options.setdefault("status", 204)
        return self._add("DELETE", path, **options)

    def _add(
        self,
        method: str,
        path: str,
        *,
        response: Any = None,
        status: int = 200,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        media_types: tuple[str, ...] = ("application/json",),
        public: bool = False,
        cached: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.table.append(
                ApiRoute(
                    method,
                    self.prefix + path,
                    handler,
                    status,
                    query,
                    body,
                    response,
                    media_types,
                    public,
                    cached,
                )
            )
            return handler

        return register

    def routes(self, workbench: Workbench, gate: WorkGate, cache: ReadCache) -> list[Route]:
        """One starlette route per path serving all of its methods, so that a method the path
        does not serve is a 405 whose `Allow` header lists every one it does."""
        by_path: dict[str, dict[str, Handler]] = {}
        for route in self.table:
            endpoint = _endpoint(route, workbench, gate, cache if route.cached else None)
            by_path.setdefault(route.path, {})[route.method] = endpoint
        return [
            Route(
                path,
                _dispatch(endpoints),
                methods=list(endpoints),
                name=path,
            )
            for path, endpoints in by_path.items()
        ]

    @property
    def public_paths(self) -> set[str]:
        """Paths that need no token (the auth guard's exemptions)."""
        return {route.path for route in self.table if route.public}

    def openapi(self, *, title: str, version: str) -> dict[str, Any]:
        """An OpenAPI 3.1 document of every route: parameters, bodies, responses, errors."""
        components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
        paths: dict[str, Any] = {}
        for route in self.table:
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "components": {
                "schemas": dict(sorted(components.items())),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
            "paths": paths,
        }


def _dispatch(endpoints: dict[str, Handler]) -> Handler:
    async def dispatch(request: Request) -> Response:
        # starlette answers the methods not in `endpoints` (405); HEAD is served as GET.
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await endpoints[method](request)
        return response

    return dispatch


def _endpoint(
    route: ApiRoute, workbench: Workbench, gate: WorkGate, cache: ReadCache | None
) -> Handler:
    adapter = TypeAdapter(route.response) if route.response is not None else None

    async def call(request: Request) -> Any:
        kwargs: dict[str, Any] = dict(request.path_params)
        if route.query is not None:
            kwargs["query"] = _parse(route.query, dict(request.query_params), "query")
        elif request.query_params:
            raise BadInput(f"this route takes no query parameters: {request.url.query}")
        if route.body is not None:
            kwargs["body"] = _parse(route.body, await _json_body(request), "body")
        if route.method == "GET":
            return await route.handler(workbench, **kwargs)
        with gate.admit():
            return await route.handler(workbench, **kwargs)

    async def cached(request: Request, cache: ReadCache) -> Response:
        # The key is the request as sent: an answer was kept only for a valid one, so a kept
        # answer is served before the query is parsed again.
        key = request.scope["path"] + "?" + request.scope["query_string"].decode("latin-1")
        answer = cache.fresh(key)
        if answer is None:
            try:
                answer = await cache.answer(key, lambda: encode(call(request)))
            except Exception as exc:
                return error_response(exc)
        headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == answer.etag:
            return Response(status_code=304, headers=headers)
        return Response(answer.body, route.status, headers=headers, media_type=route.media_types[0])

    async def encode(result: Awaitable[Any]) -> bytes:
        assert adapter is not None, f"{route.path} is cached but declares no response"
        return adapter.dump_json(await result)

    async def endpoint(request: Request) -> Response:
        if cache is not None:
            return await cached(request, cache)
        try:
            result = await call(request)
        except Exception as exc:
            return error_response(exc)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204)
        assert adapter is not None, f"{route.path} returned a value but declares no response"
        return Response(
            adapter.dump_json(result), status_code=route.status, media_type=route.media_types[0]
        )

    endpoint.__name__ = route.handler.__name__
    return endpoint


async def _json_body(request: Request) -> Any:
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


def _parse(model: type[BaseModel], data: Any, where: str) -> BaseModel:
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


#: Starlette's own refusals, said in the API's words.
_HTTP_MESSAGES = {
    405: "this path does not serve that method (see the Allow header)",
    413: f"the request body is larger than {MAX_BODY_BYTES} bytes",
}


def error_response(exc: Exception) -> JSONResponse:
    """The one place the HTTP API turns an exception into a status and `{"error", "details"}`."""
    details: list[dict[str, object]] = []
    if isinstance(exc, ValidationError):
        status, details = 422, [issue.as_dict() for issue in exc.issues]
    elif isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Conflict):
        status = 409
    elif isinstance(exc, BadInput):
        status = 400
    elif isinstance(exc, ShuttingDown):
        status = 503
    elif isinstance(exc, EndpointError):
        status = 502
    elif isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, PromptLooperError):
        status = 500
    else:
        # Unexpected: the traceback stays in the log, the client gets no internals.
        log.error("unexpected error in an API request", exc_info=exc)
        return JSONResponse({"error": "internal error", "details": []}, status_code=500)
    if isinstance(exc, HTTPException):
        message = _HTTP_MESSAGES.get(exc.status_code, exc.detail)
        return JSONResponse(
            {"error": message, "details": details}, status_code=status, headers=exc.headers
        )
    return JSONResponse({"error": str(exc), "details": details}, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the API's JSON shape."""
    return error_response(exc)


# -- OpenAPI -----------------------------------------------------------------------------------


def _schema(kind: Any, components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = TypeAdapter(kind).json_schema(
        ref_template="#/components/schemas/{model}",
        mode=mode,  # type: ignore[arg-type]
    )
    components.update(schema.pop("$defs", {}))
    if "title" in schema and schema.get("type") == "object":
        # A named model: publish it as a component and refer to it.
        components[schema["title"]] = schema
        return {"$ref": f"#/components/schemas/{schema['title']}"}
    return schema


def _operation(route: ApiRoute, components: dict[str, Any]) -> dict[str, Any]:
    doc = inspect.getdoc(route.handler) or route.handler.__name__
    summary, _, description = doc.partition("\n")
    hints = typing.get_type_hints(route.handler)
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": TypeAdapter(hints.get(name, str)).json_schema(),
        }
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", ()),
                    "schema": {k: v for k, v in prop.items() if k != "title"},
                }
            )
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": summary.strip(),
        "parameters": parameters,
    }
    if description.strip():
        operation["description"] = description.strip()
    errors = dict(_ERROR_STATUSES)
    if route.body is not None:
        # An empty body stands for `{}`: required only when the model has required fields.
        operation["requestBody"] = {
            "required": bool(route.body.model_json_schema().get("required")),
            "content": {
                "application/json": {"schema": _schema(route.body, components, "validation")}
            },
        }
        errors |= _BODY_ERROR_STATUSES
    if route.response is None and route.media_types == ("application/json",):
        ok: dict[str, Any] = {"description": "Done"}
    else:
        ok = {
            "description": "OK",
            "content": {
                media: {
                    "schema": _schema(route.response, components, "serialization")
                    if media in _STRUCTURED_MEDIA and route.response is not None
                    else {"type": "string"}
                }
                for media in route.media_types
            },
        }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation["responses"] = {
        str(route.status): ok,
        **{code: {"description": text, **error} for code, text in sorted(errors.items())},
    }
    if route.cached:
        operation["responses"]["304"] = {
            "description": "Not modified: If-None-Match named the current answer's ETag"
        }
    if route.public:
        operation["security"] = []
    return operation
