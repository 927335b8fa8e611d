"""The app's scans: asked for by the watcher, the timer, `r` and finished jobs; run one at a time.

Requests queue and merge - a full scan swallows every directory asked for, a
rescan of some directories adds to the next one - so a burst of watch events
costs one rescan. The scan itself runs in a thread worker, which also diffs the
table's rows and adds up the totals: the UI thread only swaps the results in
when `InventoryReady` arrives (see `ImgcacheApp.on_inventory_ready`). The first
scan of a large cache reports its progress (`ScanProgress`) for the status line.
"""

from __future__ import annotations

import time
from functools import partial

from imgcache.backends.inventory.catalog import Catalog
from imgcache.tui.host import Host
from imgcache.tui.messages import InventoryReady, ScanProgress
from imgcache.tui.widgets.cache_tree import totals
from imgcache.tui.widgets.rows import plan
from imgcache.tui.widgets.summary import FreeSpace, summary_text


class ScanControl:
    """Queues and runs the app's scans; see the module docstring."""

    def __init__(self, host: Host, catalog: Catalog, free_space: FreeSpace | None) -> None:
        self.host = host
        self.catalog = catalog
        self.free_space = free_space
        self.scanning = False
        """A scan is running in its worker."""
        self._pending_full = False
        self._pending_dirs: set[str] = set()
        self._pending_since = 0.0

    @property
    def busy(self) -> bool:
        """A scan is running or asked for."""
        return self.scanning or self._pending_full or bool(self._pending_dirs)

    def request(self, dirs: set[str] | None, seen: float = 0.0) -> None:
        """Ask for a full scan (None) or a rescan of `dirs`; requests queue and merge."""
        if dirs is None:
            self._pending_full = True
        else:
            self._pending_dirs |= dirs
        if seen and not self._pending_since:
            self._pending_since = seen
        if not self.scanning:
            self._next()

    def finished(self) -> None:
        """The last scan's result (or failure) is handled: run what was asked meanwhile."""
        self.scanning = False
        self._next()

    def _next(self) -> None:
        if self._pending_full:
            dirs: frozenset[str] | None = None
            # A full walk re-lists every directory, the dirty ones included.
            self._pending_full = False
            self._pending_dirs.clear()
        elif self._pending_dirs:
            dirs = frozenset(self._pending_dirs)
            self._pending_dirs.clear()
        else:
            return
        started = self._pending_since or time.perf_counter()
        self._pending_since = 0.0
        self.scanning = True
        self.host.run_worker(
            partial(self._scan, dirs, started),
            thread=True, exit_on_error=False, group="scan", name="scan",
        )  # fmt: skip

    def _scan(self, dirs: frozenset[str] | None, started: float) -> None:
        # Runs on the worker's thread.
        host = self.host
        now = host.clock()
        # A first scan of a large cache over NFS can take a while: say how far it got.
        progress = self._post_progress if host.inventory is None else None
        if dirs is None:
            inventory = self.catalog.scan(now, progress)
        else:
            inventory = self.catalog.rescan(dirs, now)
        # Diffing rows and adding up totals is the expensive part of showing an
        # inventory; do it here so the UI thread only swaps the results in. The
        # table's rows are read, never changed, and no other scan runs meanwhile.
        main = host.main
        change = plan(inventory.images, main.table.model.rows, main.names)
        sums = totals(change.rows.values())
        summary = summary_text(inventory, main.names, self.free_space)
        host.post_message(InventoryReady(inventory, dirs is None, started, change, sums, summary))

    def _post_progress(self, done: int, found: int) -> None:
        # Called on the scanning thread; the status bar is updated on the UI thread.
        self.host.post_message(ScanProgress(done, found))
