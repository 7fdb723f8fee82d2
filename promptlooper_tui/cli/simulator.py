"""`promptlooper simulate-endpoint`: the built-in simulated OpenAI-compatible endpoint, served
on its own for trying things out and for benchmarks."""

from __future__ import annotations

import argparse

from ..domain.errors import BadInput
from .arguments import Parsers, fraction
from .exit_codes import EXIT_OK


def add_simulate_endpoint_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "simulate-endpoint", help="serve the built-in simulated OpenAI-compatible endpoint"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--fail-rate", type=fraction, default=0.0, help="share of HTTP 500 answers")
    p.add_argument("--rate-limit-rate", type=fraction, default=0.0, help="share of HTTP 429s")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of 429s (s)")
    p.add_argument("--cut-rate", type=fraction, default=0.0, help="share of cut streams")
    p.add_argument("--malformed-rate", type=fraction, default=0.0, help="share of bad JSON")
    p.add_argument("--api-key", help="require this bearer token")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(sync_handler=cmd_simulate_endpoint)


def cmd_simulate_endpoint(args: argparse.Namespace) -> int:
    from ..simulated.options import SimulatorOptions
    from ..simulated.server import run_simulated_endpoint

    for name in ("fail_rate", "rate_limit_rate", "cut_rate", "malformed_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise BadInput(f"--{name.replace('_', '-')} must be between 0 and 1")
    options = SimulatorOptions(
        latency_ms=args.latency_ms,
        fail_rate=args.fail_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        cut_rate=args.cut_rate,
        malformed_rate=args.malformed_rate,
        api_key=args.api_key,
        seed=args.seed,
    )
    run_simulated_endpoint(args.host, args.port, options)
    return EXIT_OK
