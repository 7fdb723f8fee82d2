"""The simulated endpoint's HTTP app: OpenAI's /v1 routes with latency and faults, and /_sim/*."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from promptlooper_tui.domain.tokens import estimate_tokens

from .canonical_json import canonical_dumps, canonical_parts, join_parts, sha256_hex
from .embeddings import embedding_problem, simulate_embedding
from .options import DEFAULT_OPTIONS, SimulatorOptions
from .replies import SimulatedReply, chat_problem, reply_to_chat
from .state import RequestRecord, SimulatorState

logger = logging.getLogger(__name__)

#: Model ids listed by GET /v1/models (any other name is accepted too).
MODELS = ("small-model", "medium-model", "large-model", "judge-model", "embed-small")
# A fixed `created` keeps whole response bodies byte-identical for identical requests.
_CREATED = 1_700_000_000
_SYSTEM_FINGERPRINT = "promptlooper-sim"
_NOT_JSON = object()
_SSE = "text/event-stream"


def _parse_body(raw: bytes) -> tuple[Any, dict[str, str] | None, str]:
    """(body, canonical parts of a dict body, fingerprint); body is _NOT_JSON when unparsable."""
    if not raw:
        return None, None, sha256_hex(b"")
    try:
        body = json.loads(raw)
    except ValueError:
        return _NOT_JSON, None, sha256_hex(raw)
    if isinstance(body, dict):
        parts = canonical_parts(body)
        return body, parts, sha256_hex(join_parts(parts, parts))
    return body, None, sha256_hex(canonical_dumps(body))


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


@dataclass
class _Call:
    """One /v1 request in flight: its log record and parsed body."""

    sim: SimulatorState
    record: RequestRecord
    body: Any
    parts: dict[str, str] | None

    def reply(
        self,
        content: bytes,
        status: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> Response:
        self.sim.answered(self.record, status)
        return Response(content, status, headers, media_type, background=BackgroundTask(self._sent))

    async def _sent(self) -> None:
        # Async on purpose: Starlette runs a sync background task in a worker thread.
        self.sim.finish(self.record)

    def error(
        self,
        status: int,
        message: str,
        error_type: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        error = {"message": message, "type": error_type, "param": None, "code": code}
        return self.reply(_json_bytes({"error": error}), status, headers)

    def fault(self) -> Response | None:
        """A 429 or 500 when the dice say so."""
        options = self.sim.options
        if self.sim.roll(options.rate_limit_rate):
            logger.debug("simulating a 429 for request %d", self.record.seq)
            retry = {"Retry-After": _format_seconds(options.retry_after)}
            message = "Rate limit reached (simulated). Please try again later."
            return self.error(429, message, "requests", "rate_limit_exceeded", retry)
        if self.sim.roll(options.fail_rate):
            logger.debug("simulating a 500 for request %d", self.record.seq)
            message = "The server had an error while processing your request (simulated)."
            return self.error(500, message, "server_error")
        return None

    def malformed(self, payload: bytes, stream: bool) -> Response | None:
        """A 200 whose body is cut in half (never valid JSON) when the dice say so."""
        if not self.sim.roll(self.sim.options.malformed_rate):
            return None
        logger.debug("simulating a malformed body for request %d", self.record.seq)
        broken = payload[: len(payload) // 2]
        if stream:
            return self.reply(b"data: " + broken + b"\n\ndata: [DONE]\n\n", 200, None, _SSE)
        return self.reply(broken)


async def _open_call(
    request: Request, problem_of: Callable[[Any], str | None] | None = None
) -> tuple[_Call, Response | None]:
    """Log the request, check the API key and parse the body.

    Returns the call and, when the request is refused (401, or 400 for a non-JSON body), the
    response to send instead. Routes that simulate faults pass `problem_of`, which says what
    is wrong with a body (400), and then get the simulated fault, if the dice roll one.
    """
    sim: SimulatorState = request.app.state.sim
    body, parts, fingerprint = _parse_body(await request.body())
    call = _Call(sim, sim.begin(request.scope["path"], fingerprint), body, parts)
    if not sim.authorized(request.headers.get("authorization")):
        message = "Incorrect API key provided (simulated endpoint)."
        return call, call.error(401, message, "invalid_request_error", "invalid_api_key")
    if body is _NOT_JSON:
        message = "We could not parse the JSON body of your request."
        return call, call.error(400, message, "invalid_request_error")
    if problem_of is None:
        return call, None
    problem = problem_of(body)
    if problem:
        return call, call.error(400, problem, "invalid_request_error")
    return call, call.fault()


def _with_latency(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Answer `latency_ms` after the request arrived, the simulator's own work included: a
    fixed sleep on top of that work would queue concurrent requests behind each other's CPU,
    and a benchmark would measure the simulator instead of the client."""

    async def answer_on_time(request: Request) -> Response:
        latency = request.app.state.sim.options.latency_ms / 1000.0
        if latency <= 0.0:
            return await handler(request)
        loop = asyncio.get_running_loop()
        due = loop.time() + latency
        response = await handler(request)
        await asyncio.sleep(max(0.0, due - loop.time()))
        return response

    return answer_on_time


@_with_latency
async def _chat_completions(request: Request) -> Response:
    call, refusal = await _open_call(request, chat_problem)
    if refusal is not None:
        return refusal
    body: dict[str, Any] = call.body
    reply = reply_to_chat(body, call.parts or {})
    completion_id = "chatcmpl-" + call.record.fingerprint[:24]
    if body.get("stream") is True:
        return _stream(call, completion_id, reply)
    payload = _json_bytes(_completion(completion_id, body["model"], reply))
    return call.malformed(payload, stream=False) or call.reply(payload)


def _usage(reply: SimulatedReply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _completion(completion_id: str, model: str, reply: SimulatedReply) -> dict[str, Any]:
    message = {"role": "assistant", "content": reply.text}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
        ],
        "usage": _usage(reply),
    }


_WORDS_PER_CHUNK = 3
_CHUNK_RE = re.compile(rf"\s*\S+(?:\s+\S+){{0,{_WORDS_PER_CHUNK - 1}}}\s*")


def _stream(call: _Call, completion_id: str, reply: SimulatedReply) -> Response:
    """The reply as chat.completion.chunk events; possibly malformed or cut per the dice."""
    body: dict[str, Any] = call.body
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    head = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": body["model"],
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    if include_usage:
        head["usage"] = None  # as OpenAI does: null on every chunk but the usage one

    def event(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + _json_bytes({**head, "choices": [choice]}) + b"\n\n"

    pieces = _CHUNK_RE.findall(reply.text) or ([reply.text] if reply.text else [])
    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in pieces]
    malformed = call.malformed(events[-1][len(b"data: ") : -2], stream=True)
    if malformed:
        return malformed
    if call.sim.roll(call.sim.options.cut_rate):
        logger.debug("simulating a cut stream for request %d", call.record.seq)
        call.sim.answered(call.record, 200)
        return StreamingResponse(_send(events[: 1 + len(pieces) // 2]), media_type=_SSE)
    events.append(event({}, reply.finish_reason))
    if include_usage:
        usage_chunk = {**head, "choices": [], "usage": _usage(reply)}
        events.append(b"data: " + _json_bytes(usage_chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    call.sim.answered(call.record, 200)
    return StreamingResponse(_send(events, call), media_type=_SSE)


async def _send(events: list[bytes], call: _Call | None = None) -> AsyncIterator[bytes]:
    """Yield `events`; then mark `call` finished, which a client disconnect prevents.

    (A background task would not do: Starlette runs it even when the client went away.)
    """
    for event in events:
        yield event
    if call is not None:
        call.sim.finish(call.record)


@_with_latency
async def _embeddings(request: Request) -> Response:
    call, refusal = await _open_call(request, embedding_problem)
    if refusal is not None:
        return refusal
    texts = call.body["input"]
    texts = [texts] if isinstance(texts, str) else texts
    tokens = sum(estimate_tokens(text) for text in texts)
    data = [
        {"object": "embedding", "index": index, "embedding": simulate_embedding(text)}
        for index, text in enumerate(texts)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    payload = _json_bytes(
        {"object": "list", "data": data, "model": call.body["model"], "usage": usage}
    )
    return call.malformed(payload, stream=False) or call.reply(payload)


_MODELS_PAYLOAD = _json_bytes(
    {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": _CREATED, "owned_by": "promptlooper-sim"}
            for model in MODELS
        ],
    }
)


@_with_latency
async def _models(request: Request) -> Response:
    call, refusal = await _open_call(request)
    return refusal or call.reply(_MODELS_PAYLOAD)


async def _stats(request: Request) -> Response:
    return JSONResponse(request.app.state.sim.stats())


async def _requests(request: Request) -> Response:
    return JSONResponse(request.app.state.sim.records())


async def _reset(request: Request) -> Response:
    request.app.state.sim.reset()
    return JSONResponse({"reset": True})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404/405 in OpenAI's error shape, so clients parse every failure the same way."""
    error = {"message": exc.detail, "type": "invalid_request_error", "param": None, "code": None}
    return JSONResponse({"error": error}, exc.status_code, headers=exc.headers)


def create_app(options: SimulatorOptions = DEFAULT_OPTIONS) -> Starlette:
    """The simulated endpoint as a Starlette app; `app.state.sim` is its SimulatorState."""
    app = Starlette(
        routes=[
            Route("/v1/models", _models, methods=["GET"]),
            Route("/v1/chat/completions", _chat_completions, methods=["POST"]),
            Route("/v1/embeddings", _embeddings, methods=["POST"]),
            Route("/_sim/stats", _stats, methods=["GET"]),
            Route("/_sim/requests", _requests, methods=["GET"]),
            Route("/_sim/reset", _reset, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sim = SimulatorState(options)
    return app
