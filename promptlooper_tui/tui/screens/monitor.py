"""The live sweep monitor: progress and counters, a leaderboard that re-ranks as results
arrive, the latest runs beside the score distribution, and pause / resume / stop; for an evolve
sweep, its latest generation of proposals.

Events are drained from the bus a few times a second and folded into a `SweepFeed`; widgets
are updated once per frame, never per event, so thousands of events a second cost a few
redraws. The leaderboard is fetched at most once a second, in its own worker, and only when
results came in; an evolve sweep's lineage is read again when a generation's proposals arrive
(a few times a sweep). A sweep running in another process has its events relayed here through the
store (its latest runs and status, live); its totals are read from the database every second.
"""

from __future__ import annotations

import time
from collections import Counter

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Header, ProgressBar, Static
from textual.worker import Worker

from ...domain.records import RESUMABLE, Evolution, LeaderboardEntry, SweepRecord
from ...engine.events import Subscription
from .. import display
from ..sweep_feed import ENDED, Counts, LiveCounts, SweepFeed
from ..widgets.app_footer import AppFooter
from ..widgets.generations import GenerationsView
from ..widgets.leaderboard import LeaderboardTable
from ..widgets.run_table import LatestRuns, RunTable
from ..widgets.score_histogram import ScoreHistogram, summary_line
from .base import WorkbenchScreen

#: Seconds between frames.
FRAME = 0.25
#: Least seconds between two leaderboard fetches.
LEADERBOARD_EVERY = 1.0
#: Seconds between two reads of a sweep that runs in another process.
POLL_EVERY = 1.0
#: Rows in the latest-runs table, and scores kept for the histogram.
LATEST_ROWS = 50
SCORE_WINDOW = 2000
#: Failed runs read to find a failed sweep's most common error.
FAILED_RUNS_READ = 1000
LEADERBOARD_ROWS = 20
#: Events a monitor may fall behind by before the oldest are dropped (the database has them).
QUEUE_SIZE = 50_000


class MonitorScreen(WorkbenchScreen):
    TITLE = "Sweep monitor"
    CSS_PATH = "../styles/monitor.tcss"
    AUTO_FOCUS = "#latest"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]
    HELP = (
        "A sweep, live. The progress bar counts finished runs against the plan (racing and "
        "guided sweeps may finish early). The leaderboard ranks configs by mean score with a "
        "95% confidence interval; `≈ tied` means not significantly worse than the leader. "
        "Mark two configs with space and press c to compare them (one mark: against #1). "
        "Enter on a run opens it in the inspector. An evolve sweep shows its latest generation: "
        "the prompts the proposer added (name ← parents, rationale) and those it had refused. "
        "Keys that cannot act on the sweep as it "
        "is (pause on a finished sweep...) are left out of the footer."
    )
    BINDINGS = [
        Binding("p", "pause", "Pause", id="monitor.pause"),
        Binding(
            "r", "resume", "Resume", id="monitor.resume", tooltip="Resume a paused or stopped sweep"
        ),
        Binding("s", "stop", "Stop", id="monitor.stop", tooltip="Stop; finished runs are kept"),
        Binding("c", "compare", "Compare", id="monitor.compare"),
        Binding("a", "all_runs", "All runs", id="monitor.runs"),
        Binding("e", "export", "Export", id="monitor.export"),
        Binding("escape", "back", "Back", id="monitor.back"),
    ]

    def __init__(self, sweep_id: str) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.feed = SweepFeed(recent=LATEST_ROWS, window=SCORE_WINDOW)
        #: Frames drawn (tests check that fast events are coalesced into few frames).
        self.frames = 0
        self._sweep: SweepRecord | None = None
        self._stored = Counts()
        self._live: LiveCounts | None = None
        self._subscription: Subscription | None = None
        self._loader: Worker[None] | None = None
        self._last_ranking = 0.0
        self._shown: tuple[object, ...] = ()
        self._shown_revision = -1
        #: The status the footer's keys were last chosen for.
        self._keys_status: str | None = None
        #: Why an ended sweep ended (None while it runs, or when it completed).
        self.reason: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="monitor-top"):
            yield Static(id="sweep-title")
            with Horizontal(id="progress-row"):
                yield ProgressBar(id="progress", show_eta=False)
                yield Static(id="progress-text")
            yield Static(id="counters")
            yield Static(id="sweep-reason", markup=False)
            yield GenerationsView(id="generations")
        with Vertical(id="leaderboard-panel", classes="panel"):
            yield LeaderboardTable(id="leaderboard")
        with Horizontal(id="monitor-bottom"):
            with Vertical(id="latest-panel", classes="panel"):
                yield LatestRuns(id="latest")
                # Shown instead of the histogram when the terminal is too narrow for it.
                yield Static(id="scores-line", markup=False)
            with Vertical(id="scores-panel", classes="panel"):
                yield ScoreHistogram(id="histogram")
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#leaderboard-panel").border_title = "Leaderboard"
        self.query_one("#scores-panel").border_title = "Scores"
        self.query_one("#latest-panel").border_title = "Latest runs"
        sweep_id = self.sweep_id
        # Subscribe before reading the database: a run committed meanwhile is in one or the
        # other (or both: the feed drops the repeat), never in neither.
        self._subscription = self.wb.bus.subscribe(
            maxsize=QUEUE_SIZE, accept=lambda event: event.sweep_id == sweep_id
        )
        self._reload()
        self.set_interval(FRAME, self._frame)
        self.set_interval(POLL_EVERY, self._poll)

    def on_unmount(self) -> None:
        if self._subscription is not None:
            self._subscription.close()

    @property
    def status(self) -> str | None:
        """The sweep's state as shown (None until the first read)."""
        if self._sweep is None:
            return None
        return self.feed.status or self._sweep.status

    @property
    def counts(self) -> Counts:
        """The counters as shown: live from the runner here, else as stored."""
        return self._live.now() if self._live is not None else self._stored

    # -- loading -------------------------------------------------------------------------------

    def _reload(self) -> None:
        self._loader = self._load()

    @property
    def _loading(self) -> bool:
        return self._loader is not None and self._loader.is_running

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        """Everything from the database; the runner's counters and the events take it from
        here. Frames fold no events meanwhile, so none is lost between the read and them."""
        wb = self.wb
        sweep = await wb.get_sweep(self.sweep_id)
        summary = await wb.sweep_summary(self.sweep_id, top=LEADERBOARD_ROWS)
        page = await wb.list_runs(sweep=self.sweep_id, limit=SCORE_WINDOW)
        runner = wb.runner(self.sweep_id)
        self.reason = await self._why_it_ended(sweep)
        self._sweep = sweep
        self._stored = Counts.stored(summary, sweep)
        self._live = LiveCounts(self._stored, runner) if runner is not None else None
        self.feed.status = runner.status if runner is not None else sweep.status
        self.feed.load(page.items)
        self._show_leaderboard(summary.leaderboard)
        self.query_one(GenerationsView).display = sweep.strategy == "evolve"
        if sweep.strategy == "evolve":
            self._show_evolution(await wb.evolution(self.sweep_id))
        self._draw(force=True)

    def _poll(self) -> None:
        if self._live is None and not self._loading and self.status not in (None, *ENDED):
            self._poll_store()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def _poll_store(self) -> None:
        """A sweep running elsewhere: its totals, newest runs and ranking, as stored."""
        wb = self.wb
        sweep = await wb.get_sweep(self.sweep_id)
        summary = await wb.sweep_summary(self.sweep_id, top=LEADERBOARD_ROWS)
        page = await wb.list_runs(sweep=self.sweep_id, limit=LATEST_ROWS)
        reason = await self._why_it_ended(sweep)
        if self._live is not None or self._loading:
            return  # resumed here meanwhile: the live view has taken over
        self.reason = reason
        self._sweep = sweep
        self._stored = Counts.stored(summary, sweep)
        self.feed.status = sweep.status
        self.feed.add_stored(page.items)
        self._show_leaderboard(summary.leaderboard)
        self._draw()

    async def _why_it_ended(self, sweep: SweepRecord) -> str | None:
        """Why a sweep that did not complete stopped, and its failed runs' most common error
        (a sweep aborted after failures in a row names only the last one)."""
        if sweep.status not in ENDED or sweep.status == "completed":
            return None
        why = {
            "failed": f"Failed: {(sweep.error or 'no reason was recorded').rstrip('.')}.",
            "stopped": "Stopped before its end; r resumes it, repeating no finished run.",
            "budget_exhausted": "Stopped: the token budget ran out; r resumes it.",
            "interrupted": "Interrupted: the process running it ended; r resumes it here.",
        }[sweep.status]
        if sweep.error and sweep.status != "failed":
            why += f" ({sweep.error})"
        if sweep.runs_failed:
            page = await self.wb.list_runs(sweep=sweep.id, status="failed", limit=FAILED_RUNS_READ)
            errors = Counter(run.error for run in page.items if run.error)
            if errors:
                error, count = errors.most_common(1)[0]
                why += (
                    f"\nMost common run error ({count:,} of {sweep.runs_failed:,} failed "
                    f"runs): {error}"
                )
        return why

    @work(exclusive=True, group="leaderboard", exit_on_error=False)
    async def _refresh_leaderboard(self) -> None:
        self._show_leaderboard(await self.wb.leaderboard(self.sweep_id, top=LEADERBOARD_ROWS))

    @work(exclusive=True, group="evolution", exit_on_error=False)
    async def _refresh_evolution(self) -> None:
        self._show_evolution(await self.wb.evolution(self.sweep_id))

    def _show_evolution(self, evolution: Evolution) -> None:
        self.query_one(GenerationsView).show(evolution)

    def _show_leaderboard(self, entries: list[LeaderboardEntry]) -> None:
        self._last_ranking = time.monotonic()
        self.query_one(LeaderboardTable).show(entries)
        self.query_one("#leaderboard-panel").border_subtitle = (
            "" if entries else "no scored runs yet"
        )

    # -- frames --------------------------------------------------------------------------------

    def _frame(self) -> None:
        assert self._subscription is not None
        if self._loading:
            return
        changed = self.feed.fold(self._subscription.drain())
        if changed and self._live is None and self.feed.status in ENDED:
            # A sweep of another process ended (its relayed event says): its final totals are
            # in the store already, and the polls stop here.
            self._poll_store()
        if self._live is not None and self.wb.runner(self.sweep_id) is None:
            # The sweep ended (or was stopped) in this process: the database has the totals.
            self._live = None
            self._reload()
            return
        if self.feed.new_results and time.monotonic() - self._last_ranking >= LEADERBOARD_EVERY:
            self.feed.new_results = 0
            self._refresh_leaderboard()
        if self.feed.new_generations:
            self.feed.new_generations = 0
            self._refresh_evolution()
        self._draw(force=changed)

    def _draw(self, *, force: bool = False) -> None:
        if self._sweep is None:
            return
        counts, status = self.counts, self.status or self._sweep.status
        shown = (counts, status, self.feed.revision)
        if not force and shown == self._shown:
            return
        self._shown = shown
        self.frames += 1
        self._draw_progress(self._sweep, counts, status)
        reason = self.query_one("#sweep-reason", Static)
        reason.update(self.reason or "")
        reason.display = self.reason is not None and status in ENDED
        reason.set_class(status == "failed", "problem")
        if status != self._keys_status:
            # Pause, resume and stop show only where they can act.
            self._keys_status = status
            self.refresh_bindings()
        if self.feed.revision != self._shown_revision:
            self._shown_revision = self.feed.revision
            scores = self.feed.scores
            self.query_one(ScoreHistogram).show(self.feed.histogram(), scores)
            self.query_one("#scores-line", Static).update(summary_line(scores))
            self.query_one(LatestRuns).show(self.feed.latest)

    def _draw_progress(self, sweep: SweepRecord, counts: Counts, status: str) -> None:
        self.query_one("#sweep-title", Static).update(
            Content.assemble(
                (sweep.experiment, "bold"),
                f" v{sweep.experiment_version} · {sweep.id} · {sweep.strategy} · ",
                (f"● {status.replace('_', ' ')}", display.status_style(status)),
            )
        )
        # Only a completed sweep is done: a stopped or failed one shows how far it got of its
        # plan (a race that completed early planned what it ran).
        completed = status == "completed"
        total = max(counts.finished if completed else counts.expected, counts.finished)
        self.query_one(ProgressBar).update(total=max(total, 1), progress=counts.finished)
        if completed:
            eta = "done"
        elif status in ENDED:
            eta = status.replace("_", " ")
        else:
            eta = f"ETA {display.duration(counts.eta)}"
        self.query_one("#progress-text", Static).update(
            f"{counts.finished:,}/{total:,} runs · {eta}"
        )
        concurrency = (
            f"{counts.concurrency}/{counts.max_concurrency}"
            if counts.concurrency is not None
            else "–"
        )
        shown = [
            ("done", f"{counts.done:,}", "bold"),
            ("running", "–" if counts.running is None else f"{counts.running:,}", "bold"),
            ("cached", f"{counts.cached:,}", "bold"),
            ("failed", f"{counts.failed:,}", "bold $error" if counts.failed else "bold"),
            ("tokens", display.tokens(counts.tokens), "bold"),
            ("cost", display.cost(counts.cost), "bold"),
            ("concurrency", concurrency, "bold"),
        ]
        counters = Content(" · ").join(
            Content.assemble(f"{name} ", (value, style)) for name, value, style in shown
        )
        if counts.rate_limits.responses_429:
            # A line of its own: a rate-limited sweep must not look hung or slow for no reason.
            told = f"rate limited: {counts.rate_limits.describe()}"
            counters = Content.assemble(counters, "\n", (told, "bold $warning"))
        self.query_one("#counters", Static).update(counters)

    # -- keys ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause and stop while the sweep runs (or is paused, for stop), resume once it
        halted short of its end; hidden otherwise."""
        status = self.status
        if action == "pause":
            return status == "running"
        if action == "stop":
            return status in ("running", "paused")
        if action == "resume":
            return status in RESUMABLE
        return True

    @work(exclusive=True, group="control", exit_on_error=False)
    async def action_pause(self) -> None:
        """Pause the sweep, wherever it runs (another process is asked to)."""
        record = await self.wb.pause_sweep(self.sweep_id)
        self.feed.status = record.status
        self._draw(force=True)

    @work(exclusive=True, group="control", exit_on_error=False)
    async def action_resume(self) -> None:
        """Resume a paused sweep, or continue a stopped / interrupted one here."""
        was_live = self.wb.runner(self.sweep_id) is not None
        record = await self.wb.resume_sweep(self.sweep_id)
        self.feed.status = record.status
        if was_live:
            self._draw(force=True)
        else:
            self._reload()

    @work(exclusive=True, group="control", exit_on_error=False)
    async def action_stop(self) -> None:
        from .confirm import ConfirmScreen

        question = "Stop the sweep? Finished runs are kept and it can be resumed (r)."
        if await self.app.push_screen_wait(ConfirmScreen(question, confirm="Stop", danger=True)):
            record = await self.wb.stop_sweep(self.sweep_id)
            self.feed.status = record.status
            self._draw(force=True)

    def action_compare(self) -> None:
        from .compare import CompareScreen, config_side

        table = self.query_one(LeaderboardTable)
        marked = table.marked_entries()
        if len(marked) < 2:
            chosen = marked[0] if marked else table.highlighted()
            if chosen is None or chosen.rank == 1:
                self.notify("Mark two configs with space (or highlight one below #1).")
                return
            marked = [table.entries[0], chosen]
        self.app.push_screen(CompareScreen(config_side(marked[0]), config_side(marked[1])))

    @on(RunTable.Opened)
    def _open_run(self, event: RunTable.Opened) -> None:
        from .inspector import RunInspectorScreen

        self.app.push_screen(RunInspectorScreen(event.run_id, event.run_ids, event.more))

    def action_all_runs(self) -> None:
        from .runs import RunsScreen

        self.app.push_screen(RunsScreen(self.sweep_id))

    def action_export(self) -> None:
        from .export import ExportScreen

        if self._sweep is not None:
            self.app.push_screen(ExportScreen(self._sweep.experiment_id, sweep=self.sweep_id))

    def action_back(self) -> None:
        self.dismiss()
