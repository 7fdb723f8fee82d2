"""`promptlooper cache stats|clear`: the cache of LLM calls."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .arguments import Parsers
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_cache_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("cache", help="cache statistics and clearing")
    p = actions.add_parser(
        "stats", parents=[parsers.home, parsers.json], help="hits, misses, entries, bytes"
    )
    p.set_defaults(handler=cmd_cache_stats)
    p = actions.add_parser("clear", parents=[parsers.home], help="remove every cached LLM call")
    p.set_defaults(handler=cmd_cache_clear)


async def cmd_cache_stats(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    stats = await wb.cache_stats()
    if args.json:
        print_json(stats)
    else:
        sys.stdout.write(
            f"entries: {stats.entries}\nbytes:   {stats.bytes}\nhits:    {stats.hits}\n"
            f"misses:  {stats.misses}\nhit rate: {stats.hit_rate:.1%}\n"
        )
    return EXIT_OK


async def cmd_cache_clear(args: argparse.Namespace, wb: Workbench) -> int:
    removed = await wb.cache_clear()
    sys.stdout.write(f"removed {removed} cache entries\n")
    return EXIT_OK
