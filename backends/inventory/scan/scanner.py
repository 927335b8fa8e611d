"""The scanners: `CacheScanner` for one cache, `Scanner` for every configured one.

A `CacheScanner` joins the parts of a scan: its `walk.DirTree` lists the
directories, `probing.probe_pending` reads the headers of the files that are new
or changed, the tree files their records, and its `changes.ChangeTracker` keeps
the sorted list and the journal of changes for the catalog. A `Scanner` runs one
scan at a time over every cache, with the cyclic garbage collector held off
(`gc_pause`) and, for caches on network filesystems, a thread pool for probes.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory.model import Image
from imgcache.backends.inventory.scan.changes import Change, ChangeTracker
from imgcache.backends.inventory.scan.probing import ProbeMemo, probe_pending
from imgcache.backends.inventory.scan.progress import (
    ProgressCallback,
    ProgressReporter,
    ScanStats,
)
from imgcache.backends.inventory.scan.walk import DirTree
from imgcache.backends.mounts import filesystem_type, needs_polling


class _CyclicGcPause:
    """Hold off the cyclic garbage collector while any scan runs (process-wide).

    Also taken by the catalog for its snapshots, which make tens of thousands
    of records on a first scan, none in a cycle either.

    A scan makes some twenty records per file, none of them in a reference
    cycle, so reference counting frees all its garbage; but every allocation
    counts towards the collector's thresholds, and its full passes walk the
    whole growing heap: a quarter of the CPU time of a 50,000-image scan. The
    collector is switched back on (if it was on) when the last scan ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scans = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._scans == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._scans += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._scans -= 1
            if self._scans == 0 and self._was_enabled:
                gc.enable()


#: Holds off the cyclic garbage collector while a scan (or a snapshot: the
#: catalog's findings make no cycles either) is under way.
gc_pause = _CyclicGcPause()


def _on_network_filesystem(path: str) -> bool:
    """True when `path` lies on NFS, Lustre, GPFS and the like (from the mount table)."""
    # From `mounts`, not `watch`: watchdog is for the app's watcher, and a
    # one-shot `imgcache list` never needs it.
    return needs_polling(filesystem_type(path))


class CacheScanner:
    """Scans one cache and keeps its directory tree for incremental rescans."""

    def __init__(self, spec: CacheSpec, memo: ProbeMemo, dir_mode: int) -> None:
        self.spec = spec
        self.memo = memo
        self._tree = DirTree(spec.path, spec.kind, dir_mode)
        self._changes = ChangeTracker(self._tree.images)
        self.remote = _on_network_filesystem(spec.path)
        """True when the cache lies on a network filesystem: probed on the thread pool."""

    @property
    def root(self) -> str:
        """The cache root."""
        return self.spec.path

    @property
    def problems(self) -> dict[str, str]:
        """Directory -> why it could not be read."""
        return self._tree.problems

    def images(self) -> Iterator[Image]:
        """Every image found, in no particular order."""
        return self._tree.images()

    def sorted_images(self) -> list[Image]:
        """Every image found, sorted by path (a new list each time)."""
        return self._changes.sorted_images()

    def take_changes(self) -> dict[str, Image | None] | None:
        """The records made or dropped since the last call: path -> record, or None if gone.

        See `changes.ChangeTracker.take_changes`: None when that is not known,
        and meant for one consumer (the catalog's snapshots).
        """
        return self._changes.take_changes()

    def scan(
        self,
        pool: ThreadPoolExecutor | None,
        stats: ScanStats,
        *,
        progress: ProgressReporter | None = None,
    ) -> Change:
        """Walk the whole cache; returns what differs from the previous walk."""
        return self.rescan([self.root], pool, stats, recursive=True, progress=progress)

    def rescan(
        self,
        dirs: Iterable[str],
        pool: ThreadPoolExecutor | None,
        stats: ScanStats,
        *,
        recursive: bool = False,
        progress: ProgressReporter | None = None,
    ) -> Change:
        """Re-list `dirs` (watch hints); new subdirectories are walked whole.

        With `recursive`, everything below `dirs` is re-listed too (a full rescan,
        which still reads no header of an unchanged file). `progress` gets
        `(done, found)` for the whole scan this is part of (see `ProgressCallback`):
        every file counted in `stats.files` but not pending here has its record.
        """
        report = progress.report if progress is not None else None
        tree = self._tree
        before, after, pending = tree.walk(dirs, stats, recursive=recursive, report=report)
        results = probe_pending(
            pending, self.memo, self.spec.kind, pool if self.remote else None, stats, report
        )
        tree.add_records(pending, results, after)
        self._changes.note(
            [p for p in before if p not in after],
            [(p, image) for p, image in after.items() if before.get(p) is not image],
        )
        change = Change.between(before, after)
        gone_keys = [before[p].stat.key for p in change.removed]
        gone_keys += [before[p].stat.key for p in change.changed]
        if gone_keys:
            # A renamed file or directory keeps its versions under the new names.
            live = {image.stat.key for image in after.values()}
            self.memo.forget(k for k in gone_keys if k not in live)
        return change


class Scanner:
    """Scans every configured cache, remembering headers between scans.

    `workers` threads probe new files of caches on network filesystems; caches
    on local disks are probed in the calling thread with the kernel fetching
    headers ahead (faster there: see `imgcache.backends.inventory.scan.probing`).
    """

    def __init__(
        self,
        specs: Iterable[CacheSpec],
        *,
        workers: int = 4,
        dir_mode: int = 0o755,
        memo: ProbeMemo | None = None,
    ) -> None:
        # "is not None": an empty memo is falsy (it has a length) but must still be shared.
        self.memo = memo if memo is not None else ProbeMemo()
        self.caches = [CacheScanner(spec, self.memo, dir_mode) for spec in specs]
        self._workers = workers
        self._lock = threading.Lock()

    def scan(self, progress: ProgressCallback | None = None) -> tuple[Change, ScanStats]:
        """Walk every cache whole; `progress` as described in `ProgressCallback`."""
        return self._run(
            lambda c, pool, stats, report: c.scan(pool, stats, progress=report), progress
        )

    def rescan(
        self, dirs: Iterable[str], progress: ProgressCallback | None = None
    ) -> tuple[Change, ScanStats]:
        """Re-list only `dirs` (and new directories below them)."""
        wanted = list(dirs)
        return self._run(
            lambda c, pool, stats, report: c.rescan(wanted, pool, stats, progress=report),
            progress,
        )

    def _run(self, step, progress: ProgressCallback | None) -> tuple[Change, ScanStats]:  # noqa: ANN001 - a private callback
        start = time.perf_counter()
        report = ProgressReporter(progress) if progress is not None else None
        stats = ScanStats()
        added: set[str] = set()
        changed: set[str] = set()
        removed: set[str] = set()
        # The pool only for caches on network filesystems (see the probing module).
        pooled = self._workers > 1 and any(cache.remote for cache in self.caches)
        # One scan at a time: the watcher's rescans and the periodic full scan
        # must not interleave their edits of the directory tree.
        with self._lock, gc_pause, contextlib.ExitStack() as stack:
            pool = None
            if pooled:
                pool = stack.enter_context(ThreadPoolExecutor(self._workers, "imgcache-probe"))
            for cache in self.caches:
                change = step(cache, pool, stats, report)
                added |= change.added
                changed |= change.changed
                removed |= change.removed
            if report is not None:
                report.finish(stats.files)
        stats.seconds = time.perf_counter() - start
        return Change(frozenset(added), frozenset(changed), frozenset(removed)), stats

    def images(self) -> list[Image]:
        """Every image of every cache, sorted by cache order then path."""
        result: list[Image] = []
        for cache in self.caches:
            result.extend(cache.sorted_images())
        return result

    def problems(self) -> list[str]:
        """Directories that could not be read, one line each."""
        return [p for cache in self.caches for p in cache.problems.values()]
