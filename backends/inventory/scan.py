"""Walk the caches: one `lstat` per entry, headers read once per version of a file.

The scanner keeps what it saw of every directory, so a watch hint re-lists only
the directories that changed, and a header is read again only when the file's
(device, inode, size, mtime) changed.

New files are probed in one thread, a few files ahead of the one being parsed:
opening a file asks the kernel for its first `probe.PREFETCH_BYTES` in the
background (`probe.open_for_probe`), so the disk works while Python parses.
On a local disk that beats a thread pool, whose threads only take turns with
the GIL: on a 10,000-image bench cache (bench/scan.py) a full scan took 1.16 s
in one thread and 1.57 s with 4 (medians of 5, warm), 3.8 s and 3.7 s cold. On
a network filesystem every open is a round trip the kernel cannot start early,
so there chunks of files go to a small thread pool whose threads each keep
their own files in flight.

A long first scan can report how far it got: `Scanner.scan(progress=...)` (and
`Catalog.scan`) call `progress(done, found)` from the scanning thread at most
`PROGRESS_INTERVAL` apart, and once more at the end; see `ProgressCallback`.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import grp
import os
import pwd
import stat as statmod
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory import caches, probe
from imgcache.backends.inventory.model import (
    CacheKind,
    FileStat,
    Format,
    Image,
    ProbeResult,
    image_with,
    new_file_stat,
    new_image,
    new_probe_result,
)

_SKIP_DIRS = caches.RESERVED_DIRS
#: Files opened ahead of the one being parsed, each with its header fetch under way.
#: Deep enough to keep a disk or an NFS server busy, shallow next to any fd limit.
PREFETCH_DEPTH = 32
#: What to fetch ahead of the probe, by cache kind: a SIF needs its first 36 KiB
#: (see probe.PREFETCH_BYTES), a squashfs one page, and enroot caches hold
#: squashfs. Only a guess: a SIF in an enroot cache is read right, just slower.
#: On real (not sparse) files the full window for each .sqsh would read 9 pages
#: from the disk for the one that holds the superblock.
PREFETCH_BY_KIND = {CacheKind.ENROOT: 4096}
#: Files per task handed to the thread pool (network filesystems only): large
#: enough that a task's own prefetch window fills, small enough to share the work.
POOL_CHUNK = 64
#: Seconds between two progress reports of one scan, at least.
PROGRESS_INTERVAL = 0.1

ProgressCallback = Callable[[int, int], None]
"""``progress(done, found)``: how far a scan got, for a "reading headers 3,200/10,000" line.

`found` is the number of files listed so far: it grows while directories are
listed, cache by cache, so it reaches the total only when the last cache has
been listed. `done` is how many of them have their record: header read, or
known already (unchanged since the last scan, or remembered by the probe memo);
on a first scan that is the files probed. Called from the scanning thread,
between files, at most every `PROGRESS_INTERVAL` seconds and once at the end
with ``done == found``; it must return quickly, and whatever it raises stops
the scan.
"""


def file_stat(st: os.stat_result) -> FileStat:
    """Keep the parts of an `lstat` result imgcache uses."""
    # The fast constructor, positional in FileStat's field order: one per new or
    # changed file of a scan (see imgcache.backends.inventory.model.fast_constructor).
    return new_file_stat(
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime,
        st.st_atime,
        st.st_ctime,
        st.st_mode,
        st.st_uid,
        st.st_gid,
    )


def _same(fst: FileStat, st: os.stat_result) -> bool:
    """True when `st` is the lstat `fst` was made from: `file_stat(st) == fst`,
    without building a FileStat for every unchanged file of a rescan."""
    return (
        fst.ino == st.st_ino
        and fst.mtime == st.st_mtime
        and fst.size == st.st_size
        and fst.dev == st.st_dev
        and fst.ctime == st.st_ctime
        and fst.atime == st.st_atime
        and fst.mode == st.st_mode
        and fst.uid == st.st_uid
        and fst.gid == st.st_gid
    )


_S_ISDIR, _S_ISREG, _S_ISLNK = statmod.S_ISDIR, statmod.S_ISREG, statmod.S_ISLNK


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    """The user name for `uid`, or the number when the user is unknown."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    """The group name for `gid`, or the number when the group is unknown."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class ProbeMemo:
    """Probe results by file version, shared by every scan of one process."""

    def __init__(self) -> None:
        self._results: dict[tuple[int, int, int, int], ProbeResult] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bytes_read = 0

    def get(self, key: tuple[int, int, int, int]) -> ProbeResult | None:
        """The remembered result for this version of a file, if any."""
        with self._lock:
            result = self._results.get(key)
            if result is not None:
                self.hits += 1
            return result

    def put(self, key: tuple[int, int, int, int], result: ProbeResult) -> None:
        """Remember a result; errors reading the file are not remembered."""
        with self._lock:
            self.misses += 1
            self.bytes_read += result.bytes_read
            if not (result.note or "").startswith("cannot read"):
                self._results[key] = result

    def get_many(self, keys: Sequence[tuple[int, int, int, int]]) -> list[ProbeResult | None]:
        """`get` for many keys under one lock (a scan asks for thousands at once)."""
        with self._lock:
            found = [self._results.get(key) for key in keys]
            self.hits += sum(1 for r in found if r is not None)
            return found

    def put_many(self, items: Iterable[tuple[tuple[int, int, int, int], ProbeResult]]) -> None:
        """`put` for many results under one lock."""
        with self._lock:
            for key, result in items:
                self.misses += 1
                self.bytes_read += result.bytes_read
                if not (result.note or "").startswith("cannot read"):
                    self._results[key] = result

    def forget(self, keys: Iterable[tuple[int, int, int, int]]) -> None:
        """Drop results for versions that no longer exist."""
        with self._lock:
            for key in keys:
                self._results.pop(key, None)

    def __len__(self) -> int:
        return len(self._results)


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


class _Progress:
    """Reports of one scan to a `ProgressCallback`, no closer than `PROGRESS_INTERVAL`."""

    __slots__ = ("_callback", "_next")

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._next = 0.0

    def report(self, done: int, found: int) -> None:
        """Pass `(done, found)` on, unless the last report was too recent."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + PROGRESS_INTERVAL
            self._callback(done, found)

    def finish(self, found: int) -> None:
        """The last report: every file found has its record."""
        self._callback(found, found)


def _unreadable(exc: OSError) -> ProbeResult:
    return new_probe_result(Format.UNKNOWN, note=f"cannot read: {exc.strerror or exc}")


def probe_one(path: str, size: int) -> ProbeResult:
    """Probe a file, turning a failure to open or read it into a note."""
    try:
        return probe.probe_path(path, size)
    except OSError as exc:
        return _unreadable(exc)


def _open(path: str, prefetch: int) -> int | OSError:
    try:
        return probe.open_for_probe(path, prefetch)
    except OSError as exc:
        return exc


def probe_files(
    files: Sequence[tuple[str, int]],
    depth: int = PREFETCH_DEPTH,
    prefetch: int = probe.PREFETCH_BYTES,
    progress: Callable[[int], None] | None = None,
) -> list[ProbeResult]:
    """Probe `(path, size)` files in order, like `probe_one` on each.

    `depth` files are kept open ahead of the one being parsed: opening starts the
    fetch of their first `prefetch` bytes, so reading them later rarely waits.
    `progress`, if given, is called with the number of files probed so far,
    every few files.
    """
    results: list[ProbeResult] = []
    append = results.append
    window: deque[int | OSError] = deque()
    ahead = 0
    count = len(files)
    try:
        for i, (_, size) in enumerate(files):
            while ahead < count and ahead <= i + depth:
                window.append(_open(files[ahead][0], prefetch))
                ahead += 1
            fd = window.popleft()
            if progress is not None and not i & 31:
                progress(i)
            if isinstance(fd, OSError):
                append(_unreadable(fd))
                continue
            try:
                append(probe.probe_fd(fd, size))
            except OSError as exc:
                append(_unreadable(exc))
            finally:
                os.close(fd)
    finally:
        # Only after an exception (KeyboardInterrupt, MemoryError): close the rest.
        for fd in window:
            if not isinstance(fd, OSError):
                os.close(fd)
    return results


#: A file whose record must be (re)built: directory, name, path, lstat, link target.
_Pending = tuple[str, str, str, FileStat, str | None]


def _on_network_filesystem(path: str) -> bool:
    """True when `path` lies on NFS, Lustre, GPFS and the like (from the mount table)."""
    # Imported here: imgcache.backends.watch brings in watchdog, which a one-shot
    # `imgcache list` never needs otherwise.
    from imgcache.backends.watch import filesystem_type, needs_polling

    return needs_polling(filesystem_type(path))


@dataclass(slots=True)
class _Dir:
    """What the scanner saw of one directory."""

    stat: FileStat
    blocked_by: str | None
    """The closest directory at or above this one (inside the root) that other
    users cannot traverse, if any."""
    files: dict[str, Image] = field(default_factory=dict)
    subdirs: set[str] = field(default_factory=set)


def _path_of(image: Image) -> str:
    return image.path


def _remember(before: dict[str, Image], d: _Dir) -> None:
    """Add the files of `d` to `before`, by path (`_Dir.files` is by name)."""
    for image in d.files.values():
        before[image.path] = image


@dataclass(slots=True)
class ScanStats:
    """What one scan or rescan cost."""

    lstats: int = 0
    dirs: int = 0
    files: int = 0
    probed: int = 0
    memo_hits: int = 0
    header_bytes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Change:
    """Which paths a rescan added, changed and removed."""

    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class CacheScanner:
    """Scans one cache and keeps its directory tree for incremental rescans."""

    def __init__(self, spec: CacheSpec, memo: ProbeMemo, dir_mode: int) -> None:
        self.spec = spec
        self.memo = memo
        # Others need the execute bit on every directory to reach an image.
        self._traverse_bits = dir_mode & 0o011
        self._dirs: dict[str, _Dir] = {}
        # Every image sorted by path, and the paths alone (for bisect), kept up to
        # date by each rescan; None when they must be sorted again. A snapshot
        # wants them sorted after every watch event, and sorting 50,000 paths
        # costs more than the whole rescan of a directory.
        self._sorted: list[Image] | None = None
        self._sorted_paths: list[str] = []
        # Records made or dropped since `take_changes` last ran (see there).
        self._journal: dict[str, Image | None] | None = None
        self.problems: dict[str, str] = {}
        """Directory -> why it could not be read."""
        self.remote = _on_network_filesystem(spec.path)
        """True when the cache lies on a network filesystem: probed on the thread pool."""

    @property
    def root(self) -> str:
        """The cache root."""
        return self.spec.path

    def images(self) -> Iterator[Image]:
        """Every image found, in no particular order."""
        for d in self._dirs.values():
            yield from d.files.values()

    def sorted_images(self) -> list[Image]:
        """Every image found, sorted by path (a new list each time)."""
        if self._sorted is None:
            self._sorted = sorted(self.images(), key=_path_of)
            self._sorted_paths = [image.path for image in self._sorted]
        return list(self._sorted)

    def take_changes(self) -> dict[str, Image | None] | None:
        """The records made or dropped since the last call: path -> record, or None if gone.

        A record is made for every new or changed file (and for one whose
        directory was opened or closed to others); every other image is the
        same object as before. None when that is not known - before the first
        call, or when so much changed that listing it is not worth it: then
        everything may have changed. Meant for one consumer (the catalog's
        snapshots); each call starts a new list.
        """
        journal = self._journal
        self._journal = {}
        return journal

    def _note_changes(self, gone: list[str], new: list[tuple[str, Image]]) -> None:
        """Keep the sorted list and the journal in step with what a rescan found."""
        journal = self._journal
        if journal is not None:
            journal.update(dict.fromkeys(gone))
            journal.update(new)
            if len(journal) > max(1024, len(self._sorted_paths) // 4):
                self._journal = None  # the consumer does better starting afresh
        images, paths = self._sorted, self._sorted_paths
        if images is None:
            return
        if len(gone) + len(new) > max(64, len(images) // 16):
            # Cheaper to sort again, when (and if) someone asks.
            self._sorted = None
            return
        for path in gone:
            i = bisect.bisect_left(paths, path)
            if i == len(paths) or paths[i] != path:
                self._sorted = None  # cannot happen; sort again rather than guess
                return
            del paths[i], images[i]
        for path, image in new:
            i = bisect.bisect_left(paths, path)
            if i < len(paths) and paths[i] == path:
                images[i] = image
            else:
                paths.insert(i, path)
                images.insert(i, image)

    def scan(
        self,
        pool: ThreadPoolExecutor | None,
        stats: ScanStats,
        *,
        progress: _Progress | None = None,
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
        progress: _Progress | None = None,
    ) -> Change:
        """Re-list `dirs` (watch hints); new subdirectories are walked whole.

        With `recursive`, everything below `dirs` is re-listed too (a full rescan,
        which still reads no header of an unchanged file). `progress` gets
        `(done, found)` for the whole scan this is part of (see `ProgressCallback`):
        every file counted in `stats.files` but not pending here has its record.
        """
        before: dict[str, Image] = {}
        after: dict[str, Image] = {}
        pending: list[_Pending] = []
        queue = [d for d in {os.path.normpath(d) for d in dirs} if self._inside(d)]
        # Parents first (pop takes from the end), so a vanished subtree is dropped
        # whole before any of its directories would be listed on its own.
        queue.sort(key=len, reverse=True)
        visited: set[str] = set()
        # lstat results of subdirectories from their parent's listing: listing a
        # directory needs its own stat, and a second lstat would break "one lstat
        # per entry" (only the dirs asked for by name are lstat'ed themselves).
        known: dict[str, os.stat_result] = {}
        while queue:
            path = queue.pop()
            if path in visited:
                continue
            visited.add(path)
            old = self._dirs.get(path)
            if old is not None:
                _remember(before, old)
            new_subdirs = self._list(path, old, pending, after, stats, known)
            if progress is not None:
                progress.report(stats.files - len(pending), stats.files)
            if new_subdirs is None:
                # Gone or unreadable: forget it and everything below it.
                for sub in self._subtree(path):
                    _remember(before, self._dirs[sub])
                    del self._dirs[sub]
                continue
            d = self._dirs[path]
            for sub in d.subdirs:
                child = os.path.join(path, sub)
                if recursive or sub in new_subdirs or child not in self._dirs:
                    queue.append(child)
            # Subdirectories that disappeared take their subtree with them.
            for gone in (old.subdirs - d.subdirs) if old else ():
                for sub in self._subtree(os.path.join(path, gone)):
                    _remember(before, self._dirs[sub])
                    del self._dirs[sub]

        self._probe(pending, pool if self.remote else None, stats, after, progress)
        self._note_changes(
            [p for p in before if p not in after],
            [(p, image) for p, image in after.items() if before.get(p) is not image],
        )
        added = frozenset(p for p in after if p not in before)
        removed = frozenset(p for p in before if p not in after)
        changed = frozenset(
            p for p in after if p in before and before[p].stat.key != after[p].stat.key
        )
        gone_keys = [before[p].stat.key for p in removed]
        gone_keys += [before[p].stat.key for p in changed]
        if gone_keys:
            # A renamed file or directory keeps its versions under the new names.
            live = {image.stat.key for image in after.values()}
            self.memo.forget(k for k in gone_keys if k not in live)
        return Change(added, changed, removed)

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root.rstrip("/") + "/")

    def _subtree(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self._dirs if p == path or p.startswith(prefix)]

    def _blocked(self, path: str, st: FileStat) -> str | None:
        if path != self.root:
            parent = self._dirs.get(os.path.dirname(path))
            if parent is not None and parent.blocked_by:
                return parent.blocked_by
        if st.mode & self._traverse_bits != self._traverse_bits:
            return path
        return None

    def _list(
        self,
        path: str,
        old: _Dir | None,
        pending: list[_Pending],
        after: dict[str, Image],
        stats: ScanStats,
        known: dict[str, os.stat_result],
    ) -> set[str] | None:
        """List one directory; returns its subdirectories that are new, or None if gone.

        Its own stat comes from `known` when its parent was just listed; the
        stats of its subdirectories go there for when they are listed.
        """
        try:
            raw = known.pop(path, None)
            if raw is None:
                raw = os.lstat(path)
                stats.lstats += 1
            st = file_stat(raw)
            if not statmod.S_ISDIR(st.mode):
                return None
            entries = list(os.scandir(path))
        except FileNotFoundError:
            self.problems.pop(path, None)
            return None
        except OSError as exc:
            self.problems[path] = f"cannot list {path}: {exc.strerror or exc}"
            return None
        self.problems.pop(path, None)
        stats.dirs += 1
        d = _Dir(st, self._blocked(path, st))
        self._dirs[path] = d
        new_subdirs: set[str] = set()
        files = d.files
        old_files = old.files if old is not None else {}
        old_subdirs = old.subdirs if old is not None else set()
        blocked_by = d.blocked_by
        # Counted in locals and added once: this loop runs for every entry.
        lstats = found = unchanged = 0
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and lstat
            lstats += 1
            mode = est.st_mode
            if _S_ISDIR(mode):
                name = entry.name
                if name in _SKIP_DIRS:
                    continue
                d.subdirs.add(name)
                known[entry.path] = est
                if name not in old_subdirs:
                    new_subdirs.add(name)
                continue
            if not (_S_ISREG(mode) or _S_ISLNK(mode)):
                continue  # sockets, fifos, devices are never images
            found += 1
            name = entry.name
            full = entry.path
            previous = old_files.get(name)
            if previous is not None and _same(previous.stat, est):
                # Unchanged: keep the record as it is (findings are recomputed
                # later) - unless its directory was opened or closed to others.
                if previous.blocked_by != blocked_by:
                    previous = image_with(previous, blocked_by, previous.findings)
                files[name] = previous
                after[full] = previous
                unchanged += 1
                continue
            fst = file_stat(est)
            link = None
            if _S_ISLNK(mode):
                with contextlib.suppress(OSError):
                    link = os.readlink(full)
            pending.append((path, name, full, fst, link))
        stats.lstats += lstats
        stats.files += found
        stats.memo_hits += unchanged
        return new_subdirs

    def _probe(
        self,
        pending: list[_Pending],
        pool: ThreadPoolExecutor | None,
        stats: ScanStats,
        after: dict[str, Image],
        progress: _Progress | None = None,
    ) -> None:
        results: list[ProbeResult | None] = [None] * len(pending)
        keys = [item[3].key for item in pending]
        cached = self.memo.get_many(
            [k for k, item in zip(keys, pending, strict=True) if item[4] is None]
        )
        hits = iter(cached)
        misses: list[int] = []
        for i, item in enumerate(pending):
            link = item[4]
            if link is not None:
                results[i] = new_probe_result(
                    Format.UNKNOWN, note=f"symbolic link to {link}; imgcache does not follow links"
                )
                continue
            hit = next(hits)
            if hit is not None:
                results[i] = hit
                stats.memo_hits += 1
            else:
                misses.append(i)
        if misses:
            todo = [(pending[i][2], pending[i][3].size) for i in misses]
            prefetch = PREFETCH_BY_KIND.get(self.spec.kind, probe.PREFETCH_BYTES)
            found = stats.files
            # Every file found but these misses has its record by now.
            settled = found - len(misses)
            if pool is None or len(todo) <= POOL_CHUNK:
                tick = None
                if progress is not None:
                    report = progress.report

                    def tick(probed: int) -> None:
                        report(settled + probed, found)

                probed = probe_files(todo, PREFETCH_DEPTH, prefetch, tick)
            else:
                chunks = [todo[i : i + POOL_CHUNK] for i in range(0, len(todo), POOL_CHUNK)]
                # Each task keeps its own (smaller) window of files in flight.
                depth = [max(1, PREFETCH_DEPTH // 4)] * len(chunks)
                sizes = [prefetch] * len(chunks)
                probed = []
                # Collected here, in the scanning thread, which reports progress.
                for part in pool.map(probe_files, chunks, depth, sizes):
                    probed += part
                    if progress is not None:
                        progress.report(settled + len(probed), found)
            self.memo.put_many([(keys[i], r) for i, r in zip(misses, probed, strict=True)])
            header_bytes = 0
            for i, result in zip(misses, probed, strict=True):
                results[i] = result
                header_bytes += result.bytes_read
            stats.header_bytes += header_bytes
            stats.probed += len(misses)
        dirs = self._dirs
        kind, root = self.spec.kind, self.root
        skip = len(root)
        for (dirpath, name, full, fst, _), result in zip(pending, results, strict=True):
            d = dirs.get(dirpath)
            if d is None or result is None:
                continue
            ref, ref_error = caches.ref_for(kind, full[skip:].lstrip("/"), result)
            # The fast constructor, positional in Image's field order: one per new
            # or changed file (see imgcache.backends.inventory.model.fast_constructor).
            image = new_image(
                kind,
                root,
                full,
                ref,
                ref_error,
                fst,
                result,
                user_name(fst.uid),
                group_name(fst.gid),
                d.blocked_by,
            )
            d.files[name] = image
            after[full] = image


class Scanner:
    """Scans every configured cache, remembering headers between scans.

    `workers` threads probe new files of caches on network filesystems; caches
    on local disks are probed in the calling thread with the kernel fetching
    headers ahead (faster there: see the module docstring).
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
        report = _Progress(progress) if progress is not None else None
        stats = ScanStats()
        added: set[str] = set()
        changed: set[str] = set()
        removed: set[str] = set()
        # The pool only for caches on network filesystems (see the module docstring).
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
