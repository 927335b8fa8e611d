"""Purging the trash: which batches are past the grace period, and removing batches.

A batch is `ROOT/.imgcache-trash/<UTC time>-<random>/` (`batches`); its age is read
from its name. Purging removes whole batches with `shutil.rmtree` on descriptors
(the trash opened from the root with `O_NOFOLLOW`), so a link planted in the
trash is removed, never followed, and a link planted at `.imgcache-trash` itself
is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import IO

from imgcache.backends.inventory.caches import TRASH_DIR
from imgcache.backends.maintenance.batches import (
    STAMP,
    batch_name,
    batch_time,
    list_batches,
    open_trash,
)
from imgcache.backends.maintenance.common import (
    MaintenanceError,
    PlanItem,
    Progress,
    ProgressFn,
    human,
    log,
)
from imgcache.backends.tools.run import CancelToken

__all__ = [
    "STAMP",
    "PurgeResult",
    "batch_name",
    "batch_time",
    "expired_batches",
    "purge_trash",
]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Which trash batches a purge removed and which it could not."""

    purged: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    kept: int
    """Batches still inside the grace period."""


def expired_batches(root: str, grace_days: float, *, now: float | None = None) -> list[PlanItem]:
    """The batches of the trash at `root` past the grace period, with the bytes they hold.

    For plans only: sizes come from a walk that follows no link; purging checks again.
    """
    now = time.time() if now is None else now
    items = []
    for batch in list_batches(root)[0]:
        if now - batch.created < grace_days * 86400:
            continue
        when = time.strftime("%Y-%m-%d", time.gmtime(batch.created))
        size = batch.size
        reason = f"trash from {when}, past the {grace_days:g}-day grace period ({human(size)})"
        items.append(PlanItem(batch.path, size, reason, root))
    return items


def purge_trash(
    root: str,
    grace_days: float | None,
    *,
    now: float | None = None,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
    only: Collection[str] | None = None,
) -> PurgeResult:
    """Remove the trash batches of the cache at `root` made at least `grace_days` ago.

    `grace_days` None purges batches of any age (`imgcache trash --empty`). With
    `only` (batch paths, as `expired_batches` lists them), no other batch is
    removed. Only directories named like a batch are touched; the removal works on
    descriptors and never follows a link (`shutil.rmtree` with `dir_fd`).
    """
    now = time.time() if now is None else now
    progress = Progress(on_progress)
    try:
        opened = open_trash(root)
    except MaintenanceError as exc:
        return PurgeResult((), ((os.path.join(root, TRASH_DIR), str(exc)),), 0)
    if opened is None:
        return PurgeResult((), (), 0)
    root_fd, trash_fd = opened
    os.close(root_fd)
    purged: list[str] = []
    failed: list[tuple[str, str]] = []
    kept = 0
    try:
        for entry in os.scandir(trash_fd):
            made = batch_time(entry.name)
            if made is None or not entry.is_dir(follow_symlinks=False):
                continue
            if grace_days is not None and now - made < grace_days * 86400:
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
        with contextlib.suppress(OSError):
            os.close(trash_fd)
    progress(1.0, "done")
    return PurgeResult(tuple(purged), tuple(failed), kept)
