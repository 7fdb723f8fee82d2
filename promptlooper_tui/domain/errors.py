"""The one exception hierarchy. Front-ends map these to exit codes, HTTP statuses and MCP errors."""

from __future__ import annotations

from dataclasses import dataclass


class PromptLooperError(Exception):
    """Base of every error PromptLooper raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in user input: where it is and what was expected."""

    message: str
    path: str = ""
    line: int | None = None
    source: str = ""

    def __str__(self) -> str:
        where = self.source or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }


class BadInput(PromptLooperError):
    """The user asked for something malformed (bad flag value, out-of-range number)."""


class ValidationError(BadInput):
    """An experiment (or other document) is invalid; carries every issue found at once."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class NotFound(BadInput):
    """An id or name that names nothing."""


class Conflict(BadInput):
    """The operation does not fit the object's current state (resume a completed sweep...)."""


class Busy(PromptLooperError):
    """The daemon (or MCP server) runs as many sweeps as it may at once; retry when one ends."""


class EndpointError(PromptLooperError):
    """An LLM endpoint could not be reached or kept failing after the allowed retries."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class BudgetExhausted(PromptLooperError):
    """The sweep's token budget cannot fit the next run."""


class StorageError(PromptLooperError):
    """The database cannot be written (disk full, read-only file, locked for too long)."""


class TemplateLimitExceeded(BadInput):
    """A template needed more work than one render may do (loop iterations, value or output
    size, recursion, time); the message names the limit."""
