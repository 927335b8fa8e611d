"""Per-reference locks, so two admins do not pull the same image at the same time.

A lock is an fcntl byte-range lock on `<cache root>/.imgcache-locks/<name>.lock`:
POSIX locks work over NFSv4 and NLM where flock may not, and the kernel drops them
when the holder dies, even by SIGKILL. fcntl locks belong to a process, so jobs
of one process are kept apart by a lock of our own first.

The holder writes its pid, host and reference into the file so a waiter can say
who it waits for, and unlinks the file on release; a waiter that gets a lock on a
file that has meanwhile been unlinked tries again on the new one.

Locks are an optimisation, never a guarantee: where they cannot be taken (lock
directory not writable, `ENOLCK` from an NFS server without lockd, or
`IMGCACHE_NO_LOCKS=1`) jobs go ahead unlocked, and `imgcache.backends.jobs.publish` still
leaves exactly one complete file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import threading
import time

from imgcache.backends.jobs.publish import LOCK_DIR, host_name, make_dirs
from imgcache.backends.tools.run import CancelToken

#: Seconds a job waits for another's lock before giving up (IMGCACHE_LOCK_TIMEOUT).
DEFAULT_TIMEOUT = 600.0
_POLL = 0.2
_UNAVAILABLE = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)

_local_guard = threading.Lock()
_local_held: set[str] = set()


class LockBusy(RuntimeError):
    """Another job holds the lock; the message says which, where it can tell."""


def locks_disabled() -> bool:
    """True when IMGCACHE_NO_LOCKS is set to a true value."""
    return os.environ.get("IMGCACHE_NO_LOCKS", "").lower() in ("1", "yes", "true", "on")


def lock_timeout() -> float:
    """How long to wait for a lock: IMGCACHE_LOCK_TIMEOUT seconds, else the default."""
    try:
        return float(os.environ["IMGCACHE_LOCK_TIMEOUT"])
    except (KeyError, ValueError):
        return DEFAULT_TIMEOUT


def lock_path(root: str, rel: str) -> str:
    """The lock file for the image at `rel` under `root`: readable prefix plus a hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", rel)[:80]
    digest = hashlib.sha256(rel.encode()).hexdigest()[:16]
    return os.path.join(root, LOCK_DIR, f"{readable}.{digest}.lock")


def held_here(path: str) -> bool:
    """Whether a job of this process holds the lock file at `path`."""
    with _local_guard:
        return path in _local_held


class RefLock:
    """The lock on one image path in one cache; use `acquire` and `release`."""

    def __init__(self, root: str, rel: str, *, what: str, dir_mode: int = 0o755) -> None:
        self.root = root
        self.path = lock_path(root, rel)
        self.what = what
        self.dir_mode = dir_mode
        self.held = False
        self.warning = ""
        """Why the job runs unlocked, when it does."""
        self._fd: int | None = None
        self._local = False

    def acquire(self, timeout: float, cancel: CancelToken | None = None) -> None:
        """Take the lock, waiting up to `timeout` seconds; raise `LockBusy` after that.

        When locks are unavailable this returns unlocked with `warning` set.
        """
        if locks_disabled():
            self.warning = "locks are turned off (IMGCACHE_NO_LOCKS)"
            return
        deadline = time.monotonic() + timeout
        while not self._try_local():
            self._wait(deadline, cancel, "another job of this imgcache", "")
        try:
            make_dirs(self.root, os.path.dirname(self.path), self.dir_mode)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno in (errno.EACCES, errno.EAGAIN):
                        self._wait(deadline, cancel, "another imgcache", self._holder())
                        continue
                    raise
                if self._same_file(fd):
                    break
                os.close(fd)  # the holder unlinked it on release; lock the new one
            self._fd = fd
            self._write_holder(fd)
            self.held = True
        except OSError as exc:
            self._drop_local()
            if exc.errno in _UNAVAILABLE or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                self.warning = f"no lock ({exc.strerror}); going ahead unlocked"
                return
            raise
        except BaseException:
            self._drop_local()
            raise

    def release(self) -> None:
        """Drop the lock and remove its file (while still holding it, so no one races)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if self._same_file(self._fd):
                    os.unlink(self.path)
            os.close(self._fd)
            self._fd = None
        self.held = False
        self._drop_local()

    def __enter__(self) -> RefLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- internals ---------------------------------------------------------------

    def _try_local(self) -> bool:
        with _local_guard:
            if self.path in _local_held:
                return False
            _local_held.add(self.path)
            self._local = True
            return True

    def _drop_local(self) -> None:
        if self._local:
            with _local_guard:
                _local_held.discard(self.path)
            self._local = False

    def _wait(self, deadline: float, cancel: CancelToken | None, who: str, detail: str) -> None:
        if time.monotonic() >= deadline:
            raise LockBusy(f"{who} is pulling {self.what}{detail}; try again when it has finished")
        if cancel is not None:
            if cancel.wait(_POLL):
                cancel.raise_if_cancelled()
        else:
            time.sleep(_POLL)

    def _same_file(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        own = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def _write_holder(self, fd: int) -> None:
        text = f"pid={os.getpid()} host={host_name()} ref={self.what} since={int(time.time())}\n"
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)

    def _holder(self) -> str:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                fields = dict(p.split("=", 1) for p in f.read().split() if "=" in p)
        except OSError:
            fields = {}
        if "pid" in fields and "host" in fields:
            return f" (pid {fields['pid']} on host {fields['host']})"
        return ""
