"""Reading the headers of new files: the probe memo, the prefetch window, the pool.

`ProbeMemo` remembers probe results by file version for every scan of a
process. `probe_files` probes files in one thread, a few files ahead of the one
being parsed: opening a file asks the kernel for its first
`probe.PREFETCH_BYTES` in the background (`probe.open_for_probe`), so the disk
works while Python parses. On a local disk that beats a thread pool, whose
threads only take turns with the GIL: on a 10,000-image bench cache
(bench/scan.py) a full scan took 1.16 s in one thread and 1.57 s with 4 (medians
of 5, warm), 3.8 s and 3.7 s cold. On a network filesystem every open is a round
trip the kernel cannot start early, so there `probe_pending` hands chunks of
files to a small thread pool whose threads each keep their own files in flight.
"""

from __future__ import annotations

import os
import stat as statmod
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from imgcache.backends.inventory import probe
from imgcache.backends.inventory.model import (
    CacheKind,
    Format,
    ProbeResult,
    new_probe_result,
)
from imgcache.backends.inventory.scan.progress import ScanStats
from imgcache.backends.inventory.scan.walk import Pending

_S_ISREG = statmod.S_ISREG
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


#: What each kind of special file is, as the `not-an-image` finding says it.
_SPECIAL = (
    (statmod.S_ISFIFO, "a FIFO (named pipe)", "a runtime opening it would block"),
    (statmod.S_ISSOCK, "a socket", "a runtime cannot open it"),
    (statmod.S_ISCHR, "a character device", "a runtime would read the device"),
    (statmod.S_ISBLK, "a block device", "a runtime would read the device"),
)


def _not_regular(mode: int, link: str | None) -> ProbeResult:
    """The result for a file the scanner must not open: a link, a FIFO, a device, ..."""
    if statmod.S_ISLNK(mode):
        target = link if link is not None else "?"
        return new_probe_result(
            Format.UNKNOWN, note=f"symbolic link to {target}; imgcache does not follow links"
        )
    what, why = next(
        ((what, why) for test, what, why in _SPECIAL if test(mode)),
        ("a special file", "a runtime cannot use it"),
    )
    return new_probe_result(
        Format.UNKNOWN,
        note=f"{what}, not a regular file: imgcache never opens it ({why})",
        not_image=what,
    )


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


def probe_pending(
    pending: Sequence[Pending],
    memo: ProbeMemo,
    kind: CacheKind,
    pool: ThreadPoolExecutor | None,
    stats: ScanStats,
    report: Callable[[int, int], None] | None = None,
) -> list[ProbeResult | None]:
    """The probe result of each pending file of a `kind` cache, in order.

    A symbolic link, FIFO, socket or device gets a result without being opened
    (`_not_regular`); a version `memo` knows is not read
    again; the rest are probed in this thread (`probe_files`), or with `pool`
    in chunks of `POOL_CHUNK` when there are more than one chunk, and go into
    `memo`. `stats` counts the memo hits, probes and header bytes; `report`, if
    given, gets `(done, found)` for the whole scan (`stats.files` found so far)
    as the probes go.
    """
    results: list[ProbeResult | None] = [None] * len(pending)
    keys = [item[3].key for item in pending]
    regular = [_S_ISREG(item[3].mode) for item in pending]
    cached = memo.get_many([k for k, reg in zip(keys, regular, strict=True) if reg])
    hits = iter(cached)
    misses: list[int] = []
    for i, item in enumerate(pending):
        if not regular[i]:
            results[i] = _not_regular(item[3].mode, item[4])
            continue
        hit = next(hits)
        if hit is not None:
            results[i] = hit
            stats.memo_hits += 1
        else:
            misses.append(i)
    if misses:
        todo = [(pending[i][2], pending[i][3].size) for i in misses]
        prefetch = PREFETCH_BY_KIND.get(kind, probe.PREFETCH_BYTES)
        found = stats.files
        # Every file found but these misses has its record by now.
        settled = found - len(misses)
        if pool is None or len(todo) <= POOL_CHUNK:
            tick = None
            if report is not None:

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
                if report is not None:
                    report(settled + len(probed), found)
        memo.put_many([(keys[i], r) for i, r in zip(misses, probed, strict=True)])
        header_bytes = 0
        for i, result in zip(misses, probed, strict=True):
            results[i] = result
            header_bytes += result.bytes_read
        stats.header_bytes += header_bytes
        stats.probed += len(misses)
    return results
