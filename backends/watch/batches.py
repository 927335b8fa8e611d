"""Coalesce the directories events mark dirty into debounced batches, on a thread of their own.

Events are hints, not truth: each one only marks a directory dirty, a burst of
them is coalesced into one call, and the scanner re-lists just those directories.
Events inside imgcache's own trash and lock directories are dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from imgcache.backends.inventory import caches

log = logging.getLogger("imgcache.watch")


class DirtyBatcher:
    """Collects dirty directories and reports them in one call after a quiet `debounce`.

    `start` runs the flush thread; `stop` asks it to end (the caller joins it).
    """

    def __init__(
        self, roots: Iterable[str], on_dirty: Callable[[set[str]], None], debounce: float
    ) -> None:
        # "root/" of each root, for telling where an event's directory lies.
        self._prefixes = [root.rstrip("/") + "/" for root in roots]
        self._on_dirty = on_dirty
        self._debounce = debounce
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def mark(self, dirs: Iterable[str]) -> None:
        """Mark directories dirty; the next flush reports them.

        Directories in imgcache's own trash and lock directories are dropped:
        nothing there is an image, and a delete or a pull moves files in there.
        """
        wanted = [d for d in dirs if not self._reserved(d)]
        if not wanted:
            return
        with self._lock:
            self._dirty.update(wanted)
        self._wake.set()

    def _reserved(self, path: str) -> bool:
        """True for a path in (or of) a reserved directory under one of the roots."""
        for root in self._prefixes:
            if path.startswith(root) and caches.reserved(path[len(root) :]):
                return True
        return False

    def start(self) -> threading.Thread:
        """Start the flush thread and return it, for the caller to join after `stop`."""
        thread = threading.Thread(target=self._flush_loop, name="imgcache-watch-flush", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the flush thread to end, cutting a debounce under way short."""
        self._stop.set()
        self._wake.set()

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            # Let a burst (a pull writing, an rsync) settle into one rescan.
            self._stop.wait(self._debounce)
            with self._lock:
                dirty, self._dirty = self._dirty, set()
                self._wake.clear()
            if dirty:
                try:
                    self._on_dirty(dirty)
                except Exception:  # a broken callback must not stop the watcher
                    log.exception("watch callback failed")
