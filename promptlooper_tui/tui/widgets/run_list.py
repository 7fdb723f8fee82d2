"""A run list that loads a page at a time as you scroll, so 100,000 runs cost a few pages.

Each page is fetched after the cursor of the one before (`RunPage.next`): it costs the same at any
depth, and runs finishing meanwhile (newer than every loaded one) push no run into the next page
twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual import work
from textual.coordinate import Coordinate
from textual.message import Message
from textual.worker import Worker

from ...domain.records import RunPage
from ..sweep_feed import RunLine
from .run_table import MoreRuns, RunTable

#: Fetches `limit` runs (newest first) after a cursor of `RunPage.next`, or from the newest.
PageFetcher = Callable[[int, str | None], Awaitable[RunPage]]

PAGE_SIZE = 200
#: Rows left below the cursor (or the bottom of the view) that trigger the next page.
PREFETCH = 50


class RunList(RunTable):
    """Rows are fetched in pages from `fetch` as the cursor or the scroll nears the end."""

    class PageLoaded(Message):
        """A page arrived (the screen updates its "n of N loaded" line)."""

        def __init__(self, run_list: RunList) -> None:
            super().__init__()
            self.run_list = run_list

    def __init__(self, fetch: PageFetcher, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._fetch = fetch
        self.total: int | None = None
        self._after: str | None = None
        self.complete = False
        self._loading: Worker[None] | None = None

    def on_mount(self) -> None:
        # The page arrives in a worker, after RunTable's on_mount has added the columns.
        self.load_more()

    def reload(self, fetch: PageFetcher | None = None) -> None:
        """Start again from the first page (after a filter change, or to see new runs)."""
        if fetch is not None:
            self._fetch = fetch
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        self.set_rows([])
        self.total, self._after, self.complete = None, None, False
        self.load_more()

    def load_more(self) -> None:
        if self.complete or (self._loading is not None and self._loading.is_running):
            return
        self._loading = self._load_page()

    @work(group="page", exit_on_error=False)
    async def _load_page(self) -> None:
        page = await self._fetch(PAGE_SIZE, self._after)
        self.total = page.total
        self._after, self.complete = page.next, page.next is None
        self.add_lines(RunLine.from_record(run) for run in page.items)
        self.post_message(self.PageLoaded(self))

    def more_runs(self) -> MoreRuns:
        return self.next_page

    async def next_page(self) -> list[str]:
        """Load the next page (or wait for the one loading) and return every loaded run id."""
        self.load_more()
        if self._loading is not None and self._loading.is_running:
            # Shielded: an inspector leaving meanwhile must not cancel the list's page.
            await asyncio.shield(self._loading.wait())
        return self.run_ids

    def _near_end(self, row: int) -> bool:
        return not self.complete and row >= self.row_total - PREFETCH

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if self._near_end(new.row):
            self.load_more()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._near_end(int(new_value) + self.size.height):
            self.load_more()
