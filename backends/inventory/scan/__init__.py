"""Walk the caches: one `lstat` per entry, headers read once per version of a file.

The scanner keeps what it saw of every directory, so a watch hint re-lists only
the directories that changed, and a header is read again only when the file's
(device, inode, size, mtime) changed.

New files are probed in one thread, a few files ahead of the one being parsed,
with the kernel fetching their headers in the background; on a network
filesystem chunks of files go to a small thread pool instead (see `probing`).

A long first scan can report how far it got: `Scanner.scan(progress=...)` (and
`Catalog.scan`) call `progress(done, found)` from the scanning thread at most
`PROGRESS_INTERVAL` apart, and once more at the end; see `ProgressCallback`.

Which module holds what (every name below is re-exported here):

- `scanner`: `Scanner` (every cache) and `CacheScanner` (one cache), which join
  the parts below; `gc_pause`, which holds off the cyclic garbage collector.
- `walk`: `DirTree`, the directory listing and what was seen per directory.
- `probing`: `ProbeMemo`, `probe_one`, `probe_files` and `probe_pending` (the
  memo, the prefetch window and the pool), with `PREFETCH_DEPTH`,
  `PREFETCH_BY_KIND` and `POOL_CHUNK`.
- `changes`: `Change` and `ChangeTracker` (the sorted images and the journal of
  changes the catalog reads).
- `progress`: `ScanStats`, `ProgressCallback`, `PROGRESS_INTERVAL`.
- `filestat`: `file_stat`, `user_name`, `group_name`.

Constants and functions are looked up in the module that holds them: a test
that changes one sets it there (`progress.PROGRESS_INTERVAL`,
`filestat.user_name`), not here.
"""

from __future__ import annotations

from imgcache.backends.inventory.scan.changes import Change, ChangeTracker
from imgcache.backends.inventory.scan.filestat import file_stat, group_name, user_name
from imgcache.backends.inventory.scan.probing import (
    POOL_CHUNK,
    PREFETCH_BY_KIND,
    PREFETCH_DEPTH,
    ProbeMemo,
    probe_files,
    probe_one,
    probe_pending,
)
from imgcache.backends.inventory.scan.progress import (
    PROGRESS_INTERVAL,
    ProgressCallback,
    ScanStats,
)
from imgcache.backends.inventory.scan.scanner import CacheScanner, Scanner, gc_pause
from imgcache.backends.inventory.scan.walk import DirTree

__all__ = [
    "POOL_CHUNK",
    "PREFETCH_BY_KIND",
    "PREFETCH_DEPTH",
    "PROGRESS_INTERVAL",
    "CacheScanner",
    "Change",
    "ChangeTracker",
    "DirTree",
    "ProbeMemo",
    "ProgressCallback",
    "ScanStats",
    "Scanner",
    "file_stat",
    "gc_pause",
    "group_name",
    "probe_files",
    "probe_one",
    "probe_pending",
    "user_name",
]
