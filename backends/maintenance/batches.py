"""The trash's batches: their names, the manifest of who deleted what, and a safe listing.

A batch is `ROOT/.imgcache-trash/<UTC time>-<random>/<path relative to ROOT>`, one per
delete in one cache. Its age is read from its name, never from atime or mtime
(many shared filesystems keep no atime, and moving a file into the batch does not
change its mtime).

Each batch holds a small manifest, `.imgcache-batch.json`, written when the delete
is done: who deleted (user, uid, the `sudo` user behind root, host, pid, which
command) and each file's path and size. It is created with `O_CREAT | O_EXCL |
O_NOFOLLOW` relative to the batch directory's descriptor, so it never writes
through a planted link or over another file. The listing says "by whom" from it
even after the files' ownership changed; a batch without one (its delete was
killed) falls back to the batch directory's owner.

The listing walks from the cache root down with `O_NOFOLLOW` directory
descriptors (`safety.open_dir_at`): a symbolic link planted at `.imgcache-trash`,
at a batch, or inside one is reported, never followed. Everything read here is
data another admin may have written: callers escape it before it reaches a terminal.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import pwd
import secrets
import socket
import stat
import time
from dataclasses import dataclass
from typing import Any

from imgcache.backends.inventory.caches import TRASH_DIR
from imgcache.backends.maintenance import safety
from imgcache.backends.maintenance.common import MaintenanceError, owner_name
from imgcache.backends.version import version

#: strftime format of the time at the start of a batch name.
STAMP = "%Y%m%dT%H%M%SZ"
#: The manifest's name inside a batch; a file of this name is never moved into a batch.
MANIFEST = ".imgcache-batch.json"
#: A manifest larger than this is not read (it is data anyone who can write the root wrote).
MANIFEST_LIMIT = 1 << 20


def batch_name(now: float) -> str:
    """A new batch directory name: UTC time and a random part, e.g. 20250101T120000Z-1a2b3c4d."""
    return f"{time.strftime(STAMP, time.gmtime(now))}-{secrets.token_hex(4)}"


def batch_time(name: str) -> float | None:
    """The creation time written in a batch name, or None for any other name."""
    stamp, sep, rest = name.partition("-")
    if not sep or not rest:
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, STAMP)))
    except ValueError:
        return None


def iso(when: float) -> str:
    """A time as ISO 8601 UTC, the way the JSON output writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))


@dataclass(frozen=True, slots=True)
class Deleter:
    """Who made a batch, as its manifest records it."""

    user: str
    uid: int
    sudo_user: str | None
    """The user behind `sudo` (SUDO_USER), when root deleted through sudo."""
    host: str
    pid: int
    via: str
    """What deleted: "rm", "gc", "delete" (the app), ..."""
    version: str | None = None
    """The version of the imgcache that deleted; None in manifests written before it."""

    @property
    def label(self) -> str:
        """`alice`, or `root (sudo alice)`."""
        if self.sudo_user and self.sudo_user != self.user:
            return f"{self.user} (sudo {self.sudo_user})"
        return self.user

    def as_dict(self) -> dict[str, Any]:
        """The deleter as JSON."""
        return {
            "user": self.user,
            "uid": self.uid,
            "sudo_user": self.sudo_user,
            "host": self.host,
            "pid": self.pid,
            "via": self.via,
            "imgcache": {"version": self.version} if self.version else None,
        }


def current_deleter(via: str) -> Deleter:
    """This process as a deleter (the real user, not the effective one)."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    sudo_user = os.environ.get("SUDO_USER") or None
    return Deleter(user, uid, sudo_user, socket.gethostname(), os.getpid(), via, version())


def write_manifest(
    batch_fd: int, deleter: Deleter, created: float, files: list[tuple[str, int]], mode: int
) -> None:
    """Write the batch's manifest beside its files: never through a link, never over a file.

    Raises OSError; the caller decides whether a batch without a manifest is worth
    more than a failed delete (it is not: the files are in the trash either way).
    """
    doc = {
        "version": 1,
        "created": iso(created),
        "by": deleter.as_dict(),
        "files": [{"path": rel, "size": size} for rel, size in files],
    }
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(MANIFEST, flags, 0o600, dir_fd=batch_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, mode)  # the umask narrowed the mode; the trash's admins read it
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(fd)


def _written_by(stamp: Any) -> str | None:
    """The imgcache version a manifest's `by.imgcache` names, if it names one."""
    if isinstance(stamp, dict) and isinstance(stamp.get("version"), str):
        return stamp["version"]
    return None


def _read_manifest(batch_fd: int) -> Deleter | None:
    """The deleter a batch's manifest names; None when it is missing, odd or unreadable."""
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=batch_fd)  # fmt: skip
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_LIMIT:
            return None
        try:
            doc = json.loads(f.read(MANIFEST_LIMIT))
            by = doc["by"]
            return Deleter(
                str(by["user"]),
                int(by["uid"]),
                str(by["sudo_user"]) if by.get("sudo_user") else None,
                str(by.get("host", "")),
                int(by.get("pid", 0)),
                str(by.get("via", "")),
                _written_by(by.get("imgcache")),
            )
        except (ValueError, KeyError, TypeError, OSError):
            return None


@dataclass(frozen=True, slots=True)
class TrashedFile:
    """One entry in a batch: its path relative to the cache root (= where it came from)."""

    rel: str
    size: int
    kind: str = "file"
    """"file" (a regular file, restorable), "link" or "other" (never followed or restored)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a cache's trash, as listed."""

    root: str
    name: str
    created: float
    files: tuple[TrashedFile, ...]
    by: Deleter | None
    """From the manifest; None when the batch has none."""
    dir_owner: str
    """The batch directory's owner: who made it, when there is no manifest."""

    @property
    def path(self) -> str:
        """The batch directory's absolute path."""
        return os.path.join(self.root, TRASH_DIR, self.name)

    @property
    def size(self) -> int:
        """Bytes of the regular files in the batch."""
        return sum(f.size for f in self.files if f.kind == "file")

    @property
    def by_label(self) -> str:
        """Who deleted, for people: from the manifest, else the directory's owner."""
        return self.by.label if self.by is not None else f"{self.dir_owner} (no manifest)"

    def expires(self, grace_days: float) -> float:
        """When the batch is past its grace period (and the next delete or gc purges it)."""
        return self.created + grace_days * 86400

    def as_dict(self, grace_days: float) -> dict[str, Any]:
        """The batch as JSON (the shape of `imgcache trash --json`)."""
        return {
            "root": self.root,
            "batch": self.name,
            "path": self.path,
            "created": iso(self.created),
            "expires": iso(self.expires(grace_days)),
            "by": self.by.as_dict() if self.by is not None else None,
            "dir_owner": self.dir_owner,
            "size": self.size,
            "files": [
                {
                    "path": os.path.join(self.root, f.rel),
                    "trashed_path": os.path.join(self.path, f.rel),
                    "size": f.size,
                    "kind": f.kind,
                }
                for f in self.files
            ],
        }


def _walk(dir_fd: int, prefix: str, shown: str, out: list[TrashedFile], top: bool) -> None:
    """Collect the entries under `dir_fd`, opening subdirectories without following links."""
    with os.scandir(dir_fd) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        if top and name == MANIFEST:
            continue
        rel = f"{prefix}{name}"
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue  # purged or restored meanwhile
        if stat.S_ISDIR(st.st_mode):
            try:
                child = safety.open_dir_at(dir_fd, name, f"{shown}/{name}")
            except MaintenanceError:
                continue
            try:
                _walk(child, f"{rel}/", f"{shown}/{name}", out, False)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode):
            out.append(TrashedFile(rel, st.st_size))
        else:
            out.append(TrashedFile(rel, 0, "link" if stat.S_ISLNK(st.st_mode) else "other"))


def open_trash(root: str) -> tuple[int, int] | None:
    """(root fd, trash fd) of a cache, the trash opened without following a link.

    None when the cache has no trash; `MaintenanceError` when the trash is a link
    or the root cannot be opened. The caller closes both descriptors.
    """
    root_fd = safety.open_root(root)
    try:
        trash_fd = safety.open_dir_at(root_fd, TRASH_DIR, os.path.join(root, TRASH_DIR))
    except MaintenanceError as exc:
        os.close(root_fd)
        if exc.reason == "missing":
            return None
        raise
    return root_fd, trash_fd


def read_batch(trash_fd: int, root: str, name: str) -> Batch:
    """List one batch (by its name) of the trash open at `trash_fd`; `MaintenanceError` if
    it is not a batch directory (a link, a file, gone)."""
    made = batch_time(name)
    shown = os.path.join(root, TRASH_DIR, name)
    if made is None:
        raise MaintenanceError(f"{name} is not a trash batch (those are named TIME-ID)", "usage")
    fd = safety.open_dir_at(trash_fd, name, shown)
    try:
        files: list[TrashedFile] = []
        _walk(fd, "", shown, files, True)
        return Batch(root, name, made, tuple(files), _read_manifest(fd),
                     owner_name(os.fstat(fd).st_uid))  # fmt: skip
    finally:
        os.close(fd)


def list_batches(root: str) -> tuple[list[Batch], list[str]]:
    """The batches of the cache at `root`, oldest first, and one line per problem found
    (a link where the trash or a batch should be: reported, never followed)."""
    try:
        opened = open_trash(root)
    except MaintenanceError as exc:
        return [], [str(exc)]
    if opened is None:
        return [], []
    root_fd, trash_fd = opened
    batches: list[Batch] = []
    problems: list[str] = []
    try:
        with os.scandir(trash_fd) as entries:
            names = sorted(e.name for e in entries if batch_time(e.name) is not None)
        for name in names:
            try:
                batches.append(read_batch(trash_fd, root, name))
            except MaintenanceError as exc:
                if exc.reason != "missing":
                    problems.append(str(exc))
    finally:
        with contextlib.suppress(OSError):
            os.close(trash_fd)
        os.close(root_fd)
    return batches, problems
