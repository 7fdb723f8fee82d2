"""One route of the API as its table holds it: what it serves and how its answer is made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

Handler = Callable[..., Awaitable[Any]]


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
