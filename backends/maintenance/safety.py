"""Open a file inside a cache root safely: component by component, never through a link.

A path is first placed inside its root lexically (so `..` and paths elsewhere are
refused before anything is opened), then every directory from the root down is
opened with `O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor, so a
symbolic link anywhere below the root is refused instead of followed, and a rename
of some directory above meanwhile cannot redirect us. The caller acts on the entry
through the parent's descriptor (`renameat`, `unlinkat`, `fchmod`) and compares the
entry's (device, inode, size, mtime) with what the scan recorded.

The cache root itself is configuration and may be a symbolic link (to a Lustre
mount, say); only what lies below it is held to these rules.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.model import FileStat
from imgcache.backends.inventory.scan import file_stat
from imgcache.backends.maintenance.common import MaintenanceError, owner_name

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def rel_in_root(root: str, path: str) -> str:
    """`path` relative to `root`, refusing the root itself and anything outside it.

    Both are made absolute without resolving links; a path written through the
    root's resolved location (the real path of a symlinked root) is accepted too.
    """
    target = os.path.abspath(path)
    for base in dict.fromkeys((os.path.abspath(root), os.path.realpath(root))):
        if target == base:
            raise MaintenanceError(f"{path} is the cache root itself, not a file in it", "root")
        if target.startswith(base.rstrip("/") + "/"):
            return target[len(base.rstrip("/")) + 1 :]
    raise MaintenanceError(f"{path} is outside the cache root {root}", "outside")


def check_internal(rel: str, path: str) -> None:
    """Refuse paths inside imgcache's own directories (trash, locks)."""
    parts = rel.split("/")
    if parts[0] == caches.TRASH_DIR:
        raise MaintenanceError(
            f"{path} is in imgcache's trash; the trash is emptied by purging it, not by rm",
            "trash",
        )
    for part in parts[:-1]:
        if part.startswith(caches.TEMP_PREFIX):
            raise MaintenanceError(f"{path} is inside imgcache's own directory {part}", "internal")


def open_root(root: str) -> int:
    """A descriptor of the cache root directory."""
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise MaintenanceError(f"cannot open the cache root {root}: {exc.strerror}") from None


def open_dir_at(parent_fd: int, name: str, shown: str) -> int:
    """Open the directory `name` under `parent_fd` without following a link."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise MaintenanceError(
                    f"{shown} is a symbolic link; imgcache never follows links inside a cache",
                    "symlink",
                ) from None
            raise MaintenanceError(f"{shown} is not a directory", "notdir") from None
        if exc.errno == errno.ENOENT:
            raise MaintenanceError(f"{shown}: no such directory", "missing") from None
        raise MaintenanceError(f"cannot open {shown}: {exc.strerror}") from None


def walk_dirs(root_fd: int, root: str, parts: list[str]) -> int:
    """Open the directory `root/parts...` from `root_fd` down; the caller closes it."""
    fd = os.dup(root_fd)
    shown = root.rstrip("/")
    try:
        for part in parts:
            shown = f"{shown}/{part}"
            child = open_dir_at(fd, part, shown)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_read_at(dir_fd: int, name: str) -> int:
    """Open a file for reading without following a link, and without touching its atime
    where we may (owner or root): reading an image to maintain it is no use of it."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags | getattr(os, "O_NOATIME", 0), dir_fd=dir_fd)
    except PermissionError:
        return os.open(name, flags, dir_fd=dir_fd)


def same_file(st: os.stat_result, expected: FileStat) -> bool:
    """Whether `st` is the version of the file the scan recorded."""
    return file_stat(st).key == expected.key


@dataclass
class Located:
    """An entry in a cache, held by its parent directory's descriptor."""

    root: str
    rel: str
    dir_fd: int
    name: str
    stat: os.stat_result
    root_fd: int = field(default=-1)
    """The root's descriptor when `locate` opened it (closed with the rest)."""

    @property
    def path(self) -> str:
        """The entry's absolute path, for messages."""
        return os.path.join(self.root, self.rel)

    def close(self) -> None:
        """Close the descriptors this entry holds."""
        for fd in (self.dir_fd, self.root_fd):
            if fd >= 0:
                os.close(fd)
        self.dir_fd = self.root_fd = -1

    def __enter__(self) -> Located:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def locate(
    root: str,
    path: str,
    *,
    expected: FileStat | None = None,
    root_fd: int | None = None,
    regular: bool = True,
) -> Located:
    """Resolve `path` inside `root` and lstat it, refusing what must not be touched.

    Refused: anything outside the root or the root itself, imgcache's own
    directories, any symbolic link on the way or as the entry itself, with
    `regular` anything but a regular file, and with `expected` an entry that is
    no longer the file the scan saw. Raises `MaintenanceError`.
    """
    rel = rel_in_root(root, path)
    check_internal(rel, path)
    *parents, name = rel.split("/")
    own_root = root_fd is None
    rfd = open_root(root) if root_fd is None else root_fd
    try:
        dir_fd = walk_dirs(rfd, root, parents)
    except BaseException:
        if own_root:
            os.close(rfd)
        raise
    located = Located(root, rel, dir_fd, name, os.stat_result((0,) * 10), rfd if own_root else -1)
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise MaintenanceError(f"{path}: no such file", "missing") from None
        except OSError as exc:
            raise MaintenanceError(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise MaintenanceError(
                f"{path} is a symbolic link; imgcache never follows or removes links", "symlink"
            )
        if regular and not stat.S_ISREG(st.st_mode):
            raise MaintenanceError(f"{path} is not a regular file", "notfile")
        if expected is not None and not same_file(st, expected):
            raise MaintenanceError(
                f"{path} changed since it was scanned; rescan and try again", "changed"
            )
        located.stat = st
        return located
    except BaseException:
        located.close()
        raise


def check_owner(st: os.stat_result, allowed: tuple[str, ...], path: str) -> None:
    """Refuse a file whose owner is not in `allowed` (an empty tuple allows everyone)."""
    if not allowed:
        return
    owner = owner_name(st.st_uid)
    if owner in allowed or str(st.st_uid) in allowed:
        return
    raise MaintenanceError(
        f"{path} is owned by {owner}, who is not in delete.allowed_owners "
        f"({', '.join(allowed)}); imgcache leaves it alone",
        "owner",
    )
