"""Undo a delete: find what the admin names in the trash, and put it back under its name.

`select` turns what the admin wrote into restore items: a batch name
(`20250101T120000Z-1a2b3c4d`), a batch directory, a file or folder inside a batch,
or the image's old path (`ROOT/ubuntu:22.04`: the newest batch holding it). `check`
says which of them cannot go back because their name is taken now; `restore`
puts the rest back.

Putting back is a `link` from the batch to the old name, then an `unlink` in the
batch: `link` never replaces, so a file someone published under that name since
is kept and the restore of that one file fails with one line. The file keeps its
inode, owner, mode and times. Every directory, in the trash and in the cache, is
opened from the root down with `O_NOFOLLOW` (`safety`); a link inside a batch is
never restored or followed. Missing directories on the way back are made with
`permissions.dir_mode`. A batch left with nothing in it (but its manifest) is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from typing import Any

from imgcache.backends.config import Settings
from imgcache.backends.inventory.caches import RESERVED_DIRS, TRASH_DIR
from imgcache.backends.maintenance import safety
from imgcache.backends.maintenance.batches import (
    Batch,
    batch_time,
    list_batches,
    open_trash,
    read_batch,
)
from imgcache.backends.maintenance.common import MaintenanceError, fsync_dir


@dataclass(frozen=True, slots=True)
class RestoreItem:
    """One file to put back: from `batch` in the cache at `root`, to `root/rel`."""

    root: str
    batch: str
    rel: str
    size: int

    @property
    def path(self) -> str:
        """Where the file goes back to."""
        return os.path.join(self.root, self.rel)

    @property
    def trashed_path(self) -> str:
        """Where the file lies now."""
        return os.path.join(self.root, TRASH_DIR, self.batch, self.rel)

    def as_dict(self) -> dict[str, Any]:
        """path, from (the trashed path), size."""
        return {"path": self.path, "from": self.trashed_path, "size": self.size}


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """The files put back, and those that could not be, with why."""

    restored: tuple[RestoreItem, ...]
    failed: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON (the shape of `imgcache trash --restore --json`)."""
        return {
            "restored": [item.as_dict() for item in self.restored],
            "failed": [{"path": path, "reason": why} for path, why in self.failed],
            "bytes": sum(item.size for item in self.restored),
        }


def items_of(batch: Batch, sub: str = "") -> list[RestoreItem]:
    """The regular files of `batch` at `sub` or under it (all of them for "")."""
    out = []
    for f in batch.files:
        if f.kind != "file":
            continue
        if not sub or f.rel == sub or f.rel.startswith(sub.rstrip("/") + "/"):
            out.append(RestoreItem(batch.root, batch.name, f.rel, f.size))
    return out


def select(settings: Settings, text: str) -> list[RestoreItem]:
    """The files `text` names in the trash of the configured caches; `MaintenanceError`
    (reason "usage") when it names none, or a batch name found in more than one cache."""
    roots = [spec.path for spec in settings.caches]
    if "/" not in text and batch_time(text) is not None and not os.path.lexists(text):
        found = [b for root in roots for b in list_batches(root)[0] if b.name == text]
        if len(found) > 1:
            where = ", ".join(b.path for b in found)
            raise MaintenanceError(f"batch {text} is in more than one cache ({where})", "usage")
        if not found:
            raise MaintenanceError(f"no cache's trash has a batch {text}", "usage")
        return _checked(text, items_of(found[0]))
    for root in roots:
        try:
            rel = safety.rel_in_root(root, text)
        except MaintenanceError:
            continue
        parts = rel.split("/")
        batches = list_batches(root)[0]
        if parts[0] == TRASH_DIR:
            if len(parts) < 2:
                raise MaintenanceError(
                    f"{text} is the whole trash; name a batch (imgcache trash lists them)",
                    "usage",
                )
            batch = next((b for b in batches if b.name == parts[1]), None)
            if batch is None:
                raise MaintenanceError(f"{text}: no such batch in the trash", "usage")
            return _checked(text, items_of(batch, "/".join(parts[2:])))
        # The image's old path: the newest batch that holds it.
        for batch in reversed(batches):
            items = items_of(batch, rel)
            if items:
                return items
        raise MaintenanceError(f"{text} is not in the trash of its cache", "usage")
    listed = ", ".join(roots) or "none"
    raise MaintenanceError(
        f"{text} is neither a trash batch nor a path in a configured cache ({listed})", "usage"
    )


def _checked(text: str, items: list[RestoreItem]) -> list[RestoreItem]:
    if not items:
        raise MaintenanceError(f"{text} holds no file that can be put back", "usage")
    return items


def _target_dir(root_fd: int, item: RestoreItem, dir_mode: int, create: bool) -> int | None:
    """The directory in the cache the item goes back into (made if `create`); None if
    it does not exist and `create` is false. Never through a link."""
    fd = os.dup(root_fd)
    shown = item.root.rstrip("/")
    try:
        for part in item.rel.split("/")[:-1]:
            shown = f"{shown}/{part}"
            try:
                child = safety.open_dir_at(fd, part, shown)
            except MaintenanceError as exc:
                if exc.reason != "missing":
                    raise
                if not create:
                    os.close(fd)
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
                child = safety.open_dir_at(fd, part, shown)
                with contextlib.suppress(OSError):
                    os.fchmod(child, dir_mode)  # exactly the configured mode, whatever the umask
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def taken(item: RestoreItem) -> bool:
    """Whether something (a file, a link, anything) is at the item's old name now."""
    root_fd = safety.open_root(item.root)
    try:
        fd = _target_dir(root_fd, item, 0, create=False)
    except MaintenanceError:
        return True  # a link or a file where a directory was: the name cannot be used
    finally:
        os.close(root_fd)
    if fd is None:
        return False
    try:
        os.stat(os.path.basename(item.rel), dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return True


def _check_name(item: RestoreItem) -> None:
    """Refuse a name inside imgcache's own directories (a batch anyone could have filled)."""
    safety.check_internal(item.rel, item.path)
    if item.rel.split("/")[0] in RESERVED_DIRS:
        raise MaintenanceError(f"{item.path} is inside imgcache's own directories", "internal")


def check(items: list[RestoreItem]) -> list[tuple[RestoreItem, str]]:
    """The items that cannot go back, with one line each: their name is taken now, or
    lies in imgcache's own directories."""
    refused = []
    for item in items:
        try:
            _check_name(item)
        except MaintenanceError as exc:
            refused.append((item, str(exc)))
            continue
        if taken(item):
            refused.append(
                (item, f"{item.path} is taken now; {item.trashed_path} stays in the trash")
            )
    return refused


def _put_back(item: RestoreItem, trash_fd: int, root_fd: int, dir_mode: int) -> None:
    batch_fd = safety.open_dir_at(trash_fd, item.batch, os.path.dirname(item.trashed_path))
    *parents, name = item.rel.split("/")
    try:
        src = safety.walk_dirs(batch_fd, os.path.join(item.root, TRASH_DIR, item.batch), parents)
    finally:
        os.close(batch_fd)
    try:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise MaintenanceError(f"{item.trashed_path} is not a regular file; left alone")
        dst = _target_dir(root_fd, item, dir_mode, create=True)
        assert dst is not None
        try:
            try:
                # link() never replaces: a file published under the name since stays.
                os.link(name, name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
            except FileExistsError:
                raise MaintenanceError(
                    f"{item.path} is taken now; {item.trashed_path} stays in the trash", "taken"
                ) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # No hard links here: check, then rename (a narrow race, on such filesystems only).
                with contextlib.suppress(FileNotFoundError):
                    os.stat(name, dir_fd=dst, follow_symlinks=False)
                    raise MaintenanceError(f"{item.path} is taken now", "taken") from None
                os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
            else:
                back = os.stat(name, dir_fd=dst, follow_symlinks=False)
                if (back.st_dev, back.st_ino) != (st.st_dev, st.st_ino):
                    raise MaintenanceError(f"{item.path} changed while it was put back", "taken")
                os.unlink(name, dir_fd=src)
            fsync_dir(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _tidy(trash_fd: int, root: str, name: str) -> None:
    """Remove a batch that holds nothing but its manifest and empty directories."""
    try:
        batch = read_batch(trash_fd, root, name)
    except MaintenanceError:
        return
    if not batch.files:
        with contextlib.suppress(OSError):
            shutil.rmtree(name, dir_fd=trash_fd)


def restore(settings: Settings, items: list[RestoreItem]) -> RestoreResult:
    """Put `items` back under their names; one that cannot go back is reported, the
    others go ahead. Run `check` first to refuse before touching anything."""
    restored: list[RestoreItem] = []
    failed: list[tuple[str, str]] = []
    by_root: dict[str, list[RestoreItem]] = {}
    for item in items:
        by_root.setdefault(item.root, []).append(item)
    for root, group in by_root.items():
        try:
            opened = open_trash(root)
        except MaintenanceError as exc:
            failed += [(item.path, str(exc)) for item in group]
            continue
        if opened is None:
            failed += [(item.path, f"{root} has no trash") for item in group]
            continue
        root_fd, trash_fd = opened
        try:
            for item in group:
                try:
                    _check_name(item)
                    _put_back(item, trash_fd, root_fd, settings.dir_mode)
                except MaintenanceError as exc:
                    failed.append((item.path, str(exc)))
                except OSError as exc:
                    failed.append((item.path, f"cannot put back {item.path}: {exc.strerror}"))
                else:
                    restored.append(item)
            for name in dict.fromkeys(item.batch for item in group):
                _tidy(trash_fd, root, name)
        finally:
            os.close(trash_fd)
            os.close(root_fd)
    return RestoreResult(tuple(restored), tuple(failed))
