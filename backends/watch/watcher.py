"""Watch the caches for changes other admins make: one watchdog watch per root, kept alive.

Each root is watched by inotify, or by polling when it lies on a network
filesystem (see `mounts`) or polling is forced. A watcher that fails (inotify
watch limit, root removed) falls back to polling and says so; a supervisor thread
notices emitters that died and roots that vanished or came back. The directories
events touch go to a `DirtyBatcher`, which reports them in coalesced batches.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from imgcache.backends.mounts import filesystem_type, needs_polling
from imgcache.backends.watch.batches import DirtyBatcher

log = logging.getLogger("imgcache.watch")

#: The events asked of the kernel. Not opens, reads and closes after reading:
#: a scan opens every file it probes, and with those in the inotify mask each
#: of 10,000 header reads came back as two events for watchdog's threads to
#: decode, which made the app's first scan three times slower.
_WANTED = [
    FileAttribEvent,  # a mode or owner change: `unshared` may come or go
    DirAttribEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
]


@dataclass(frozen=True, slots=True)
class WatchMode:
    """How one cache root is watched, for the status bar."""

    root: str
    method: str
    """"inotify" or "polling"."""
    reason: str
    """Why this method, e.g. "nfs4 filesystem" or "inotify watch limit reached"."""


class _Handler(FileSystemEventHandler):
    """Turns each event into the directories it touched and marks them dirty."""

    def __init__(self, mark: Callable[[Iterable[str]], None]) -> None:
        self._mark = mark

    def on_any_event(self, event: FileSystemEvent) -> None:
        dirs = []
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = os.fsdecode(raw)
            dirs.append(os.path.dirname(path))
            if event.is_directory:
                dirs.append(path)
        self._mark(dirs)


class CacheWatcher:
    """Watches cache roots and reports dirty directories in coalesced batches.

    Each root has one watch (inotify or polling) and a mode the status bar shows.
    A supervisor thread checks every `supervise_interval` seconds that each
    root's emitter is still alive: an inotify emitter that died under a live
    root is replaced by polling, a root that vanished is marked "waiting" and
    watched again (and rescanned) when it comes back.
    """

    def __init__(
        self,
        roots: Iterable[str],
        on_dirty: Callable[[set[str]], None],
        on_status: Callable[[str], None] | None = None,
        *,
        poll_interval: float = 5.0,
        force_polling: bool = False,
        debounce: float = 0.3,
        supervise_interval: float = 1.0,
    ) -> None:
        self.roots = list(roots)
        self._batcher = DirtyBatcher(self.roots, on_dirty, debounce)
        self._on_status = on_status or (lambda _message: None)
        self._poll_interval = poll_interval
        self._force_polling = force_polling
        self._supervise_interval = supervise_interval
        self._stop = threading.Event()
        self._inotify: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._handles: dict[str, tuple[BaseObserver, ObservedWatch]] = {}
        self.modes: dict[str, WatchMode] = {}
        self._threads: list[threading.Thread] = []

    def mark(self, dirs: Iterable[str]) -> None:
        """Mark directories dirty; the next flush reports them.

        Directories in imgcache's own trash and lock directories are dropped:
        nothing there is an image, and a delete or a pull moves files in there.
        """
        self._batcher.mark(dirs)

    def start(self) -> None:
        """Start watching every root and the threads that flush and supervise."""
        # watchdog's recursive inotify watch adds a directory made by `mkdir -p
        # a/b` once for the parent's event and once for its own, and warns about
        # the second; the watch it keeps is the same, so the warning says nothing
        # to an admin. Set here, not at import: test runners reset the filters.
        warnings.filterwarnings(
            "ignore", message=r"Callback with id .* already exists", category=RuntimeWarning
        )
        for root in self.roots:
            self._watch_root(root)
        self._threads.append(self._batcher.start())
        thread = threading.Thread(
            target=self._supervise, name="imgcache-watch-supervise", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every observer and thread."""
        self._stop.set()
        self._batcher.stop()
        for observer in (self._inotify, self._polling):
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
        for observer in (self._inotify, self._polling):
            if observer is not None and observer.is_alive():
                observer.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)

    def _watch_root(self, root: str, why: str = "") -> None:
        """Watch one root the way its filesystem needs."""
        fstype = filesystem_type(root)
        suffix = f"; {why}" if why else ""
        if self._force_polling:
            self._watch_polling(root, "polling forced by the config" + suffix)
        elif needs_polling(fstype):
            self._watch_polling(
                root, f"{fstype} filesystem: other clients' changes are polled" + suffix
            )
        else:
            self._watch_inotify(root, f"{fstype or 'local'} filesystem" + suffix)

    def _observer(self, polling: bool) -> BaseObserver:
        if polling:
            if self._polling is None or not self._polling.is_alive():
                self._polling = PollingObserver(timeout=self._poll_interval)
                self._polling.daemon = True
                self._polling.start()
            return self._polling
        if self._inotify is None or not self._inotify.is_alive():
            self._inotify = Observer()
            self._inotify.daemon = True
            self._inotify.start()
        return self._inotify

    def _schedule(self, root: str, polling: bool) -> None:
        observer = self._observer(polling)
        watch = observer.schedule(_Handler(self.mark), root, recursive=True, event_filter=_WANTED)
        self._handles[root] = (observer, watch)

    def _watch_inotify(self, root: str, reason: str) -> None:
        try:
            self._schedule(root, polling=False)
        except OSError as exc:
            # ENOSPC is the inotify watch limit (fs.inotify.max_user_watches); EMFILE
            # the instance limit. Either way the cache still gets watched, by polling.
            why = (
                "inotify watch limit reached"
                if exc.errno == errno.ENOSPC
                else f"inotify failed: {exc.strerror or exc}"
            )
            self._watch_polling(root, why)
            self._on_status(f"{root}: {why}; polling every {self._poll_interval:g}s")
            return
        self.modes[root] = WatchMode(root, "inotify", reason)

    def _watch_polling(self, root: str, reason: str) -> None:
        try:
            self._schedule(root, polling=True)
        except OSError as exc:
            self.modes[root] = WatchMode(
                root, "rescan only", f"cannot watch: {exc.strerror or exc}"
            )
            self._on_status(f"{root}: cannot watch ({exc.strerror or exc}); periodic rescans only")
            return
        self.modes[root] = WatchMode(root, "polling", reason)

    def _drop(self, root: str) -> None:
        """Forget a root's watch, stopping its emitter if it still runs."""
        handle = self._handles.pop(root, None)
        if handle is not None:
            observer, watch = handle
            with contextlib.suppress(Exception):
                observer.unschedule(watch)

    def _alive(self, root: str) -> bool:
        handle = self._handles.get(root)
        if handle is None:
            return False
        observer, watch = handle
        if not observer.is_alive():
            return False
        try:
            emitters = list(observer.emitters)
        except RuntimeError:  # the set changed while copied; assume fine until next time
            return True
        return any(e.watch == watch and e.is_alive() for e in emitters)

    def _supervise(self) -> None:
        """Fall back to polling when an emitter dies; re-watch roots that come back."""
        while not self._stop.wait(self._supervise_interval):
            for root in list(self.modes):
                try:
                    self.check(root)
                except Exception:  # supervision must outlive any one root's trouble
                    log.exception("watch supervision of %s failed", root)

    def check(self, root: str) -> None:
        """Check one root's watch once (the supervisor calls this every interval)."""
        mode = self.modes.get(root)
        if mode is None:
            return
        exists = os.path.isdir(root)
        if mode.method in ("inotify", "polling"):
            if exists and self._alive(root):
                return
            self._drop(root)
            if not exists:
                self.modes[root] = WatchMode(root, "waiting", "the cache root disappeared")
                self._on_status(f"{root}: the cache root disappeared")
            else:
                self._watch_polling(root, f"{mode.method} stopped")
                self._on_status(
                    f"{root}: the {mode.method} watcher stopped; "
                    f"polling every {self._poll_interval:g}s"
                )
            self.mark([root])
        elif mode.method == "waiting" and exists:
            self._watch_root(root, "the cache root came back")
            self._on_status(f"{root}: the cache root is back ({self.modes[root].method})")
            self.mark([root])
