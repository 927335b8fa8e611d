"""Put a finished image into a shared cache so that nobody ever sees half of it.

Every job writes `.imgcache-<final name>.<host>-<pid>-<seq>.tmp` in the target
directory (the scanner shows such names as `incomplete`), then `Publication.commit`
fsyncs it, sets the shared mode, and links or renames it into place and fsyncs the
directory. A link is used when an existing file must not be replaced: `link(2)`
fails instead of replacing, atomically, on NFS too, so a file another admin's
pull completed meanwhile is never overwritten unless that was asked for.

Locks (`imgcache.backends.jobs.locks`) only keep two admins from doing the same work twice;
correctness never depends on them. The owner's host and pid in the temp
name let `cleanup_stale` remove leftovers of processes that are gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass

from imgcache.backends.inventory import caches

#: Directory in each cache root holding the per-reference lock files.
LOCK_DIR = caches.LOCK_DIR
#: Temp files of other hosts are removed only when untouched this long (seconds).
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


def make_dirs(root: str, directory: str, dir_mode: int) -> None:
    """Create `directory` and the missing ones between it and `root`, each with `dir_mode`.

    The mode is set with chmod, so the umask of whoever runs imgcache does not
    decide whether other admins can write there.
    """
    root = os.path.abspath(root)
    directory = os.path.abspath(directory)
    missing = []
    current = directory
    while current != root and not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for path in reversed(missing):
        try:
            os.mkdir(path, dir_mode)
        except FileExistsError:
            continue  # another job made it first; its mode is its business
        os.chmod(path, dir_mode)


def fsync_dir(directory: str) -> None:
    """Make a rename or link in `directory` durable (no-op where dirs cannot be fsynced)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class Publication:
    """One file on its way into a cache: a temp name now, the final name on commit."""

    def __init__(self, root: str, final: str, token: str, *, file_mode: int, dir_mode: int) -> None:
        self.root = os.path.abspath(root)
        self.final = final
        self.directory = os.path.dirname(final)
        self.temp = os.path.join(self.directory, temp_name(os.path.basename(final), token))
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.committed = False

    def prepare(self, *, reserve: bool = True) -> None:
        """Create the directories and, with `reserve`, an empty temp file.

        Reserving makes the job visible to the scanner (as `incomplete`) from its
        first second; tools that refuse an existing output file get `reserve=False`.
        """
        make_dirs(self.root, self.directory, self.dir_mode)
        if reserve:
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.close(fd)

    def commit(self, *, replace: bool = False) -> str:
        """Publish the temp file under the final name; returns what happened.

        "published" (new file), "replaced" (an older file was swapped atomically;
        readers that have it open keep the old one), or "exists" (another job
        published the same name first and `replace` is off; the temp is dropped).
        """
        fd = os.open(self.temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, self.file_mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        existed = os.path.lexists(self.final)
        if replace:
            os.rename(self.temp, self.final)
            outcome = "replaced" if existed else "published"
        else:
            outcome = self._link_no_replace()
        fsync_dir(self.directory)
        self.committed = outcome != "exists"
        return outcome

    def _link_no_replace(self) -> str:
        try:
            os.link(self.temp, self.final)
        except FileExistsError:
            self.discard()
            return "exists"
        except OSError as exc:
            # Filesystems without hard links: a rename after a check is the best left;
            # the window is one syscall wide and only decides which complete file wins.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(self.final):
                self.discard()
                return "exists"
            os.rename(self.temp, self.final)
            return "published"
        os.unlink(self.temp)
        return "published"

    def discard(self) -> None:
        """Remove the temp file, if it is still there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


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


def _stale(path: str, name: str, now: float, foreign_age: float, host: str) -> bool:
    owner = parse_temp(name)
    if owner is None:
        return False
    try:
        mtime = os.lstat(path).st_mtime
    except FileNotFoundError:
        return False
    if owner.host == host:
        return not owner_alive(owner, mtime, host)
    return now - mtime > foreign_age


def cleanup_stale(
    root: str, *, now: float | None = None, foreign_age: float = FOREIGN_TEMP_AGE
) -> list[str]:
    """Remove imgcache temp files under `root` that no running job owns; returns them.

    Temps of this host go as soon as their process is gone; other hosts' only once
    untouched for `foreign_age` seconds, since their processes cannot be asked.
    """
    now = time.time() if now is None else now
    host = host_name()
    removed = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in caches.RESERVED_DIRS]
        for name in files:
            if not name.startswith(caches.TEMP_PREFIX):
                continue
            path = os.path.join(directory, name)
            if _stale(path, name, now, foreign_age, host):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(path)
    return removed


def cleanup_workdirs(base: str, *, now: float | None = None) -> list[str]:
    """Remove scratch directories (`imgcache-work-<token>`) of this host's dead jobs."""
    host = host_name()
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(WORKDIR_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        owner = parse_temp(f"{caches.TEMP_PREFIX}x.{entry.name[len(WORKDIR_PREFIX) :]}.tmp")
        if owner is None or owner.host != host:
            continue
        if not owner_alive(owner, entry.stat(follow_symlinks=False).st_mtime, host):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


#: Name prefix of a job's private scratch directory under the work base.
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
