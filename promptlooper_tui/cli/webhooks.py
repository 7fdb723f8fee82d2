"""`promptlooper webhooks add|list|remove|deliveries`: events POSTed to URLs, signed with a
secret."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from .arguments import Parsers, positive, secret_from_stdin
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_webhooks_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("webhooks", help="POST events to URLs (signed with a secret)")
    p = actions.add_parser("add", parents=[parsers.home, parsers.json], help="send events to a URL")
    p.add_argument("url", metavar="URL")
    p.add_argument(
        "--events",
        metavar="TYPE,...",
        help="event types to send, e.g. run.completed,sweep.completed (default: all)",
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret",
        metavar="S",
        help="signing secret, stored encrypted (a flag value shows in `ps` and shell history: "
        "--secret-stdin avoids that)",
    )
    secret.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the signing secret from stdin",
    )
    p.set_defaults(handler=cmd_webhooks_add)
    p = actions.add_parser(
        "list", parents=[parsers.home, parsers.json], help="stored webhooks (secrets never shown)"
    )
    p.set_defaults(handler=cmd_webhooks_list)
    p = actions.add_parser(
        "remove", parents=[parsers.home, parsers.json], help="stop sending to a webhook"
    )
    p.add_argument("id", metavar="ID")
    p.set_defaults(handler=cmd_webhooks_remove)
    p = actions.add_parser(
        "deliveries", parents=[parsers.home, parsers.json], help="delivery attempts"
    )
    p.add_argument("id", metavar="ID", nargs="?", help="one webhook (default: all)")
    p.add_argument("--limit", type=positive, default=50)
    p.set_defaults(handler=cmd_webhooks_deliveries)


async def cmd_webhooks_add(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    secret = secret_from_stdin("--secret-stdin") if args.secret_stdin else args.secret
    events = None
    if args.events is not None:
        events = [name.strip() for name in args.events.split(",") if name.strip()]
        if not events:
            raise BadInput("--events: give event types separated by commas, or leave it out")
    record = await wb.add_webhook(args.url, events, secret)
    if args.json:
        print_json(record)
    else:
        sys.stdout.write(
            f"webhook {record.id}: {record.url} ({', '.join(record.events) or 'all events'}; "
            f"{'signed' if record.has_secret else 'unsigned'})\n"
        )
    return EXIT_OK


async def cmd_webhooks_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, table

    webhooks = await wb.list_webhooks()
    if args.json:
        print_json(webhooks)
        return EXIT_OK
    table(
        ["id", "url", "events", "signed", "created"],
        [
            [
                w.id,
                w.url,
                ",".join(w.events) or "all",
                "yes" if w.has_secret else "no",
                w.created_at[:19],
            ]
            for w in webhooks
        ],
        trim=1,
    )
    return EXIT_OK


async def cmd_webhooks_remove(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    await wb.remove_webhook(args.id)
    if args.json:
        print_json({"removed": args.id})
    else:
        sys.stdout.write(f"removed webhook {args.id}\n")
    return EXIT_OK


async def cmd_webhooks_deliveries(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, table

    deliveries = await wb.webhook_deliveries(args.id, limit=args.limit)
    if args.json:
        print_json(deliveries)
        return EXIT_OK
    table(
        ["time", "webhook", "seq", "event", "try", "status", "ms", "ok", "error"],
        [
            [
                d.created_at[:19],
                d.webhook_id,
                d.event_seq,
                d.event_type,
                d.attempt,
                d.status_code,
                round(d.latency_ms),
                "yes" if d.delivered else "no",
                d.error or "",
            ]
            for d in deliveries
        ],
        trim=8,
    )
    if len(deliveries) == args.limit:
        sys.stdout.write(f"the latest {args.limit} deliveries; --limit N shows more\n")
    return EXIT_OK
