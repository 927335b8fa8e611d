"""Maintenance operations on a shared image cache: compress, delete, gc, fix permissions.

Each operation is a plain, blocking, cancellable function (`cancel`, `on_progress`,
`logfile`) that returns a result dataclass and raises `MaintenanceError` when it
refuses or fails, so the job queue can wrap it and the command line can call it.
Operations that remove or change files work on plans (`PlanItem` lists with totals)
that are shown first and re-checked file by file when applied: every path is
resolved from the cache root down with `O_NOFOLLOW`, and a file whose (device,
inode, size, mtime) differs from what the scan saw is refused.

Modules: `safety` (resolving paths inside a root), `trash` (delete, trash, purge),
`gc` (plan and apply), `perms` (fix-permissions), `compress` with `squashopts`,
`pipeline`, `verify` and `sifedit`.
"""

from __future__ import annotations

from imgcache.backends.maintenance.common import MaintenanceError, PlanItem, total_bytes

__all__ = ["MaintenanceError", "PlanItem", "total_bytes"]
