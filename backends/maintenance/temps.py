"""Temporary files of one operation, in the image's own directory, removed on every exit.

Temps are created `O_EXCL` with mode 0600 next to the image (so the final rename is
atomic and needs no copy) under names the scanner shows as `incomplete` and
`imgcache.backends.jobs.publish.cleanup_stale` recognises. Programs are handed
`/proc/<pid>/fd/<n>` rather than the name, so they open exactly the file created
here, whatever happens to the directory's names meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import os

from imgcache.backends.maintenance.common import MaintenanceError, new_token, temp_name

_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@functools.cache
def _proc_fds_work() -> bool:
    return os.path.isdir(f"/proc/{os.getpid()}/fd")


def proc_path(fd: int, fallback: str) -> str:
    """A path a child process can open to reach our descriptor `fd` (`fallback` without /proc)."""
    return f"/proc/{os.getpid()}/fd/{fd}" if _proc_fds_work() else fallback


class TempFiles:
    """The temp files one operation writes into the directory `dir_fd`."""

    def __init__(self, dir_fd: int, dir_path: str) -> None:
        self.dir_fd = dir_fd
        self.dir_path = dir_path
        self.token = new_token()
        self._names: dict[int, str] = {}
        self._final: int | None = None

    def create(self, final_name: str, *, final: bool = False) -> int:
        """Create an empty temp for `final_name`; with `final`, the one `publish` renames."""
        name = temp_name(final_name, self.token)
        try:
            fd = os.open(name, _CREATE, 0o600, dir_fd=self.dir_fd)
        except OSError as exc:
            raise MaintenanceError(
                f"cannot write in {self.dir_path}: {exc.strerror}", "permission"
            ) from None
        self._names[fd] = name
        if final:
            self._final = fd
        return fd

    @property
    def final(self) -> int:
        """The descriptor of the final temp (the one `publish` renames)."""
        if self._final is None:
            raise RuntimeError("no final temp was created")
        return self._final

    def name(self, fd: int) -> str:
        """The temp's file name."""
        return self._names[fd]

    def proc(self, fd: int) -> str:
        """The path to hand a program for the temp `fd`."""
        return proc_path(fd, os.path.join(self.dir_path, self._names[fd]))

    def remove(self, fd: int) -> None:
        """Close and delete one temp now (to give its space back early)."""
        name = self._names.pop(fd)
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.dir_fd)

    def publish(self, final_name: str) -> None:
        """Rename the final temp over `final_name`, atomically."""
        fd = self.final
        os.rename(self._names[fd], final_name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        del self._names[fd]
        self._final = None
        os.close(fd)

    def __enter__(self) -> TempFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in list(self._names):
            with contextlib.suppress(OSError):
                self.remove(fd)
