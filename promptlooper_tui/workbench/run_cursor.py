"""The cursor of a page of runs (`RunPage.next`, passed back as `after`): the position of the
page's last run in the newest-first order, bound to the listing (the filters) it was made for.

A cursor is opaque to its users. Anything not made here for the same filters is BadInput
naming `after`, never a query: a forged position only pages from there, but a cursor of another
listing would silently page the wrong runs, and a string SQLite cannot store would fail there.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json

from ..domain.errors import BadInput
from ..store.runs import Position, RunFilter

#: A cursor holds a timestamp, a run id and a short digest; anything longer was not made here.
MAX_CURSOR_LENGTH = 512
#: The characters of a cursor (unpadded URL-safe base64), for front-ends to check early.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def encode_cursor(position: Position, runs: RunFilter) -> str:
    """The cursor of `position` in the listing of `runs`."""
    text = json.dumps([*position, _listing(runs)], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, runs: RunFilter) -> Position:
    """The position a cursor made by `encode_cursor` for `runs` holds; BadInput for anything
    else (not a cursor, or one of a listing with other filters)."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(decoded, list) or not all(isinstance(part, str) for part in decoded):
            raise ValueError
        finished_at, run_id, listing = decoded
        # A lone surrogate survives JSON but not SQLite: refuse it here, not in the query.
        finished_at.encode()
        run_id.encode()
    except (ValueError, TypeError, binascii.Error):
        raise BadInput(
            f"invalid cursor after={cursor[:40]!r}: pass the `next` of a page of runs, as it is"
        ) from None
    if listing != _listing(runs):
        raise BadInput(
            f"the cursor after={cursor[:40]!r} is of a listing with other filters: page on "
            "with the filters it was made with, or start again without it"
        )
    return finished_at, run_id


def _listing(runs: RunFilter) -> str:
    """A short digest of the filters, so a cursor is refused by any other listing."""
    filters = json.dumps(dataclasses.astuple(runs))
    return hashlib.blake2b(filters.encode(), digest_size=4).hexdigest()
