"""Put a finished image into a shared cache so that nobody ever sees half of it.

Every job writes `.imgcache-<final name>.<host>-<pid>-<seq>.tmp` in the target
directory (the scanner shows such names as `incomplete`), then `Publication.commit`
fsyncs it, sets the shared mode, and links or renames it into place and fsyncs the
directory. A link is used when an existing file must not be replaced: `link(2)`
fails instead of replacing, atomically, on NFS too, so a file another admin's
pull completed meanwhile is never overwritten unless that was asked for.

Every step goes through a descriptor of the target directory opened from the
cache root down without following links (`imgcache.backends.jobs.safedirs`).
Locks (`imgcache.backends.jobs.locks`) only keep two admins from doing the same work twice;
correctness never depends on them. The owner's host and pid in the temp
name let `imgcache.backends.jobs.leftovers` remove leftovers of processes that are gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
from dataclasses import dataclass

from imgcache.backends.inventory import caches
from imgcache.backends.jobs import safedirs

#: Directory in each cache root holding the per-reference lock files.
LOCK_DIR = caches.LOCK_DIR
#: Temp files of other hosts are removed only when untouched this long (seconds):
#: their processes cannot be asked whether they still run.
FOREIGN_TEMP_AGE = 6 * 3600.0
_TEMP_SUFFIX = ".tmp"
_NAME_MAX = 255
_TEMP_RE = re.compile(
    r"^" + re.escape(caches.TEMP_PREFIX) + r"(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)-"
    r"(?P<pid>[0-9]+)-(?P<seq>[0-9]+)" + re.escape(_TEMP_SUFFIX) + r"$"
)


def host_name() -> str:
    """This host's short name, reduced to the characters a temp name may hold."""
    name = socket.gethostname().split(".")[0] or "localhost"
    return re.sub(r"[^A-Za-z0-9-]", "-", name)[:32]


def make_token(seq: int, pid: int | None = None, host: str | None = None) -> str:
    """The owner token of one job: `<host>-<pid>-<seq>`, unique across a cluster."""
    return f"{host or host_name()}-{os.getpid() if pid is None else pid}-{seq}"


def temp_name(final_name: str, token: str) -> str:
    """The hidden temp name a job writes `final_name` under.

    Names longer than the filesystem allows are shortened, with a hash of the full
    name, so two long refs that share a prefix still get distinct temps.
    """
    name = f"{caches.TEMP_PREFIX}{final_name}.{token}{_TEMP_SUFFIX}"
    if len(os.fsencode(name)) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(os.fsencode(final_name)).hexdigest()[:12]
    room = _NAME_MAX - len(os.fsencode(f"{caches.TEMP_PREFIX}~{digest}.{token}{_TEMP_SUFFIX}"))
    short = os.fsencode(final_name)[:room].decode("utf-8", "ignore")
    return f"{caches.TEMP_PREFIX}{short}~{digest}.{token}{_TEMP_SUFFIX}"


@dataclass(frozen=True, slots=True)
class TempOwner:
    """Who wrote a temp file, read back from its name."""

    host: str
    pid: int
    seq: int


def parse_temp(name: str) -> TempOwner | None:
    """The owner recorded in an imgcache temp name, or None for any other name."""
    match = _TEMP_RE.match(name)
    if match is None:
        return None
    return TempOwner(match["host"], int(match["pid"]), int(match["seq"]))


class Publication:
    """One file on its way into a cache: a temp name now, the final name on commit.

    Every step acts through a descriptor of the target directory, opened from the
    cache root down without following links (`safedirs`), so neither a link
    planted at the temp's predictable name nor one in place of a directory on
    the way can redirect a write, a link or a rename.
    """

    def __init__(self, root: str, final: str, token: str, *, file_mode: int, dir_mode: int) -> None:
        self.root = os.path.abspath(root)
        self.final = final
        self.directory = os.path.dirname(final)
        self.final_name = os.path.basename(final)
        self.temp_name = temp_name(self.final_name, token)
        self.temp = os.path.join(self.directory, self.temp_name)
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.committed = False
        self._dir_fd: int | None = None
        self._owner: int | None = None

    def prepare(self, *, reserve: bool = True) -> None:
        """Open (making what is missing) the target directory and, with `reserve`, an empty temp.

        Reserving makes the job visible to the scanner (as `incomplete`) from its
        first second; tools that refuse an existing output file get `reserve=False`.
        """
        if self._dir_fd is None:
            self._dir_fd = safedirs.walk(
                self.root, safedirs.split_under(self.root, self.directory), mode=self.dir_mode
            )
        if reserve:
            fd = safedirs.create_file(self._dir_fd, self.temp_name, self.directory, os.O_WRONLY)
            self._owner = os.fstat(fd).st_uid
            os.close(fd)

    @property
    def dir_fd(self) -> int:
        """The descriptor of the target directory (after `prepare`)."""
        if self._dir_fd is None:
            raise RuntimeError("prepare() first")
        return self._dir_fd

    def commit(self, *, replace: bool = False) -> str:
        """Publish the temp file under the final name; returns what happened.

        "published" (new file), "replaced" (an older file was swapped atomically;
        readers that have it open keep the old one), or "exists" (another job
        published the same name first and `replace` is off; the temp is dropped).
        A temp that is a link, not a regular file, or owned by someone other than
        the owner of the file the job reserved is refused (`safedirs.UnsafePath`).
        """
        d = self.dir_fd
        fd = safedirs.open_file(d, self.temp_name, self.directory)
        try:
            owner = os.fstat(fd).st_uid
            if self._owner is not None and owner != self._owner:
                raise safedirs.UnsafePath(
                    f"refusing {self.temp_name} in {self.directory}: it belongs to uid {owner}, "
                    "not to this job; someone replaced the temp file"
                )
            os.fchmod(fd, self.file_mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        existed = _exists_at(d, self.final_name)
        if replace:
            os.rename(self.temp_name, self.final_name, src_dir_fd=d, dst_dir_fd=d)
            outcome = "replaced" if existed else "published"
        else:
            outcome = self._link_no_replace()
        with contextlib.suppress(OSError):
            os.fsync(d)
        self.committed = outcome != "exists"
        return outcome

    def _link_no_replace(self) -> str:
        d = self.dir_fd
        try:
            os.link(
                self.temp_name, self.final_name, src_dir_fd=d, dst_dir_fd=d, follow_symlinks=False
            )
        except FileExistsError:
            self.discard()
            return "exists"
        except OSError as exc:
            # Filesystems without hard links: a rename after a check is the best left;
            # the window is one syscall wide and only decides which complete file wins.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if _exists_at(d, self.final_name):
                self.discard()
                return "exists"
            os.rename(self.temp_name, self.final_name, src_dir_fd=d, dst_dir_fd=d)
            return "published"
        os.unlink(self.temp_name, dir_fd=d)
        return "published"

    def discard(self) -> None:
        """Remove the temp file, if it is still there."""
        if self._dir_fd is None:
            return  # never prepared: nothing was made
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_name, dir_fd=self._dir_fd)

    def close(self) -> None:
        """Let go of the target directory."""
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def _exists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


#: Name prefix of a job's private scratch directory under the work base:
#: `imgcache-work-<host>-<pid>-<seq>.<random>`.
WORKDIR_PREFIX = "imgcache-work-"


def work_base() -> str:
    """Where jobs unpack images: `$IMGCACHE_TMPDIR`, else the system temp directory."""
    return os.environ.get("IMGCACHE_TMPDIR") or os.environ.get("TMPDIR") or "/var/tmp"


def mount_point(path: str) -> str:
    """The mount point of the filesystem `path` (or its nearest existing parent) is on."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    dev = os.stat(path).st_dev
    while path != "/":
        parent = os.path.dirname(path)
        if os.stat(parent).st_dev != dev:
            break
        path = parent
    return path


def no_space_message(path: str, need: int | None) -> str:
    """ "no space left on <filesystem> ..." for a write under `path` that hit ENOSPC."""
    from humanize import naturalsize

    mount = mount_point(path)
    try:
        free = naturalsize(shutil.disk_usage(mount).free, binary=True)
    except OSError:
        free = "unknown"
    text = f"no space left on {mount} (the filesystem of {path}; {free} free"
    if need:
        text += f", need about {naturalsize(need, binary=True)}"
    return text + ")"
