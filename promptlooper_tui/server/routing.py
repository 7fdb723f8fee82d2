"""The HTTP API's machinery: a route table whose handlers are thin Workbench calls, and the one
error-to-status mapping. What a request may carry is bounded in `request_bounds`; the OpenAPI
document is built from the same table in `openapi`; pollable reads are answered through the
`ReadCache`.

A handler is `async def h(wb, *, <path params>, query=<model>, body=<model>)`; it returns a
value of its declared response type (serialised as JSON), `None` (204), or a ready
`starlette.responses.Response` (exports, in one of the route's `media_types`).

Every request is bounded before a handler runs (`request_bounds`); query values must lie
within their declared ranges (else 422 naming the parameter). A method a path does not serve
is a 405 whose `Allow` header lists the ones it does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..domain.errors import (
    BadInput,
    Busy,
    Conflict,
    EndpointError,
    NotFound,
    PromptLooperError,
    ValidationError,
)
from ..workbench import Workbench
from .api_route import ApiRoute, Handler
from .gate import ShuttingDown, WorkGate
from .openapi import openapi_document
from .read_cache import ReadCache
from .request_bounds import MAX_BODY_BYTES, json_body, parse_model

log = logging.getLogger(__name__)


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
        return openapi_document(self.table, title=title, version=version)


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
            kwargs["query"] = parse_model(route.query, dict(request.query_params), "query")
        elif request.query_params:
            raise BadInput(f"this route takes no query parameters: {request.url.query}")
        if route.body is not None:
            kwargs["body"] = parse_model(route.body, await json_body(request), "body")
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
    elif isinstance(exc, Busy):
        status = 429
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
