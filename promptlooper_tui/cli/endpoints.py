"""`promptlooper endpoints add|list|test|remove`: the OpenAI-compatible endpoints sweeps call."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from .arguments import Parsers, secret_from_stdin
from .exit_codes import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_endpoints_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("endpoints", help="manage OpenAI-compatible endpoints")
    p = actions.add_parser(
        "add",
        parents=[parsers.home, parsers.json],
        help="store an endpoint (its key encrypted, or named by variable)",
    )
    p.add_argument("name")
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080/v1")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="read the key from this variable")
    key.add_argument(
        "--api-key-stdin", action="store_true", help="read the key from stdin; stored encrypted"
    )
    p.add_argument(
        "--price",
        action="append",
        metavar="MODEL=IN,OUT",
        help="price per million input/output tokens (repeatable; MODEL may be *)",
    )
    p.add_argument(
        "--max-response-mb",
        type=float,
        metavar="N",
        help="largest answer body accepted, in MiB (default 8); a larger one fails the call",
    )
    p.add_argument(
        "--deadline",
        type=float,
        metavar="S",
        help="seconds one request may take from connecting to its last byte (default 300)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        metavar="S",
        help="seconds an answer may stay silent before the request is retried (default 60)",
    )
    p.add_argument(
        "--rate-limit-wait",
        type=float,
        metavar="S",
        help="seconds a call may wait on HTTP 429 answers before it fails (default 600)",
    )
    p.set_defaults(handler=cmd_endpoints_add)
    p = actions.add_parser(
        "list", parents=[parsers.home, parsers.json], help="stored endpoints (keys never shown)"
    )
    p.set_defaults(handler=cmd_endpoints_list)
    p = actions.add_parser(
        "test", parents=[parsers.home, parsers.json], help="connect and list the endpoint's models"
    )
    p.add_argument("name")
    p.set_defaults(handler=cmd_endpoints_test)
    p = actions.add_parser("remove", parents=[parsers.home], help="forget an endpoint")
    p.add_argument("name")
    p.set_defaults(handler=cmd_endpoints_remove)


async def cmd_endpoints_add(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    api_key = secret_from_stdin("--api-key-stdin") if args.api_key_stdin else None
    pricing = dict(_parse_price(p) for p in args.price or [])
    record = await wb.add_endpoint(
        args.name,
        args.base_url,
        api_key=api_key,
        api_key_env=args.api_key_env,
        pricing=pricing,
        max_response_mb=args.max_response_mb,
        deadline_s=args.deadline,
        idle_timeout_s=args.idle_timeout,
        rate_limit_wait_s=args.rate_limit_wait,
    )
    if args.json:
        print_json(record)
    else:
        key = (
            "encrypted key"
            if api_key
            else (f"key from ${args.api_key_env}" if args.api_key_env else "no key")
        )
        sys.stdout.write(f"endpoint {record.name}: {record.base_url} ({key})\n")
    return EXIT_OK


async def cmd_endpoints_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, table

    endpoints = await wb.list_endpoints()
    if args.json:
        print_json(endpoints)
        return EXIT_OK
    table(
        ["name", "base url", "api key", "pricing", "max MiB", "deadline s"],
        [
            [
                e.name,
                e.base_url,
                ("$" + e.api_key_env) if e.api_key_env else ("stored" if e.has_api_key else "-"),
                # As --price takes it: MODEL=IN,OUT per million tokens.
                " ".join(f"{m}={i:g},{o:g}" for m, (i, o) in e.pricing.items()) or "-",
                f"{e.max_response_mb:g}",
                f"{e.deadline_s:g}",
            ]
            for e in endpoints
        ],
        trim=3,
        right=[4, 5],
    )
    return EXIT_OK


async def cmd_endpoints_test(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    result = await wb.test_endpoint(args.name)
    if args.json:
        print_json(result)
    elif result.ok:
        sys.stdout.write(
            f"{args.name}: ok in {result.latency_ms:.0f} ms; "
            f"models: {', '.join(result.models) or '(none)'}\n"
        )
    else:
        sys.stderr.write(f"{args.name}: {result.error}\n")
    return EXIT_OK if result.ok else EXIT_FAILED


async def cmd_endpoints_remove(args: argparse.Namespace, wb: Workbench) -> int:
    await wb.remove_endpoint(args.name)
    sys.stdout.write(f"removed endpoint {args.name}\n")
    return EXIT_OK


def _parse_price(text: str) -> tuple[str, tuple[float, float]]:
    model, _, prices = text.partition("=")
    try:
        price_in, price_out = (float(p) for p in prices.split(","))
    except ValueError:
        raise BadInput(
            f"--price {text!r}: expected MODEL=IN,OUT (prices per million tokens)"
        ) from None
    return model, (price_in, price_out)
