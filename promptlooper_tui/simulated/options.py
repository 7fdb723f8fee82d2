"""How the simulated endpoint behaves: latency, API key and fault rates, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from promptlooper_tui.domain.errors import BadInput

_RATES = ("fail_rate", "rate_limit_rate", "cut_rate", "malformed_rate")


@dataclass(frozen=True)
class SimulatorOptions:
    """How the simulated endpoint behaves. Rates are per-request probabilities in [0, 1].

    Faults are rolled in this order: 429 (rate_limit_rate), 500 (fail_rate), 200 with a body
    that is not JSON (malformed_rate), then, for streamed chat only, a cut stream (cut_rate).
    Faults apply to chat completions and embeddings; latency and the API key to every /v1 route.
    """

    latency_ms: float = 0.0  # every /v1 answer leaves this long after arrival; no jitter
    fail_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0  # seconds, sent as the Retry-After header of a 429
    cut_rate: float = 0.0  # a cut stream ends cleanly but without the finish, usage and [DONE]
    malformed_rate: float = 0.0
    api_key: str | None = None  # when set, /v1 requests need "Authorization: Bearer <api_key>"
    seed: int = 0  # seeds the fault dice only; replies never depend on it

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInput(f"{name} must be between 0 and 1, got {value}")
        if not self.latency_ms >= 0.0:
            raise BadInput(f"latency_ms must be >= 0, got {self.latency_ms}")
        if not self.retry_after >= 0.0:
            raise BadInput(f"retry_after must be >= 0, got {self.retry_after}")


DEFAULT_OPTIONS = SimulatorOptions()
