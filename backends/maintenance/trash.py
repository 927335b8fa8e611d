"""Delete images: move them into the cache's trash, purge it later, or purge at once.

The trash of a cache is `ROOT/.imgcache-trash/<UTC time>-<random>/<path relative to
ROOT>`: one batch directory per delete, keeping each file's relative path so it can
be put back by hand. Moving is a `renameat` inside one filesystem, so a job that has
the image open keeps reading the same inode to the end, and the space is given back
when the batch is purged, `trash_grace_days` after it was made (judged by the time
in its name, not by atime, which many shared filesystems do not keep).

Each file is resolved from the root down without following links (`safety`),
compared with what the scan saw, checked against `delete.allowed_owners`, moved,
and compared again in its new place; a file that turns out to be another one is
put back (`link` never replaces anything) and reported. `purge=True` unlinks the
file right after that check; a reader that has it open still reads to the end.

Trash directories get the owner permissions plus the cache root's group bits (and
its setgid bit): whoever may write the root - the admins of the cache, directly or
through its group - may purge any admin's batches, and other users cannot list
what was deleted. Each batch gets a manifest of who deleted what (`batches`),
written when the delete is done; `restore` puts files back from it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from imgcache.backends.config import Settings
from imgcache.backends.inventory.caches import TRASH_DIR
from imgcache.backends.inventory.scan import file_stat
from imgcache.backends.maintenance import batches, safety
from imgcache.backends.maintenance.common import (
    MaintenanceError,
    PlanItem,
    Progress,
    ProgressFn,
    fsync_dir,
    log,
)
from imgcache.backends.maintenance.purge import purge_trash
from imgcache.backends.tools.run import CancelToken


@dataclass(frozen=True, slots=True)
class Removed:
    """One file that a delete took away."""

    path: str
    size: int
    trashed_to: str | None
    """Where it now lies in the trash; None when it was purged."""


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a delete did: files removed, files refused or failed, old batches purged."""

    removed: tuple[Removed, ...]
    failed: tuple[tuple[str, str], ...]
    """(path, why) for each file left in place."""
    purged_batches: tuple[str, ...] = ()
    """Trash batches older than the grace period that were purged on the way."""
    purge: bool = False

    @property
    def bytes(self) -> int:
        """Bytes of the files removed (given back now with purge, else at purge time)."""
        return sum(r.size for r in self.removed)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON: removed (path, size, trashed_to), failed, bytes."""
        return {
            "removed": [
                {"path": r.path, "size": r.size, "trashed_to": r.trashed_to} for r in self.removed
            ],
            "failed": [{"path": p, "reason": why} for p, why in self.failed],
            "purged_batches": list(self.purged_batches),
            "bytes": self.bytes,
        }


def trash_mode(root_mode: int) -> int:
    """Mode for trash directories: owner rwx, the root's group bits and setgid."""
    return 0o700 | (root_mode & 0o070) | (root_mode & stat.S_ISGID)


def _mkdir_at(parent_fd: int, name: str, mode: int, shown: str) -> tuple[int, bool]:
    """Open (creating if needed) the directory `name`; returns (fd, created)."""
    created = False
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        pass
    except OSError as exc:
        raise MaintenanceError(f"cannot create {shown}: {exc.strerror}", "trash") from None
    fd = safety.open_dir_at(parent_fd, name, shown)
    if created:
        # mkdir's mode went through the umask; set exactly what other admins need.
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
    return fd, created


class _Batch:
    """The trash batch of one delete in one cache, created when first needed."""

    def __init__(self, root: str, root_fd: int, now: float, via: str) -> None:
        self.root = root
        self.root_fd = root_fd
        self.now = now
        self.via = via
        self.name = batches.batch_name(now)
        self.moved: list[tuple[str, int]] = []
        """(path relative to the root, size) of each file moved in, for the manifest."""
        self.mode = trash_mode(os.fstat(root_fd).st_mode)
        self.fd = -1
        self.trash_fd = -1
        self.dirs: dict[str, int] = {}
        self.created: list[str] = []

    def dir_for(self, parents: list[str]) -> int:
        """The directory in the batch where a file with these parent dirs goes."""
        if self.fd < 0:
            trash = f"{self.root.rstrip('/')}/{TRASH_DIR}"
            self.trash_fd, _ = _mkdir_at(self.root_fd, TRASH_DIR, self.mode, trash)
            self.fd, _ = _mkdir_at(self.trash_fd, self.name, self.mode, f"{trash}/{self.name}")
            self.dirs[""] = self.fd
        key = ""
        for part in parents:
            child = f"{key}/{part}" if key else part
            if child not in self.dirs:
                fd, created = _mkdir_at(self.dirs[key], part, self.mode, self.shown(child))
                self.dirs[child] = fd
                if created:
                    self.created.append(child)
            key = child
        return self.dirs[key]

    def shown(self, rel: str) -> str:
        """The absolute path of `rel` inside this batch."""
        return os.path.join(self.root, TRASH_DIR, self.name, rel)

    def write_manifest(self, logfile: IO[str] | None) -> None:
        """Record who deleted what beside the files (a batch that got none needs none)."""
        if self.fd < 0 or not self.moved:
            return
        mode = 0o600 | (self.mode & 0o060 & ~0o020)
        try:
            batches.write_manifest(
                self.fd, batches.current_deleter(self.via), self.now, self.moved, mode
            )
        except OSError as exc:
            # The files are in the trash and can be put back; only "by whom" is lost.
            log(logfile, f"warning: no manifest in {self.shown('')}: {exc.strerror}")

    def close(self, remove_empty: bool) -> None:
        """Close descriptors; with `remove_empty`, drop the directories left empty."""
        if remove_empty and self.fd >= 0:
            for rel in reversed(self.created):
                parent, _, name = rel.rpartition("/")
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=self.dirs[parent])
            with contextlib.suppress(OSError):
                os.rmdir(self.name, dir_fd=self.trash_fd)
        for fd in {*self.dirs.values(), self.trash_fd}:
            if fd >= 0:
                os.close(fd)
        self.dirs.clear()
        self.fd = self.trash_fd = -1


def preflight(
    settings: Settings, items: Sequence[PlanItem]
) -> list[tuple[PlanItem, MaintenanceError]]:
    """Every item `delete` would refuse, with why, without touching anything."""
    refused = []
    for item in items:
        try:
            with safety.locate(item.root, item.path, expected=item.expected) as found:
                safety.check_owner(found.stat, settings.allowed_owners, item.path)
        except MaintenanceError as exc:
            refused.append((item, exc))
    return refused


def _put_back(batch_dir: int, loc: safety.Located) -> str:
    try:
        # link() never replaces: a file someone put at the old name meanwhile stays.
        os.link(
            loc.name, loc.name, src_dir_fd=batch_dir, dst_dir_fd=loc.dir_fd, follow_symlinks=False
        )
    except OSError as exc:
        return f"; it was left in the trash ({exc.strerror})"
    os.unlink(loc.name, dir_fd=batch_dir)
    return "; it was put back"


def _remove_one(
    item: PlanItem, settings: Settings, root_fd: int, batch: _Batch, purge: bool
) -> Removed:
    with safety.locate(item.root, item.path, expected=item.expected, root_fd=root_fd) as loc:
        safety.check_owner(loc.stat, settings.allowed_owners, item.path)
        seen = file_stat(loc.stat)
        if loc.rel == batches.MANIFEST and not purge:
            # Moved into the batch it would take the manifest's place.
            raise MaintenanceError(
                f"{item.path} has the name of imgcache's trash manifest; delete it with --purge",
                "internal",
            )
        try:
            target = batch.dir_for(loc.rel.split("/")[:-1])
        except MaintenanceError as exc:
            if not purge:
                raise MaintenanceError(f"{exc}; pass --purge to delete at once", "trash") from None
            # No trash here (root not writable, say): unlink what we just checked.
            os.unlink(loc.name, dir_fd=loc.dir_fd)
            fsync_dir(loc.dir_fd)
            return Removed(item.path, loc.stat.st_size, None)
        try:
            os.rename(loc.name, loc.name, src_dir_fd=loc.dir_fd, dst_dir_fd=target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise MaintenanceError(
                    f"{item.path} is on another filesystem than the cache root's trash; "
                    "delete it with --purge",
                    "xdev",
                ) from None
            raise MaintenanceError(f"cannot move {item.path}: {exc.strerror}") from None
        moved = os.stat(loc.name, dir_fd=target, follow_symlinks=False)
        if not safety.same_file(moved, seen):
            # Swapped between the check and the rename: this is not what was asked for.
            raise MaintenanceError(
                f"{item.path} changed while it was being deleted{_put_back(target, loc)}",
                "changed",
            )
        fsync_dir(loc.dir_fd)
        if purge:
            os.unlink(loc.name, dir_fd=target)
            return Removed(item.path, loc.stat.st_size, None)
        batch.moved.append((loc.rel, loc.stat.st_size))
        return Removed(item.path, loc.stat.st_size, batch.shown(loc.rel))


def delete(
    settings: Settings,
    items: Sequence[PlanItem],
    *,
    purge: bool = False,
    skip_refused: bool = False,
    purge_old: bool = True,
    via: str = "delete",
    now: float | None = None,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
) -> DeleteResult:
    """Move `items` to their caches' trash (or with `purge` unlink them), then purge old batches.

    All items are checked first; if any is refused, nothing is touched and
    `MaintenanceError` lists every refusal - unless `skip_refused`, which leaves the
    refused ones out (gc uses it: a file another admin removed is no reason to
    stop). A file that changes between that check and its move is reported in
    `failed`, not raised. With `purge_old`, trash batches past `trash_grace_days`
    are purged afterwards in each cache touched. `via` names the command in the
    batch's manifest ("rm", "gc"; the app's delete job leaves "delete").
    """
    now = time.time() if now is None else now
    progress = Progress(on_progress)
    unique = list({item.path: item for item in items}.values())
    failed: list[tuple[str, str]] = []
    refused = preflight(settings, unique)
    if refused and not skip_refused:
        lines = "; ".join(str(exc) for _, exc in refused)
        raise MaintenanceError(f"nothing was deleted: {lines}", refused[0][1].reason)
    skip = {item.path for item, _ in refused}
    failed.extend((item.path, str(exc)) for item, exc in refused)
    todo = [item for item in unique if item.path not in skip]
    removed: list[Removed] = []
    purged: list[str] = []
    by_root: dict[str, list[PlanItem]] = {}
    for item in todo:
        by_root.setdefault(item.root, []).append(item)
    done = 0
    for root, group in by_root.items():
        root_fd = safety.open_root(root)
        batch = _Batch(root, root_fd, now, via)
        try:
            for item in group:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                progress(done / max(len(todo), 1), f"deleting {item.path}")
                try:
                    result = _remove_one(item, settings, root_fd, batch, purge)
                except MaintenanceError as exc:
                    failed.append((item.path, str(exc)))
                    log(logfile, f"refused: {exc}")
                except OSError as exc:
                    failed.append((item.path, f"cannot delete {item.path}: {exc.strerror}"))
                    log(logfile, f"failed: {item.path}: {exc.strerror}")
                else:
                    removed.append(result)
                    where = "purged" if result.trashed_to is None else f"-> {result.trashed_to}"
                    log(logfile, f"deleted {item.path} {where}")
                done += 1
        finally:
            batch.write_manifest(logfile)
            # rmdir leaves directories that hold trashed files; only empty ones go.
            batch.close(remove_empty=True)
            os.close(root_fd)
        if purge_old:
            old = purge_trash(root, settings.trash_grace_days, now=now, logfile=logfile)
            purged += old.purged
    progress(1.0, "done")
    return DeleteResult(tuple(removed), tuple(failed), tuple(purged), purge)
