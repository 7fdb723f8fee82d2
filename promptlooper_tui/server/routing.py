"""The HTTP API's machinery: a route table whose handlers are thin Workbench calls, request
parsing into pydantic models, the one error-to-status mapping, and the OpenAPI document built
from the same table (so the description cannot drift from the routes).

A handler is `async def h(wb, *, <path params>, query=<model>, body=<model>)`; it returns a
value of its declared response type (serialised as JSON), `None` (204), or a ready
`starlette.responses.Response` (exports, in one of the route's `media_types`).
"""

from __future__ import annotations

import inspect
import json
import logging
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
from ..service import Workbench
from .gate import ShuttingDown, WorkGate

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]

#: Experiment YAML is the largest body; a few MB is far more than any real one.
MAX_BODY_BYTES = 4 * 1024 * 1024

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
    "422": "Invalid request or experiment (details: path, line, message)",
    "503": "The daemon is shutting down",
}


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
                )
            )
            return handler

        return register

    def routes(self, workbench: Workbench, gate: WorkGate) -> list[Route]:
        return [
            Route(
                route.path,
                _endpoint(route, workbench, gate),
                methods=[route.method],
                name=route.handler.__name__,
                max_body_size=MAX_BODY_BYTES,
            )
            for route in self.table
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


def _endpoint(route: ApiRoute, workbench: Workbench, gate: WorkGate) -> Handler:
    adapter = TypeAdapter(route.response) if route.response is not None else None

    async def endpoint(request: Request) -> Response:
        try:
            kwargs: dict[str, Any] = dict(request.path_params)
            if route.query is not None:
                kwargs["query"] = _parse(route.query, dict(request.query_params), "query")
            elif request.query_params:
                raise BadInput(f"this route takes no query parameters: {request.url.query}")
            if route.body is not None:
                kwargs["body"] = _parse(route.body, await _json_body(request), "body")
            if route.method == "GET":
                result = await route.handler(workbench, **kwargs)
            else:
                with gate.admit():
                    result = await route.handler(workbench, **kwargs)
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
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None


def _parse(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [
                Issue(
                    message=error["msg"],
                    path=".".join([where, *(str(part) for part in error["loc"])]),
                    source="request",
                )
                for error in exc.errors()
            ]
        ) from None


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
    message = exc.detail if isinstance(exc, HTTPException) else str(exc)
    return JSONResponse({"error": message, "details": details}, status_code=status)


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
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": _schema(route.body, components, "validation")}
            },
        }
    if route.media_types != ("application/json",):
        ok: dict[str, Any] = {
            "description": "OK",
            "content": {media: {"schema": {"type": "string"}} for media in route.media_types},
        }
    elif route.response is None:
        ok = {"description": "Done"}
    else:
        ok = {
            "description": "OK",
            "content": {
                "application/json": {"schema": _schema(route.response, components, "serialization")}
            },
        }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation["responses"] = {
        str(route.status): ok,
        **{code: {"description": text, **error} for code, text in _ERROR_STATUSES.items()},
    }
    if route.public:
        operation["security"] = []
    return operation
