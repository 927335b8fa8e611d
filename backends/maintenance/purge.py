"""The trash's batches: their names, which are past the grace period, and purging them.

A batch is `ROOT/.imgcache-trash/<UTC time>-<random>/`; its age is read from its
name, never from atime or mtime (many shared filesystems keep no atime, and moving
a file into the batch does not change its mtime). Purging removes whole batches
with `shutil.rmtree` on descriptors, so a link planted in the trash is removed,
never followed.
"""

from __future__ import annotations

import calendar
import os
import secrets
import shutil
import stat
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import IO

from imgcache.backends.inventory.caches import TRASH_DIR
from imgcache.backends.maintenance import safety
from imgcache.backends.maintenance.common import PlanItem, Progress, ProgressFn, human, log
from imgcache.backends.tools.run import CancelToken

#: strftime format of the time at the start of a batch name.
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Which trash batches a purge removed and which it could not."""

    purged: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    kept: int
    """Batches still inside the grace period."""


def batch_name(now: float) -> str:
    """A new batch directory name: UTC time and a random part, e.g. 20250101T120000Z-1a2b3c4d."""
    return f"{time.strftime(STAMP, time.gmtime(now))}-{secrets.token_hex(4)}"


def batch_time(name: str) -> float | None:
    """The creation time written in a batch name, or None for any other name."""
    stamp = name.split("-", 1)[0]
    try:
        return float(calendar.timegm(time.strptime(stamp, STAMP)))
    except ValueError:
        return None


def expired_batches(root: str, grace_days: float, *, now: float | None = None) -> list[PlanItem]:
    """The batches of the trash at `root` past the grace period, with the bytes they hold.

    For plans only: sizes come from a walk that follows no link; purging checks again.
    """
    now = time.time() if now is None else now
    trash = os.path.join(root, TRASH_DIR)
    try:
        entries = sorted(os.scandir(trash), key=lambda e: e.name)
    except OSError:
        return []
    items = []
    for entry in entries:
        made = batch_time(entry.name)
        if made is None or not entry.is_dir(follow_symlinks=False):
            continue
        if now - made < grace_days * 86400:
            continue
        size = 0
        for dirpath, _dirs, files in os.walk(entry.path):
            for name in files:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    size += st.st_size
        when = time.strftime("%Y-%m-%d", time.gmtime(made))
        reason = f"trash from {when}, past the {grace_days:g}-day grace period ({human(size)})"
        items.append(PlanItem(entry.path, size, reason, root))
    return items


def purge_trash(
    root: str,
    grace_days: float,
    *,
    now: float | None = None,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
    only: Collection[str] | None = None,
) -> PurgeResult:
    """Remove the trash batches of the cache at `root` made at least `grace_days` ago.

    With `only` (batch paths, as `expired_batches` lists them), no other batch is
    removed. Only directories named like a batch are touched; the removal works on
    descriptors and never follows a link (`shutil.rmtree` with `dir_fd`).
    """
    now = time.time() if now is None else now
    progress = Progress(on_progress)
    root_fd = safety.open_root(root)
    try:
        try:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            trash_fd = os.open(TRASH_DIR, flags, dir_fd=root_fd)
        except FileNotFoundError:
            return PurgeResult((), (), 0)
        except OSError as exc:
            return PurgeResult((), ((TRASH_DIR, f"cannot open the trash: {exc.strerror}"),), 0)
    finally:
        os.close(root_fd)
    purged: list[str] = []
    failed: list[tuple[str, str]] = []
    kept = 0
    try:
        for entry in os.scandir(trash_fd):
            made = batch_time(entry.name)
            if made is None or not entry.is_dir(follow_symlinks=False):
                continue
            if now - made < grace_days * 86400:
                kept += 1
                continue
            shown = os.path.join(root, TRASH_DIR, entry.name)
            if only is not None and shown not in only:
                continue
            if cancel is not None:
                cancel.raise_if_cancelled()
            progress(None, f"purging {shown}")
            try:
                shutil.rmtree(entry.name, dir_fd=trash_fd)
            except OSError as exc:
                failed.append((shown, f"cannot purge {shown}: {exc.strerror}"))
                continue
            purged.append(shown)
            log(logfile, f"purged {shown}")
    finally:
        os.close(trash_fd)
    progress(1.0, "done")
    return PurgeResult(tuple(purged), tuple(failed), kept)
