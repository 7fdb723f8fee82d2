"""The API's OpenAPI 3.1 document, built from the route table (so that the description
cannot drift from the routes): parameters, bodies, responses and the errors each may answer."""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

from pydantic import TypeAdapter

from .api_route import ApiRoute
from .request_bounds import MAX_BODY_BYTES

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
    "429": "The daemon runs as many sweeps as it may at once; retry when one ends",
    "503": "The daemon is shutting down",
}
#: Media types that carry the route's response document (YAML is the same data as JSON); the
#: other ones a route serves are text documented as strings.
_STRUCTURED_MEDIA = ("application/json", "application/yaml")
_BODY_ERROR_STATUSES = {"413": f"The request body is larger than {MAX_BODY_BYTES} bytes"}


def openapi_document(table: list[ApiRoute], *, title: str, version: str) -> dict[str, Any]:
    """The document of every route in `table`."""
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for route in table:
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
            parameter = {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
            }
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameters.append(parameter)
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
