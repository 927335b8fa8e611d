"""Where job logs live, what each one is called, and keeping their folder in order.

Every job writes a log file of its own (commands, tool output, result; never a
password) in `log_dir()`, `$XDG_STATE_HOME/imgcache/jobs` (default
`~/.local/state/imgcache/jobs`), kept after the job ends; the newest `KEEP_LOGS`
survive each start of a queue (`prune_logs`). The folder is opened through
`open_log_dir` (made 0700, never through a link: `imgcache.backends.jobs.safedirs`);
each job opens its own file with `open_job_log`, a `JobLog`: a full or
unwritable log directory (an over-quota home) never fails a job; the job runs
on and its log stops.

`LogFolder` is a queue's view of that folder: when it cannot be written (full,
over quota, read-only, a link in its place) jobs run without logs and
`LogFolder.problem` says why, once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time

from imgcache.backends.config import state_dir
from imgcache.backends.jobs import safedirs

__all__ = [
    "KEEP_LOGS",
    "JobLog",
    "LogFolder",
    "log_dir",
    "open_job_log",
    "open_log_dir",
    "prune_logs",
]

log = logging.getLogger("imgcache.jobs")

#: How many job logs are kept; older ones are removed when a queue starts.
KEEP_LOGS = 200


def log_dir() -> str:
    """Where job logs go: `$XDG_STATE_HOME/imgcache/jobs`, else `~/.local/state/...`."""
    return str(state_dir() / "jobs")


def prune_logs(directory: str, keep: int = KEEP_LOGS) -> None:
    """Remove all but the newest `keep` job logs (regular files named *.log, nothing else)."""
    with contextlib.suppress(OSError, safedirs.UnsafePath):
        fd = open_log_dir(directory)
        try:
            with os.scandir(fd) as scan:
                entries = [
                    (e.name, e.stat(follow_symlinks=False))
                    for e in scan
                    if e.name.endswith(".log") and e.is_file(follow_symlinks=False)
                ]
            entries.sort(key=lambda e: e[1].st_mtime, reverse=True)
            for name, _st in entries[keep:]:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)


class LogFolder:
    """The folder a queue's job logs go into, and why they could not be written there.

    Made (or checked) and pruned when created; a folder that cannot be written
    sets `problem` and is left alone.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or log_dir()
        self.problem = ""
        """Why job logs could not be (fully) written, or "": jobs run on without them."""
        self._lock = threading.Lock()
        try:
            os.close(open_log_dir(self.directory))
        except (OSError, safedirs.UnsafePath) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problem = f"cannot write job logs in {self.directory}: {why}"
        else:
            prune_logs(self.directory)

    def path_for(self, token: str, kind: str) -> str:
        """The log file of a job starting now, named by its time, token and kind."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return os.path.join(self.directory, f"{stamp}-{token}-{kind}.log")

    def note_problem(self, problem: str) -> None:
        """Record why a job's log was not (fully) written; only the first one is kept."""
        with self._lock:
            if not self.problem:
                self.problem = problem
                log.info("%s; jobs run on without logs", problem)


class JobLog(io.TextIOBase):
    """A job's log file that never fails its job.

    A write or flush that fails (a full or over-quota disk, a vanished
    directory) is noted in `problem` and the rest of the log is dropped: the
    job goes on. `JobLog(None)` writes nowhere.
    """

    def __init__(self, fd: int | None, problem: str = "", path: str = "") -> None:
        super().__init__()
        self._file = None if fd is None else open(fd, "a", encoding="utf-8")  # noqa: SIM115
        self.path = path
        self.problem = problem
        """Why (part of) the log was not written, or ""."""

    def _broke(self, exc: OSError) -> None:
        if not self.problem:
            self.problem = f"the job log {self.path} stops short: {exc.strerror or exc}"

    def writable(self) -> bool:
        """Always: what cannot be written is dropped."""
        return True

    def write(self, text: str) -> int:
        """Write `text`, unless an earlier write failed."""
        if self._file is not None and not self.problem:
            try:
                self._file.write(text)
            except OSError as exc:
                self._broke(exc)
        return len(text)

    def flush(self) -> None:
        """Flush to the file, unless an earlier write failed."""
        if self._file is not None and not self.problem:
            try:
                self._file.flush()
            except OSError as exc:
                self._broke(exc)

    def close(self) -> None:
        """Close the file; a failing last flush only sets `problem`."""
        if self._file is not None:
            self.flush()
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        super().close()


def open_log_dir(directory: str) -> int:
    """The job-log directory, made (0700) when missing; its last part never through a link.

    Raises OSError, or `safedirs.UnsafePath` for a link or non-directory in its place.
    """
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    parent_fd = safedirs.open_root(parent)
    try:
        return safedirs.open_dir(parent_fd, os.path.basename(directory), parent, mode=0o700)
    finally:
        os.close(parent_fd)


def open_job_log(path: str) -> JobLog:
    """A new log file at `path`, mode 0600, in its directory (`open_log_dir`).

    The file is created, never reused, and never through a link; when any of
    that fails the `JobLog` writes nowhere and its `problem` says why.
    """
    directory = os.path.dirname(path)
    try:
        dir_fd = open_log_dir(directory)
        try:
            fd = safedirs.create_file(
                dir_fd, os.path.basename(path), directory, os.O_WRONLY | os.O_APPEND
            )
        finally:
            os.close(dir_fd)
    except (OSError, safedirs.UnsafePath) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return JobLog(None, f"cannot write job logs in {directory}: {why}")
    return JobLog(fd, path=path)
