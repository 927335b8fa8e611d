"""Which filesystem a cache lives on, read from the mount table, and whether it must be polled.

inotify does not see changes made on other NFS/Lustre/GPFS clients, so caches on
network filesystems are polled instead. This module does not import watchdog: the
scanner asks it whether a cache is remote, and a one-shot `imgcache list` should
not pay for the watcher.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

#: Filesystems whose changes on other clients inotify cannot see.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "gpfs",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "fuse.ceph-fuse",
        "beegfs",
        "panfs",
        "9p",
        "afs",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.gcsfuse",
        "wekafs",
        "fuse.juicefs",
    }
)


def _unescape(field: str) -> str:
    """Undo the octal escapes (\\040 for a space) of /proc mount tables."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def mount_table(path: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount, in mount order."""
    mounts = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                rest = right.split()
                if len(fields) >= 5 and rest:
                    mounts.append((_unescape(fields[4]), rest[0]))
    except OSError:
        pass
    return mounts


def filesystem_type(path: str, mounts: Iterable[tuple[str, str]] | None = None) -> str | None:
    """The type of the filesystem `path` lives on, from the mount table."""
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for point, fstype in mount_table() if mounts is None else mounts:
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        # Later mounts on the same point hide earlier ones, hence ">=".
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)
    return best[1] if best else None


def needs_polling(fstype: str | None) -> bool:
    """True for filesystems whose remote changes inotify misses."""
    return fstype is not None and (fstype in NETWORK_FILESYSTEMS or fstype.startswith("nfs"))
