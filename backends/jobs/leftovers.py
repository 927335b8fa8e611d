"""What killed jobs leave behind, and who removes it: temps in a cache, scratch directories.

kill -9 cannot clean up: a job killed so leaves its hidden temp
(`.imgcache-<name>.<host>-<pid>-<seq>.tmp`) in the target directory and its
scratch directory (`imgcache-work-<host>-<pid>-<seq>.<random>`) under the work
base. Both names carry their owner, so whoever comes next can tell whether it
still runs: a temp of this host whose process is gone (or whose pid now belongs
to a process started after the file was last written) is removed at once; a
temp of another host only once untouched for `publish.FOREIGN_TEMP_AGE` seconds,
since that host's processes cannot be asked. Scratch directories of other hosts
are never removed: their jobs write deep inside them for hours without touching
the top.

Who comes next: every job that writes into a directory of a cache cleans that
directory first (`clean_directory`), whichever cache it is (`--to KIND:PATH`
included); compress cleans the image's directory (`clean_dir_fd`); gc and the
start of the app and of `imgcache pull`/`add` walk every configured cache
(`cleanup_stale`) and the scratch base (`cleanup_workdirs`). Everything goes
through directory descriptors and never follows a link.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import time

from imgcache.backends.inventory import caches
from imgcache.backends.jobs import safedirs
from imgcache.backends.jobs.publish import (
    FOREIGN_TEMP_AGE,
    WORKDIR_PREFIX,
    TempOwner,
    host_name,
    parse_temp,
)

_WORKDIR_RE = re.compile(
    r"^" + re.escape(WORKDIR_PREFIX) + r"(?P<host>[A-Za-z0-9-]+)-(?P<pid>[0-9]+)-(?P<seq>[0-9]+)"
    r"(?:\.[A-Za-z0-9_]+)?$"
)


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None when that cannot be read."""
    boot = _boot_time()
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if boot is None or len(fields) < 20:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def owner_alive(owner: TempOwner, mtime: float, host: str | None = None) -> bool:
    """Whether the process named in a temp of this host may still be writing it.

    A pid that is alive but started after the file was last written is another
    process that reused the number, not the owner.
    """
    if owner.host != (host or host_name()):
        raise ValueError("only processes of this host can be checked")
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = process_start(owner.pid)
    return started is None or started <= mtime + 2.0


def is_stale(owner: TempOwner, mtime: float, *, now: float, foreign_age: float) -> bool:
    """Whether a temp of `owner`, last written at `mtime`, is a dead job's leftover."""
    host = host_name()
    if owner.host == host:
        return not owner_alive(owner, mtime, host)
    return now - mtime > foreign_age


def clean_dir_fd(
    dir_fd: int,
    shown: str,
    names: list[str] | None = None,
    *,
    now: float | None = None,
    foreign_age: float = FOREIGN_TEMP_AGE,
) -> list[str]:
    """Remove the stale imgcache temps directly in the directory `dir_fd`; returns their paths.

    `shown` is the directory's path, for the list returned; `names` its entries
    when the caller has listed them already. Only regular files are removed.
    """
    now = time.time() if now is None else now
    if names is None:
        try:
            names = os.listdir(dir_fd)
        except OSError:
            return []
    removed = []
    for name in names:
        if not name.startswith(caches.TEMP_PREFIX):
            continue
        owner = parse_temp(name)
        if owner is None:
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if is_stale(owner, st.st_mtime, now=now, foreign_age=foreign_age):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
                removed.append(os.path.join(shown, name))
    return removed


def clean_directory(root: str, directory: str, **kwargs: float) -> list[str]:
    """`clean_dir_fd` on `directory` under `root`, reached without links; [] if it is not there.

    A link or other oddity on the way is left for the job's own checks to refuse.
    """
    try:
        with safedirs.opened(root, directory) as fd:
            return clean_dir_fd(fd, directory, **kwargs)  # type: ignore[arg-type]
    except (OSError, safedirs.UnsafePath):
        return []


def cleanup_stale(
    root: str, *, now: float | None = None, foreign_age: float = FOREIGN_TEMP_AGE
) -> list[str]:
    """Remove the stale imgcache temps anywhere under the cache `root`; returns them.

    imgcache's own directories (trash, locks) are not entered, nor any link.
    """
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        root_fd = safedirs.open_root(root)
    except OSError:
        return removed
    try:
        for rel, dirs, files, fd in os.fwalk(".", dir_fd=root_fd, follow_symlinks=False):
            if rel == ".":
                dirs[:] = [d for d in dirs if d not in caches.RESERVED_DIRS]
            shown = os.path.normpath(os.path.join(root, rel))
            removed += clean_dir_fd(fd, shown, files, now=now, foreign_age=foreign_age)
    finally:
        os.close(root_fd)
    return removed


def workdir_owner(name: str) -> TempOwner | None:
    """The owner recorded in a scratch directory's name, or None for any other name."""
    match = _WORKDIR_RE.match(name)
    if match is None:
        return None
    return TempOwner(match["host"], int(match["pid"]), int(match["seq"]))


def cleanup_workdirs(base: str) -> list[str]:
    """Remove scratch directories (`imgcache-work-...`) of this host's dead jobs; returns them."""
    host = host_name()
    removed: list[str] = []
    try:
        base_fd = safedirs.open_root(base)
    except OSError:
        return removed
    try:
        with os.scandir(base_fd) as entries:
            found = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
        for name, st in found:
            owner = workdir_owner(name)
            if owner is None or owner.host != host or not stat.S_ISDIR(st.st_mode):
                continue
            if not owner_alive(owner, st.st_mtime, host):
                shutil.rmtree(name, ignore_errors=True, dir_fd=base_fd)
                removed.append(os.path.join(base, name))
    except OSError:
        pass
    finally:
        os.close(base_fd)
    return removed
