"""Messages the app's workers and the watcher's threads post to the app.

Workers never touch widgets or reactives: they post one of these, and the app's
handlers (on the UI thread) hand the data down to the screen. The watcher's
messages and the jobs' progress can arrive in bursts, so they collapse while
queued (`can_replace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.message import Message

from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobStatus
from imgcache.backends.watch import WatchMode
from imgcache.tui.widgets.cache_tree import Totals
from imgcache.tui.widgets.rows import Plan


@dataclass
class InventoryReady(Message):
    """A scan or rescan finished; `inventory` is the new truth."""

    inventory: Inventory
    full: bool
    """True for a walk of every cache, False for a watch-hinted rescan."""
    started: float
    """`time.perf_counter()` when the request was made (for the latency figures)."""
    plan: Plan
    """The table's rows diffed against the new images (worked out in the worker)."""
    totals: Totals
    """Files and bytes per cache and repository, for the tree."""
    summary: Text
    """The summary bar's line."""


@dataclass
class ScanFailed(Message):
    """A scan raised; the previous inventory stays on screen."""

    error: str


@dataclass
class ScanProgress(Message):
    """How far a running scan got: records made for `done` of the `found` files listed."""

    done: int
    found: int

    def can_replace(self, message: Message) -> bool:
        """Only the newest count matters."""
        return isinstance(message, ScanProgress)


@dataclass
class CachesDirty(Message):
    """The watcher saw changes in these directories."""

    dirs: set[str]
    seen: float = 0.0
    """`time.perf_counter()` when the watcher reported them."""

    def can_replace(self, message: Message) -> bool:
        """Fold a queued report into the next one, so a burst costs one rescan."""
        if isinstance(message, CachesDirty):
            message.dirs |= self.dirs
            message.seen = min(message.seen, self.seen) if message.seen else self.seen
            return True
        return False


@dataclass
class WatchStatus(Message):
    """How each root is watched now, and what just happened (a fallback, a lost root)."""

    modes: dict[str, WatchMode] = field(default_factory=dict)
    event: str = ""


@dataclass
class JobsUpdated(Message):
    """New snapshots of some jobs, by job id (posted from the queue's worker threads)."""

    statuses: dict[int, JobStatus]

    def can_replace(self, message: Message) -> bool:
        """Fold a queued update into the next one: the newest snapshot of each job wins.

        A job's final snapshot is the last one it sends, so no end is ever lost.
        """
        if isinstance(message, JobsUpdated):
            message.statuses = {**self.statuses, **message.statuses}
            return True
        return False


@dataclass
class JobsReady(Message):
    """The job queue is open and the leftovers of killed jobs are gone."""

    queue: JobQueue
    removed: list[str]
    """Temp files and scratch directories of dead jobs that were removed."""
