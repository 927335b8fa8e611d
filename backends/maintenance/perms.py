"""fix-permissions: make shared images readable, and their directories enterable, as configured.

The plan lists each image missing a read bit of `permissions.file_mode` and each
directory from the cache root down to an image missing an r-x bit of
`permissions.dir_mode`. Bits are only ever added: a mode is never narrowed, and no
write or setuid bit is ever set. Applying resolves every path from the root without
following links, checks it is still the inode the plan saw, and changes the mode
through a descriptor (`fchmod`), so nothing outside the root and nothing behind a
symbolic link is ever changed. Each change is reported as `0600 -> 0644 path`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from typing import IO, Any

from imgcache.backends.inventory.caches import looks_incomplete
from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.model import Format, Image
from imgcache.backends.inventory.scan import file_stat
from imgcache.backends.maintenance import safety
from imgcache.backends.maintenance.common import MaintenanceError, Progress, ProgressFn, log
from imgcache.backends.tools.run import CancelToken

_FILE_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class PermChange:
    """One mode change: a file or directory, its mode before and after."""

    path: str
    root: str
    is_dir: bool
    old_mode: int
    new_mode: int
    key: tuple[int, ...]
    """Identity checked before the change: (dev, ino) of a directory (whose mtime moves
    with every new entry), `FileStat.key` of a file."""

    @property
    def line(self) -> str:
        """The change as the report prints it: `0600 -> 0644 path`."""
        slash = "/" if self.is_dir else ""
        return f"{self.old_mode:04o} -> {self.new_mode:04o} {self.path}{slash}"

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON, modes in octal text."""
        return {
            "path": self.path,
            "directory": self.is_dir,
            "old_mode": f"{self.old_mode:04o}",
            "new_mode": f"{self.new_mode:04o}",
        }


@dataclass(frozen=True, slots=True)
class PermPlan:
    """The changes fix-permissions would make, and the images it leaves alone."""

    changes: tuple[PermChange, ...]
    skipped: tuple[tuple[str, str], ...]
    """(path, why) for images it will not touch."""
    file_bits: int
    dir_bits: int

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON: changes and skipped."""
        return {
            "changes": [c.as_dict() for c in self.changes],
            "skipped": [{"path": p, "reason": why} for p, why in self.skipped],
        }


@dataclass(frozen=True, slots=True)
class PermResult:
    """The changes made (with the modes found when applying) and the failures."""

    changed: tuple[PermChange, ...]
    failed: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON: changed and failed."""
        return {
            "changed": [c.as_dict() for c in self.changed],
            "failed": [{"path": p, "reason": why} for p, why in self.failed],
        }


def _eligible(image: Image) -> str | None:
    """Why an image is left alone, or None when its permissions are ours to fix."""
    if stat.S_ISLNK(image.stat.mode):
        return "a symbolic link; imgcache never follows links"
    if looks_incomplete(os.path.basename(image.path)):
        return "an unfinished write; its writer sets the mode when it publishes"
    if image.probe.format is Format.UNKNOWN and image.ref is None:
        return "not an image"
    return None


def plan_permissions(
    inventory: Inventory, *, file_mode: int | None = None, dir_mode: int | None = None
) -> PermPlan:
    """What to change so every image of `inventory` is shared as the settings say."""
    settings = inventory.settings
    file_bits = (settings.file_mode if file_mode is None else file_mode) & 0o444
    dir_bits = (settings.dir_mode if dir_mode is None else dir_mode) & 0o555
    changes: dict[str, PermChange] = {}
    skipped: list[tuple[str, str]] = []
    seen: dict[str, os.stat_result | None] = {}

    def lstat(path: str, root: str) -> os.stat_result | None:
        if path not in seen:
            try:
                # The root is configuration and may be a link; below it, links are refused.
                seen[path] = os.stat(path) if path == root else os.lstat(path)
            except OSError:
                seen[path] = None
        return seen[path]

    for image in sorted(inventory.images, key=lambda i: i.path):
        why = _eligible(image)
        if why is not None:
            if image.probe.format is not Format.UNKNOWN or image.ref is not None:
                skipped.append((image.path, why))
            continue
        rel = os.path.relpath(image.path, image.root)
        dirs = [image.root]
        for part in rel.split("/")[:-1]:
            dirs.append(os.path.join(dirs[-1], part))
        found = [(d, lstat(d, image.root)) for d in dirs]
        if any(st is None or not stat.S_ISDIR(st.st_mode) for _, st in found):
            skipped.append((image.path, "a directory on its path is a link or has gone"))
            continue
        for path, st in found:
            assert st is not None
            mode = stat.S_IMODE(st.st_mode)
            if mode & dir_bits != dir_bits and path not in changes:
                changes[path] = PermChange(
                    path, image.root, True, mode, mode | dir_bits, (st.st_dev, st.st_ino)
                )
        mode = stat.S_IMODE(image.stat.mode)
        if mode & file_bits != file_bits:
            changes[image.path] = PermChange(
                image.path,
                image.root,
                False,
                mode,
                mode | file_bits,
                image.stat.key,
            )
    # Directories first, parents before children: a file is only reachable once they are.
    ordered = sorted(changes.values(), key=lambda c: (not c.is_dir, c.path.count("/"), c.path))
    return PermPlan(tuple(ordered), tuple(skipped), file_bits, dir_bits)


def _same(st: os.stat_result, change: PermChange) -> bool:
    if change.is_dir:
        return (st.st_dev, st.st_ino) == change.key
    return file_stat(st).key == change.key


def _chmod_fd(fd: int, change: PermChange, bits: int) -> PermChange | None:
    st = os.fstat(fd)
    if not _same(st, change):
        raise MaintenanceError(
            f"{change.path} changed since it was scanned; rescan and try again", "changed"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & bits == bits:
        return None
    os.fchmod(fd, mode | bits)
    return replace(change, old_mode=mode, new_mode=mode | bits)


def _apply_dir(change: PermChange, bits: int) -> PermChange | None:
    root_fd = safety.open_root(change.root)
    try:
        if os.path.abspath(change.path) == os.path.abspath(change.root):
            return _chmod_fd(root_fd, change, bits)
        rel = safety.rel_in_root(change.root, change.path)
        fd = safety.walk_dirs(root_fd, change.root, rel.split("/"))
        try:
            return _chmod_fd(fd, change, bits)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)


def _apply_file(change: PermChange, bits: int) -> PermChange | None:
    with safety.locate(change.root, change.path) as loc:
        try:
            fd = os.open(loc.name, _FILE_OPEN, dir_fd=loc.dir_fd)
        except PermissionError:
            # An owner may lack read permission on their own file (mode 0200, say):
            # change it by name, still without following a link.
            if not _same(loc.stat, change):
                raise MaintenanceError(
                    f"{change.path} changed since it was scanned; rescan and try again",
                    "changed",
                ) from None
            mode = stat.S_IMODE(loc.stat.st_mode)
            os.chmod(loc.name, mode | bits, dir_fd=loc.dir_fd, follow_symlinks=False)
            return replace(change, old_mode=mode, new_mode=mode | bits)
        try:
            return _chmod_fd(fd, change, bits)
        finally:
            os.close(fd)


def apply_permissions(
    perm_plan: PermPlan,
    *,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
) -> PermResult:
    """Make the plan's changes; a path that changed since the plan is reported, not touched."""
    progress = Progress(on_progress)
    changed: list[PermChange] = []
    failed: list[tuple[str, str]] = []
    total = len(perm_plan.changes)
    for i, change in enumerate(perm_plan.changes):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(i / max(total, 1), f"chmod {change.path}")
        bits = perm_plan.dir_bits if change.is_dir else perm_plan.file_bits
        try:
            done = _apply_dir(change, bits) if change.is_dir else _apply_file(change, bits)
        except MaintenanceError as exc:
            failed.append((change.path, str(exc)))
            log(logfile, f"refused: {exc}")
            continue
        except OSError as exc:
            failed.append((change.path, f"cannot change {change.path}: {exc.strerror}"))
            log(logfile, f"failed: {change.path}: {exc.strerror}")
            continue
        if done is not None:
            changed.append(done)
            log(logfile, done.line)
    progress(1.0, "done")
    return PermResult(tuple(changed), tuple(failed))
