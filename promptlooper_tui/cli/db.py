"""`promptlooper db migrate|copy`: the store itself, whichever database holds it: bring its
schema up to date, or copy a whole history from one database into another."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..settings import Settings
from .arguments import Parsers
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..store.copy import CopyReport


def add_db_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("db", help="create, upgrade or copy the store (--db)")
    p = actions.add_parser(
        "migrate",
        parents=[parsers.home, parsers.json],
        help="create or upgrade the schema of the database --db names",
    )
    p.set_defaults(sync_handler=cmd_db_migrate)
    p = actions.add_parser(
        "copy",
        parents=[parsers.json],
        help="copy every experiment, sweep, run, score, cache entry, endpoint and webhook into "
        "an empty database (API keys stay encrypted: use the same PROMPTLOOPER_SECRET there)",
    )
    p.add_argument("--from", dest="source", required=True, metavar="URL", help="copy from")
    p.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="copy into (must be empty)"
    )
    p.set_defaults(sync_handler=cmd_db_copy)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from ..store.connect import open_database

    settings = Settings.resolve(getattr(args, "home", None), getattr(args, "db", None))

    async def migrate() -> tuple[str, int, int]:
        db = await open_database(settings.database)
        try:
            return db.shown, db.migrated_from, db.schema_version
        finally:
            await db.close()

    shown, before, after = asyncio.run(migrate())
    if args.json:
        from .output import print_json

        print_json({"database": shown, "schema_from": before, "schema_to": after})
    elif before == after:
        sys.stdout.write(f"{shown}: schema {after}, already up to date\n")
    else:
        was = "new" if before == 0 else f"schema {before}"
        sys.stdout.write(f"{shown}: {was} -> schema {after}\n")
    return EXIT_OK


def cmd_db_copy(args: argparse.Namespace) -> int:
    import asyncio

    from ..keystore import SecretBox
    from ..store.copy import copy_database
    from ..store.location import parse_database_url
    from ..team_secret import copier_check

    source = parse_database_url(args.source, flag="--from")
    target = parse_database_url(args.target, flag="--to")
    # The copier's secret: the copied keys must be under it (the target records it).
    secrets = SecretBox(Settings.resolve(getattr(args, "home", None)).secret_key_path)
    report = asyncio.run(copy_database(source, target, copier_check(secrets)))
    if args.json:
        from .output import print_json

        print_json(
            {
                "from": report.source,
                "to": report.target,
                "schema_version": report.schema_version,
                "target_schema_from": report.target_migrated_from,
                "rows": report.rows,
            }
        )
    else:
        sys.stdout.write(_copy_text(report))
    return EXIT_OK


def _copy_text(report: CopyReport) -> str:
    width = max(len(name) for name in report.rows)
    lines = [f"copied {report.source} -> {report.target} (schema {report.schema_version})"]
    lines += [f"  {name:<{width}}  {count:>9}" for name, count in report.rows.items()]
    return "\n".join(lines) + "\n"
