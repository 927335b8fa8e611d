"""Garbage collection: pick images by their findings, show the plan, then delete exactly that.

`plan` selects from an inventory the images carrying any of the chosen findings
(by default `corrupt`, `incomplete`, `duplicate` and `stale`; `superseded` only on
request, since jobs may still name an old tag on purpose) and returns a `GcPlan`:
the files with size and reason, the total, and what was left out and why. `apply`
deletes the plan's items and nothing else, each re-checked against the (device,
inode, size, mtime) the scan saw, so what a dry run printed is what goes.

Never selected: a current default image (whatever its findings), a symbolic
link, a file of an owner not in `delete.allowed_owners`, a file written within
the last hour (`MIN_AGE_SECONDS`, whatever `days` says), and a file that may
still be being written (`possibly_live`). The plan also lists the trash batches
past `trash_grace_days`, which `apply` purges.

`default_notes` says which files are an environment's default image, in the words
the plans use ("ubuntu:22.04 is the CPU default image: ..."), for rm and the app's
delete dialog, which do not refuse them but say so.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import IO, Any

import humanize

from imgcache.backends.config import Settings
from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.findings import GC_CODES, GC_DEFAULT_CODES, evaluate
from imgcache.backends.inventory.model import Image
from imgcache.backends.maintenance import trash
from imgcache.backends.maintenance.common import MaintenanceError, PlanItem, ProgressFn, total_bytes
from imgcache.backends.maintenance.purge import expired_batches, purge_trash
from imgcache.backends.tools.run import CancelToken

#: Findings gc selects when told nothing (defined with the vocabulary, where the
#: command line reads them without loading gc).
DEFAULT_CODES = GC_DEFAULT_CODES
#: gc never selects a file written (modified) less than this many seconds ago, whatever
#: `--days` says: it may be a pull, a copy or a compress still writing it.
MIN_AGE_SECONDS = 3600.0


def possibly_live(image: Image, now: float) -> bool:
    """Whether a writer may still be producing this file, older than `MIN_AGE_SECONDS` as
    it is: an imgcache temp that is not a dead job's leftover (its writer, named in
    the temp's name, still runs on this host, or it is another host's and recent;
    `imgcache.backends.jobs.leftovers.is_stale`).

    Pass another function to `plan` to change it.
    """
    from imgcache.backends.jobs.leftovers import is_stale
    from imgcache.backends.jobs.publish import FOREIGN_TEMP_AGE, parse_temp

    owner = parse_temp(os.path.basename(image.path))
    if owner is None:
        return False
    return not is_stale(owner, image.stat.mtime, now=now, foreign_age=FOREIGN_TEMP_AGE)


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What gc would delete: items with size and reason, and what it left out."""

    items: tuple[PlanItem, ...]
    skipped: tuple[PlanItem, ...]
    """Images that have a chosen finding but are kept; `reason` says why."""
    codes: tuple[str, ...]
    days: int
    created: float
    trash: tuple[PlanItem, ...] = ()
    """Trash batches past the grace period (path, bytes): apply purges them too."""

    @property
    def total_bytes(self) -> int:
        """Bytes of the files the plan deletes."""
        return total_bytes(self.items)

    @property
    def trash_bytes(self) -> int:
        """Bytes the expired trash batches hold, given back when apply purges them."""
        return total_bytes(self.trash)

    @property
    def empty(self) -> bool:
        """True when applying the plan would do nothing."""
        return not (self.items or self.trash)

    @property
    def paths(self) -> list[str]:
        """The paths of the items, in plan order."""
        return [item.path for item in self.items]

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON: codes, days, items, total_bytes, skipped."""
        return {
            "codes": list(self.codes),
            "days": self.days,
            "items": [item.as_dict() for item in self.items],
            "total_bytes": self.total_bytes,
            "skipped": [item.as_dict() for item in self.skipped],
            "trash": [item.as_dict() for item in self.trash],
            "trash_bytes": self.trash_bytes,
        }


def default_paths(inventory: Inventory) -> set[str]:
    """Files that are (or would be) a current default image in some cache."""
    paths = {p.path for p in inventory.presence if p.path}
    paths |= {os.path.abspath(d.file) for d in inventory.defaults if d.file}
    return paths


#: What deleting a default image means, after "X is the CPU default image".
DEFAULT_CONSEQUENCE = "jobs that use the default will pull it again"


def default_notes(inventory: Inventory, paths: Iterable[str]) -> dict[str, str]:
    """For each of `paths` that is an environment's default image where the runtime looks,
    one line saying so, e.g. "ubuntu:22.04 is the CPU default image: jobs that use the
    default will pull it again"."""
    return {
        path: f"{what}: {DEFAULT_CONSEQUENCE}"
        for path, what in _default_roles(inventory, paths).items()
    }


def _default_roles(inventory: Inventory, paths: Iterable[str]) -> dict[str, str]:
    """ "ubuntu:22.04 is the CPU default image" for each of `paths` that is one."""
    from imgcache.backends.inventory.defaults import ENVIRONMENT_TITLES

    wanted = set(paths)
    found: dict[str, dict[str, str]] = {}
    for presence in inventory.presence:
        if presence.path in wanted and presence.state in ("present", "broken"):
            envs = found.setdefault(presence.path, {})
            envs.setdefault(presence.default.env, presence.default.value)
    for default in inventory.defaults:
        file = os.path.abspath(default.file) if default.file else None
        if file in wanted:
            found.setdefault(file, {}).setdefault(default.env, default.value)
    notes = {}
    for path, envs in found.items():
        values = list(dict.fromkeys(envs.values()))
        titles = " and ".join(ENVIRONMENT_TITLES.get(env, env) for env in envs)
        notes[path] = f"{' / '.join(values)} is the {titles} default image"
    return notes


def _reason(image: Image, codes: Iterable[str]) -> str:
    wanted = set(codes)
    return "; ".join(f"{f.code}: {f.reason}" for f in image.findings if f.code in wanted)


def plan(
    inventory: Inventory,
    *,
    codes: Iterable[str] | None = None,
    days: int | None = None,
    now: float | None = None,
    is_live: Callable[[Image, float], bool] = possibly_live,
) -> GcPlan:
    """Choose what to delete from `inventory`; `days` overrides `stale_days` for this plan.

    `codes` None means `DEFAULT_CODES`; an empty choice selects no image (the
    expired trash batches are listed all the same).
    """
    chosen = tuple(dict.fromkeys(DEFAULT_CODES if codes is None else codes))
    unknown = [c for c in chosen if c not in GC_CODES]
    if unknown:
        raise MaintenanceError(
            f"gc cannot select by {', '.join(unknown)} (choose from {', '.join(GC_CODES)})",
            "usage",
        )
    settings = inventory.settings
    now = time.time() if now is None else now
    days = settings.stale_days if days is None else days
    if days < 0:
        raise MaintenanceError(f"--days must be 0 or more, not {days}", "usage")
    images: Iterable[Image] = inventory.images
    if days != settings.stale_days:
        images = evaluate(
            images, inventory.defaults, now=now, stale_days=days, file_mode=settings.file_mode
        )
    defaults = default_paths(inventory)
    roles = _default_roles(inventory, defaults)
    allowed = settings.allowed_owners
    items: list[PlanItem] = []
    skipped: list[PlanItem] = []
    for image in images:
        if not set(image.codes) & set(chosen):
            continue
        reason = _reason(image, chosen)
        item = PlanItem(image.path, image.stat.size, reason, image.root, image.stat)
        if stat.S_ISLNK(image.stat.mode):
            why = "a symbolic link; imgcache never removes links"
        elif not stat.S_ISREG(image.stat.mode):
            why = "not a regular file; imgcache removes only regular files"
        elif image.path in defaults:
            why = roles.get(image.path, "a current default image")
        elif allowed and image.owner not in allowed and str(image.stat.uid) not in allowed:
            why = f"owned by {image.owner}, who is not in delete.allowed_owners"
        elif now - image.stat.mtime < MIN_AGE_SECONDS:
            ago = humanize.naturaldelta(max(0.0, now - image.stat.mtime))
            why = f"written {ago} ago, within the last hour: it may still be being written"
        elif is_live(image, now):
            ago = humanize.naturaldelta(max(0.0, now - image.stat.mtime))
            why = f"modified {ago} ago and its writer still runs: it may still be being written"
        else:
            items.append(item)
            continue
        skipped.append(PlanItem(image.path, image.stat.size, why, image.root, image.stat))
    expired = [
        batch
        for spec in settings.caches
        for batch in expired_batches(spec.path, settings.trash_grace_days, now=now)
    ]
    return GcPlan(tuple(items), tuple(skipped), chosen, days, now, tuple(expired))


def apply(
    gc_plan: GcPlan,
    settings: Settings,
    *,
    purge: bool = False,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
) -> trash.DeleteResult:
    """Delete the plan's items (to the trash, or at once with `purge`) and purge its
    expired trash batches; nothing else.

    An item that changed or vanished since the scan is reported in `failed` and
    the others go ahead.
    """
    result = trash.delete(
        settings,
        gc_plan.items,
        purge=purge,
        skip_refused=True,
        purge_old=False,
        via="gc",
        cancel=cancel,
        on_progress=on_progress,
        logfile=logfile,
    )
    purged: list[str] = []
    failed = list(result.failed)
    for root in dict.fromkeys(batch.root for batch in gc_plan.trash):
        only = {batch.path for batch in gc_plan.trash if batch.root == root}
        done = purge_trash(
            root, settings.trash_grace_days, cancel=cancel, logfile=logfile, only=only
        )
        purged += done.purged
        failed += done.failed
    remove_leftovers(settings, logfile)
    return replace(result, purged_batches=tuple(purged), failed=tuple(failed))


def remove_leftovers(settings: Settings, logfile: IO[str] | None = None) -> list[str]:
    """Remove the temps of dead jobs in every cache, however recent (they are no image);
    what a pull does in its own directory (`imgcache.backends.jobs.leftovers`)."""
    from imgcache.backends.jobs.leftovers import cleanup_stale

    removed = [path for spec in settings.caches for path in cleanup_stale(spec.path)]
    for path in removed:
        if logfile is not None:
            logfile.write(f"removed a leftover of an interrupted job: {path}\n")
    return removed
