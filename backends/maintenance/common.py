"""What every maintenance operation shares: the error, plan items, progress and temp names.

Progress follows the job convention: `on_progress(fraction, text)` with `fraction`
in 0..1, or None while the end cannot be estimated. Temporary files are named like
`imgcache.backends.jobs.publish` names its own (`.imgcache-<final name>.<host>-<pid>-<seq>.tmp`),
so the scanner shows them as `incomplete` and the publisher's `cleanup_stale`
removes the leftovers of a process that died.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

import humanize

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.model import FileStat

#: The progress callback of a job: (fraction done or None, what is happening).
ProgressFn = Callable[[float | None, str], None]


class MaintenanceError(RuntimeError):
    """A maintenance operation refused or failed; str() is one sentence for the user.

    `reason` is a short machine-readable word for callers that react differently
    (e.g. "signed", "changed", "owner", "outside", "symlink", "nothing-to-do").
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One file an operation will act on, as a plan shows it: path, size, reason.

    `expected` is what the scan saw of the file; applying the plan refuses the
    file if its (device, inode, size, mtime) are no longer those.
    """

    path: str
    size: int
    reason: str
    root: str
    """The cache root the file lies in."""
    expected: FileStat | None = None

    @property
    def rel(self) -> str:
        """The path relative to its cache root."""
        return os.path.relpath(self.path, self.root)

    def as_dict(self) -> dict[str, Any]:
        """path, size, reason: what a plan shows, as JSON."""
        return {"path": self.path, "size": self.size, "reason": self.reason}


def total_bytes(items: Iterable[PlanItem]) -> int:
    """The sum of the sizes of `items`."""
    return sum(item.size for item in items)


def human(size: int) -> str:
    """A byte count as people read it (binary units: 1.2 GiB)."""
    return humanize.naturalsize(size, binary=True, format="%.1f")


class Progress:
    """Maps the progress of one step into its share of the whole job."""

    def __init__(self, callback: ProgressFn | None) -> None:
        self._callback = callback
        self._start = 0.0
        self._span = 1.0

    def step(self, start: float, end: float) -> None:
        """The next reports cover `start`..`end` of the whole job."""
        self._start, self._span = start, end - start

    def __call__(self, fraction: float | None, text: str) -> None:
        """Report `fraction` (0..1) of the current step, or None when unknown."""
        if self._callback is None:
            return
        if fraction is None:
            self._callback(None, text)
        else:
            fraction = min(max(fraction, 0.0), 1.0)
            self._callback(self._start + self._span * fraction, text)


def log(logfile: IO[str] | None, text: str) -> None:
    """Write one line to the job's log, if it has one."""
    if logfile is not None:
        logfile.write(text.rstrip("\n") + "\n")
        logfile.flush()


def _host() -> str:
    # Same alphabet as imgcache.backends.jobs.publish.host_name, so its temp-name parser reads ours.
    name = socket.gethostname().split(".")[0] or "localhost"
    return re.sub(r"[^A-Za-z0-9-]", "-", name)[:32]


def new_token() -> str:
    """An owner token `<host>-<pid>-<seq>` for this operation's temporary files."""
    return f"{_host()}-{os.getpid()}-{secrets.randbelow(10**9)}"


def temp_name(final_name: str, token: str) -> str:
    """The hidden name a file is written under before it replaces `final_name`."""
    name = f"{caches.TEMP_PREFIX}{final_name}.{token}.tmp"
    if len(os.fsencode(name)) <= 255:
        return name
    # Long names: keep the start, which is what people recognise.
    room = 255 - len(os.fsencode(f"{caches.TEMP_PREFIX}~.{token}.tmp"))
    short = os.fsencode(final_name)[:room].decode("utf-8", "ignore")
    return f"{caches.TEMP_PREFIX}{short}~.{token}.tmp"


def fsync_dir(dir_fd: int) -> None:
    """Make a rename in the directory durable; filesystems that cannot are let be."""
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def owner_name(uid: int) -> str:
    """The user name of `uid`, or the number when the user is unknown."""
    from imgcache.backends.inventory.scan.filestat import user_name

    return user_name(uid)
