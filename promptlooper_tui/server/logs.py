"""Logging for the daemon and the stdio MCP server: always stderr (stdout may be a protocol
channel), one readable line per record, or one JSON object per line with `--log-json`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_READABLE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Libraries that log every request at INFO; their warnings still show.
_CHATTY = ("httpx", "httpx2", "mcp", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message"}` plus `exc` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class SpuriousHandshakeError(logging.Filter):
    """Drops uvicorn's "returned without completing handshake" error, which its
    websockets-sansio protocol logs after every websocket refused with an HTTP answer (our 401s,
    404s); the client got that answer. Fixed upstream by Kludex/uvicorn#3138."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def configure_logging(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    """Send every log record to stderr. Call before building the MCP server: the SDK installs
    its own handler only when the root logger has none."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_READABLE))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(SpuriousHandshakeError())
