"""Actions on images already in a cache, run on the job queue: compress, delete, gc, fix-perms.

Each wraps one `imgcache.backends.maintenance` operation so the app can show its progress,
cancel it and keep its log like any pull. The request's `ref` is empty, `label`
says what it acts on, and `payload` carries the operation's input:

- compress: `CompressPayload` (one image; `cache` is its cache)
- delete: `DeletePayload` (plan items, possibly from several caches)
- gc: `GcPayload` (a plan made by `maintenance.gc.plan`)
- fix-perms: `PermsPayload` (a plan made by `maintenance.perms.plan_permissions`)

Refusals and failures are `MaintenanceError`s, which the queue shows as the job's
one-line failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from imgcache.backends.inventory.model import FileStat
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.kinds.base import Kind
from imgcache.backends.jobs.states import JobError
from imgcache.backends.maintenance import PlanItem, gc, perms, trash
from imgcache.backends.maintenance.compress import compress_image
from imgcache.backends.maintenance.trash import DeleteResult
from imgcache.backends.wording import plural


@dataclass(frozen=True, slots=True)
class CompressPayload:
    """One image to recompress, with the options that override the config."""

    path: str
    expected: FileStat | None = None
    """The file as the scan saw it; a file that changed since is refused."""
    codec: str | None = None
    level: int | None = None
    block_size: str | None = None
    force: bool = False
    allow_signed: bool = False
    """The admin agreed that a signed SIF's signature will no longer verify."""


@dataclass(frozen=True, slots=True)
class DeletePayload:
    """Images to delete (to their cache's trash, or at once with `purge`)."""

    items: tuple[PlanItem, ...]
    purge: bool = False


@dataclass(frozen=True, slots=True)
class GcPayload:
    """A garbage-collection plan the admin has seen and confirmed."""

    plan: gc.GcPlan
    purge: bool = False


@dataclass(frozen=True, slots=True)
class PermsPayload:
    """Permission changes the admin has seen and confirmed."""

    plan: perms.PermPlan


T = TypeVar("T")


def _payload(ctx: JobContext, kind: type[T]) -> T:
    payload = ctx.request.payload
    if not isinstance(payload, kind):
        raise JobError(f"{ctx.request.kind} needs a {kind.__name__}, not {type(payload).__name__}")
    return payload


def _deleted(result: DeleteResult) -> str:
    """One line for a delete's result."""
    from imgcache.backends.maintenance.common import human

    verb = "deleted" if result.purge else "moved to the trash"
    message = f"{plural(len(result.removed), 'file')} {verb} ({human(result.bytes)})"
    if result.failed:
        path, why = result.failed[0]
        message += f"; {len(result.failed)} left in place ({path}: {why})"
    return message


class Compress(Kind):
    """Recompress one image with the configured (or given) squashfs options."""

    name = "compress"

    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Rebuild the image and replace it if the new one is valid and smaller."""
        p = _payload(ctx, CompressPayload)
        ctx.report(target=p.path)
        result = compress_image(
            ctx.request.cache.path,
            p.path,
            ctx.settings,
            expected=p.expected,
            codec=p.codec,
            level=p.level,
            block_size=p.block_size,
            force=p.force,
            allow_signed=p.allow_signed,
            cancel=ctx.cancel,
            on_progress=ctx.progress,
            logfile=ctx.log,
        )
        return result.summary


class Delete(Kind):
    """Delete chosen images: to the trash of their cache, or at once."""

    name = "delete"

    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Check every item, then move (or unlink) them; refuses all if one is refused."""
        p = _payload(ctx, DeletePayload)
        result = trash.delete(
            ctx.settings,
            p.items,
            purge=p.purge,
            cancel=ctx.cancel,
            on_progress=ctx.progress,
            logfile=ctx.log,
        )
        return _deleted(result)


class GarbageCollect(Kind):
    """Apply a confirmed gc plan."""

    name = "gc"

    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Delete the plan's items and purge its expired trash."""
        p = _payload(ctx, GcPayload)
        result = gc.apply(
            p.plan,
            ctx.settings,
            purge=p.purge,
            cancel=ctx.cancel,
            on_progress=ctx.progress,
            logfile=ctx.log,
        )
        return _deleted(result)


class FixPermissions(Kind):
    """Apply confirmed permission changes."""

    name = "fix-perms"

    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Add the configured read and traverse bits where the plan says."""
        p = _payload(ctx, PermsPayload)
        result = perms.apply_permissions(
            p.plan, cancel=ctx.cancel, on_progress=ctx.progress, logfile=ctx.log
        )
        message = plural(len(result.changed), "permission change")
        if result.failed:
            path, why = result.failed[0]
            message += f"; {len(result.failed)} not made ({path}: {why})"
        return message
