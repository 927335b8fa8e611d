"""Per-reference locks, so two admins do not pull the same image at the same time.

A lock is an fcntl byte-range lock on `<cache root>/.imgcache-locks/<name>.lock`:
POSIX locks work over NFSv4 and NLM where flock may not, and the kernel drops them
when the holder dies, even by SIGKILL. fcntl locks belong to a process, so jobs
of one process are kept apart by a lock of our own first.

The holder writes its pid, host and reference into the file so a waiter can say
who it waits for ("waiting for pid N on host H", in its progress and its log),
and unlinks the file on release; a waiter that gets a lock on a file that has
meanwhile been unlinked tries again on the new one.

Lock names are predictable, so the lock directory and files are reached only
through descriptors, never through a link (`imgcache.backends.jobs.safedirs`): a
link planted at a lock file's name or in place of the lock directory is refused
with one line, never followed.

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
from collections.abc import Callable

from imgcache.backends.jobs import safedirs
from imgcache.backends.jobs.publish import LOCK_DIR, host_name
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
        self.name = os.path.basename(self.path)
        self.what = what
        self.dir_mode = dir_mode
        self.held = False
        self.warning = ""
        """Why the job runs unlocked, when it does."""
        self._fd: int | None = None
        self._dir_fd: int | None = None
        self._local = False
        self._on_wait: Callable[[str], None] | None = None
        self._waiting_for = ""

    def acquire(
        self,
        timeout: float,
        cancel: CancelToken | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Take the lock, waiting up to `timeout` seconds; raise `LockBusy` after that.

        While it waits, `on_wait` hears whom it waits for ("waiting for pid N on
        host H"), once each time that changes. When locks are unavailable this
        returns unlocked with `warning` set; a link where the lock directory or
        file should be raises `safedirs.UnsafePath`.
        """
        if locks_disabled():
            self.warning = "locks are turned off (IMGCACHE_NO_LOCKS)"
            return
        self._on_wait = on_wait
        deadline = time.monotonic() + timeout
        while not self._try_local():
            self._wait(deadline, cancel, "another job of this imgcache", {})
        try:
            self._dir_fd = safedirs.walk(self.root, [LOCK_DIR], mode=self.dir_mode)
            while True:
                fd = self._open()
                if fd is None:
                    continue  # unlinked between looking and opening; look again
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
            self._drop()
            if exc.errno in _UNAVAILABLE or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                self.warning = f"no lock ({exc.strerror}); going ahead unlocked"
                return
            raise
        except BaseException:
            self._drop()
            raise

    def release(self) -> None:
        """Drop the lock and remove its file (while still holding it, so no one races)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if self._same_file(self._fd):
                    os.unlink(self.name, dir_fd=self._dir_fd)
            os.close(self._fd)
            self._fd = None
        self.held = False
        self._drop()

    def __enter__(self) -> RefLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- internals ---------------------------------------------------------------

    def _where(self) -> str:
        return os.path.join(self.root, LOCK_DIR)

    def _open(self) -> int | None:
        """The lock file, made if missing; None when it vanished while being opened."""
        assert self._dir_fd is not None
        try:
            return safedirs.create_file(self._dir_fd, self.name, self._where(), mode=0o666)
        except FileExistsError:
            pass
        try:
            return safedirs.open_file(self._dir_fd, self.name, self._where(), os.O_RDWR)
        except FileNotFoundError:
            return None

    def _try_local(self) -> bool:
        with _local_guard:
            if self.path in _local_held:
                return False
            _local_held.add(self.path)
            self._local = True
            return True

    def _drop(self) -> None:
        if self._dir_fd is not None and self._fd is None:
            os.close(self._dir_fd)
            self._dir_fd = None
        if self._local:
            with _local_guard:
                _local_held.discard(self.path)
            self._local = False

    def _wait(
        self, deadline: float, cancel: CancelToken | None, who: str, holder: dict[str, str]
    ) -> None:
        detail = ""
        waiting = f"waiting for {who}"
        if "pid" in holder and "host" in holder:
            detail = f" (pid {holder['pid']} on host {holder['host']})"
            waiting = f"waiting for pid {holder['pid']} on host {holder['host']}"
        if time.monotonic() >= deadline:
            raise LockBusy(f"{who} is pulling {self.what}{detail}; try again when it has finished")
        if waiting != self._waiting_for:
            self._waiting_for = waiting
            if self._on_wait is not None:
                self._on_wait(f"{waiting} (it is pulling {self.what})")
        if cancel is not None:
            if cancel.wait(_POLL):
                cancel.raise_if_cancelled()
        else:
            time.sleep(_POLL)

    def _same_file(self, fd: int) -> bool:
        try:
            st = os.stat(self.name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        own = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def _write_holder(self, fd: int) -> None:
        text = f"pid={os.getpid()} host={host_name()} ref={self.what} since={int(time.time())}\n"
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)

    def _holder(self) -> dict[str, str]:
        """What the holder wrote into the lock file: pid, host, ref, since."""
        assert self._dir_fd is not None
        try:
            fd = safedirs.open_file(self._dir_fd, self.name, self._where())
        except (OSError, safedirs.UnsafePath):
            return {}
        try:
            text = os.read(fd, 4096).decode("utf-8", "replace")
        except OSError:
            return {}
        finally:
            os.close(fd)
        fields = dict(p.split("=", 1) for p in text.split() if "=" in p)
        # What another process wrote is data: only digits and host-name characters pass.
        pid = fields.get("pid", "")
        host = re.sub(r"[^A-Za-z0-9.-]", "?", fields.get("host", ""))[:64]
        return {"pid": pid, "host": host} if pid.isdigit() and host else {}
