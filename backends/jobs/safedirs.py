"""Reach directories and files under a root without following a link someone else planted.

Other admins (and, in the scratch and log directories, other users) may write
where imgcache writes, and file names imgcache uses are predictable (lock files,
temps). A symbolic link planted at such a name, or in place of a directory on
the way, would aim imgcache's writes (as root, often) at any file. So every
directory below a root is opened component by component with `O_NOFOLLOW |
O_DIRECTORY` relative to its parent's descriptor (`walk`), files are created
with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to that descriptor
(`create_file`), and existing files are opened only after `lstat` said they are
regular files, with `O_NOFOLLOW | O_NONBLOCK`, and checked by `fstat` to be
what was looked at (`open_file`). Anything else is refused with `UnsafePath`,
one line saying what and why.

The root itself (a cache root, `$IMGCACHE_TMPDIR`, `$XDG_STATE_HOME`) is
configuration and may be a link, to a Lustre mount say; only what lies below it
is held to these rules.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from imgcache.backends.jobs.states import JobError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafePath(JobError):
    """A path under a root is a link or not what imgcache made; str() says which."""


def _what(st: os.stat_result | None) -> str:
    if st is None:
        return "it vanished while it was opened"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "it is a directory"
    if stat.S_ISFIFO(st.st_mode):
        return "it is a FIFO"
    if stat.S_ISSOCK(st.st_mode):
        return "it is a socket"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "it is a device node"
    return "it is not a regular file"


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_root(root: str) -> int:
    """A descriptor of the directory `root` (which may be reached through a link)."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_dir(parent_fd: int, name: str, where: str, *, mode: int | None = None) -> int:
    """Open the directory `name` under `parent_fd`; with `mode`, make it when missing.

    A directory this call makes gets `mode` by chmod, whatever the umask. A
    link or anything else in its place is refused: `UnsafePath`.
    """
    for _ in range(3):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if mode is None:
                raise
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            what = _what(_lstat_at(parent_fd, name))
            raise UnsafePath(
                f"refusing {name} in {where}: {what}, not a directory imgcache made"
            ) from None
        try:
            os.mkdir(name, mode, dir_fd=parent_fd)
        except FileExistsError:
            continue  # another job made it first; its mode is its business
        fd = open_dir(parent_fd, name, where)
        os.fchmod(fd, mode)
        return fd
    raise UnsafePath(f"refusing {name} in {where}: it keeps changing while it is opened")


def walk(root: str, parts: list[str], *, mode: int | None = None) -> int:
    """A descriptor of `root/parts...`, each part opened (or with `mode` made) as `open_dir` does.

    The caller closes it. `FileNotFoundError` when a part is missing and `mode` is None.
    """
    fd = open_root(root)
    where = root.rstrip("/") or "/"
    try:
        for part in parts:
            child = open_dir(fd, part, where, mode=mode)
            os.close(fd)
            fd = child
            where = os.path.join(where, part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def split_under(root: str, directory: str) -> list[str]:
    """The components of `directory` below `root` (lexically; `..` is refused)."""
    rel = os.path.relpath(os.path.abspath(directory), os.path.abspath(root))
    if rel == ".":
        return []
    parts = rel.split(os.sep)
    if ".." in parts:
        raise UnsafePath(f"{directory} is outside {root}")
    return parts


def create_file(
    dir_fd: int, name: str, where: str, flags: int = os.O_RDWR, mode: int = 0o600
) -> int:
    """Create the new file `name` under `dir_fd` (never an existing one, never through a link)."""
    try:
        return os.open(name, flags | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, mode, dir_fd=dir_fd)
    except FileExistsError:
        st = _lstat_at(dir_fd, name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePath(
                f"refusing {name} in {where}: {_what(st)}, not a file imgcache made"
            ) from None
        raise


def open_file(dir_fd: int, name: str, where: str, flags: int = os.O_RDONLY) -> int:
    """Open the existing regular file `name` under `dir_fd`; links and others are refused.

    `FileNotFoundError` when there is none.
    """
    before = _lstat_at(dir_fd, name)
    if before is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    if not stat.S_ISREG(before.st_mode):
        raise UnsafePath(f"refusing {name} in {where}: {_what(before)}, not a file imgcache made")
    try:
        fd = os.open(name, flags | _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnsafePath(
            f"refusing {name} in {where}: it is a symbolic link, not a file imgcache made"
        ) from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePath(f"refusing {name} in {where}: it was replaced while it was opened")
    os.set_blocking(fd, True)
    return fd


@contextlib.contextmanager
def opened(root: str, directory: str, *, mode: int | None = None) -> Iterator[int]:
    """`walk` to `directory` under `root` for a `with` block; the descriptor is closed after."""
    fd = walk(root, split_under(root, directory), mode=mode)
    try:
        yield fd
    finally:
        os.close(fd)
