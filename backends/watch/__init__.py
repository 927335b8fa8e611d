"""Watch the caches for changes other admins make, and say which directories changed.

Events are hints, not truth: each one only marks a directory dirty, a burst of
them is coalesced into one call, and the scanner re-lists just those directories.
Events inside imgcache's own trash and lock directories are dropped.
inotify does not see changes made on other NFS/Lustre/GPFS clients, so caches on
network filesystems (read from the mount table) are polled instead. A watcher that
fails (inotify watch limit, root removed) falls back to polling and says so.

Where things are:

- `imgcache.backends.mounts` (beside this package, so that a scan can ask it
  without importing watchdog): the mount table, the filesystem a path lives on,
  which filesystems must be polled.
- `batches`: `DirtyBatcher`, which drops reserved directories and reports the
  rest in debounced batches on its flush thread.
- `watcher`: `CacheWatcher` (one inotify or polling watch per root, the fallbacks,
  the supervisor thread) and `WatchMode`, how each root is watched.

Names are looked up in the module that holds them: a test that replaces one sets
it there (`watcher.Observer`), not here.
"""

from __future__ import annotations

from imgcache.backends.mounts import (
    NETWORK_FILESYSTEMS,
    filesystem_type,
    mount_table,
    needs_polling,
)
from imgcache.backends.watch.batches import DirtyBatcher
from imgcache.backends.watch.watcher import CacheWatcher, WatchMode

__all__ = [
    "NETWORK_FILESYSTEMS",
    "CacheWatcher",
    "DirtyBatcher",
    "WatchMode",
    "filesystem_type",
    "mount_table",
    "needs_polling",
]
