"""The app's side of the maintenance actions: compress, delete, gc and fix permissions.

Each action starts from what the admin pointed at - the marked images, else the
one under the cursor (gc: the whole inventory; fix permissions: the marked
images, else every image) - checks what can be checked before anything is
queued, shows what will happen, and on yes hands the job queue exactly what was
shown: the dialog's files, the screen's plan object. Every file goes with the
(device, inode, size, mtime) the scan saw, so a file that changed since is
refused by the job rather than acted on. Reading the disk to check or plan
(a delete's preflight, gc's trash batches, directory modes) happens in thread
workers; nothing here writes - the jobs do, on the queue's threads.

Decisions worth knowing: a delete leaves out the files its preflight refuses
(listed with why) and deletes the rest; compress runs one job per image; a
signed SIF is compressed only after a second, explicit yes; marks are cleared
once the jobs for them are queued.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from rich.console import Group
from rich.text import Text

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.model import Image
from imgcache.backends.jobs.kinds.actions import (
    CompressPayload,
    DeletePayload,
    GcPayload,
    PermsPayload,
)
from imgcache.backends.jobs.states import JobRequest
from imgcache.backends.maintenance import MaintenanceError, PlanItem, gc, perms, trash
from imgcache.backends.maintenance.compress import SIGNED_QUESTION
from imgcache.backends.maintenance.squashopts import from_mksquashfs
from imgcache.tui.format import human_size, plural
from imgcache.tui.host import Host
from imgcache.tui.screens.compress_dialog import CompressDialog, check_images
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.delete_dialog import DeleteDialog, DeletePlan
from imgcache.tui.screens.gc_plan import GcChoice, GcPlanScreen
from imgcache.tui.screens.perms_plan import PermsPlanScreen
from imgcache.tui.screens.trash_screen import TrashScreen


def touched_dirs(request: JobRequest) -> set[str]:
    """The directories an action job changes (to rescan when it ends); empty for others."""
    payload = request.payload
    paths: list[str] = []
    dirs: set[str] = set()
    if isinstance(payload, CompressPayload):
        paths = [payload.path]
    elif isinstance(payload, DeletePayload):
        paths = [item.path for item in payload.items]
    elif isinstance(payload, GcPayload):
        paths = list(payload.plan.paths)
    elif isinstance(payload, PermsPayload):
        for change in payload.plan.changes:
            if change.is_dir:
                dirs.add(change.path)  # its mode shows on its entries (who can read them)
            else:
                paths.append(change.path)
    return dirs | {os.path.dirname(path) for path in paths}


def plan_item(image: Image, reason: str = "") -> PlanItem:
    """An image as a delete takes it, with the stat the scan saw."""
    why = reason or ", ".join(image.codes) or "chosen"
    return PlanItem(image.path, image.stat.size, why, image.root, image.stat)


def job_label(paths: Sequence[str], roots: Sequence[str], size: int) -> str:
    """What an action job acts on: one file's name, or a count, its bytes and caches."""
    if len(paths) == 1:
        return os.path.relpath(paths[0], roots[0])
    caches = len(set(roots))
    where = f" in {caches} caches" if caches > 1 else ""
    return f"{plural(len(paths), 'file')}{where}, {human_size(size)}"


class MaintenanceControl:
    """The maintenance actions of the app; see the module docstring."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._checking = False
        """A delete's preflight is running (a second D waits for its dialog)."""

    # -- shared ---------------------------------------------------------------------

    def _spec(self, root: str) -> CacheSpec:
        """The cache a job on files under `root` is shown in."""
        for spec in self.host.settings.caches:
            if spec.path == root:
                return spec
        return self.host.settings.caches[0]

    def _inventory(self) -> Inventory | None:
        if self.host.settings.read_only:
            self.host.notify("imgcache is read-only: nothing can be changed", severity="warning")
            return None
        if self.host.inventory is None:
            self.host.notify("the caches are still being read", severity="warning")
        return self.host.inventory

    def _targets(self) -> list[Image]:
        if self._inventory() is None:
            return []
        images = self.host.main.table.targets()
        if not images:
            self.host.notify("no image selected: move to one, or mark some with space")
        return images

    def _submit(self, requests: list[JobRequest], *, clear_marks: bool = True) -> None:
        self.host.submit_jobs(requests)
        if clear_marks:
            # The marked set was used up: the next action starts from the cursor again.
            self.host.main.table.action_clear_marks()

    # -- compress -------------------------------------------------------------------

    def ask_compress(self) -> None:
        """Check the targets, confirm (twice for signed SIFs), then one job per image."""
        images = self._targets()
        if not images:
            return
        try:
            options = from_mksquashfs(self.host.settings.squash_options)
        except MaintenanceError as exc:
            self.host.notify(f"jobs.squash_options: {exc}", severity="error", markup=False)
            return

        def answered(force: bool | None) -> None:
            if force is None:
                return
            check = check_images(images, options, force=force)
            if check.signed:
                self._ask_signed(check.ready, check.signed, force)
            else:
                self._submit_compress(check.ready, force, ())

        dialog = CompressDialog(images, options, self.host.main.names)
        self.host.push_screen(dialog, answered)

    def _ask_signed(self, ready: Sequence[Image], signed: Sequence[Image], force: bool) -> None:
        signed_paths = {image.path for image in signed}
        others = [image for image in ready if image.path not in signed_paths]
        lines = [Text(f"  {image.path}", style="bold") for image in signed]
        body = Group(
            Text(f"{plural(len(signed), 'signed SIF file')}:"),
            *lines,
            Text(""),
            Text(SIGNED_QUESTION[0].upper() + SIGNED_QUESTION[1:], style="bold yellow"),
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._submit_compress(ready, force, signed)
            elif others:
                self.host.notify(f"left alone: {plural(len(signed), 'signed SIF file')}")
                self._submit_compress(others, force, ())

        dialog = ConfirmDialog(
            "Compress signed SIF files?",
            body,
            yes="Compress them too" if others else "Compress",
            no="Skip them" if others else "Cancel",
            focus_no=True,
        )
        self.host.push_screen(dialog, answered)

    def _submit_compress(
        self, images: Sequence[Image], force: bool, signed: Sequence[Image]
    ) -> None:
        if not images:
            return
        allowed = {image.path for image in signed}
        requests = [
            JobRequest(
                "compress",
                "",
                self._spec(image.root),
                label=image.rel,
                payload=CompressPayload(
                    image.path, expected=image.stat, force=force, allow_signed=image.path in allowed
                ),
            )
            for image in images
        ]
        self._submit(requests)

    # -- delete ---------------------------------------------------------------------

    def ask_delete(self) -> None:
        """Preflight the targets (in a thread), confirm, then one delete job."""
        if self._checking:
            return
        images = self._targets()
        if images:
            items = [plan_item(image) for image in images]
            self._checking = True
            self.host.run_worker(
                lambda: self._preflight(items), thread=True, group="maintenance",
                name="check what can be deleted", exit_on_error=False,
            )  # fmt: skip

    def _preflight(self, items: list[PlanItem]) -> None:
        # A worker thread: preflight opens every directory on the way to each file.
        try:
            refused = trash.preflight(self.host.settings, items)
        except Exception as exc:  # a root that cannot be opened, say: tell, do not crash
            self.host.call_from_thread(self._preflight_failed, str(exc) or type(exc).__name__)
            return
        self.host.call_from_thread(self._confirm_delete, items, refused)

    def _preflight_failed(self, why: str) -> None:
        self._checking = False
        self.host.notify(f"cannot check the files: {why}", severity="error", markup=False)

    def _confirm_delete(
        self, items: list[PlanItem], refused: list[tuple[PlanItem, MaintenanceError]]
    ) -> None:
        self._checking = False
        why = {item.path: _short(item, exc) for item, exc in refused}
        kept = tuple(item for item in items if item.path not in why)
        inventory = self.host.inventory
        notes = gc.default_notes(inventory, [i.path for i in kept]) if inventory else {}
        plan = DeletePlan(
            kept,
            tuple((item, why[item.path]) for item in items if item.path in why),
            self.host.settings.trash_grace_days,
            notes,
        )

        def answered(purge: bool | None) -> None:
            if purge is None or not plan.items:
                return
            paths = [item.path for item in plan.items]
            roots = [item.root for item in plan.items]
            request = JobRequest(
                "delete",
                "",
                self._spec(roots[0]),
                label=job_label(paths, roots, plan.total),
                payload=DeletePayload(plan.items, purge),
            )
            self._submit([request])

        self.host.push_screen(DeleteDialog(plan, self.host.main.names), answered)

    # -- gc ---------------------------------------------------------------------------

    def ask_gc(self) -> None:
        """The gc screen over the inventory on screen; its confirmed plan becomes one job."""
        inventory = self._inventory()
        if inventory is None:
            return
        clock = self.host.clock

        def planner(codes: tuple[str, ...], days: int) -> gc.GcPlan:
            return gc.plan(inventory, codes=codes, days=days, now=clock())

        def answered(choice: GcChoice | None) -> None:
            if choice is None:
                return
            plan = choice.plan
            roots = [item.root for item in plan.items] or [b.root for b in plan.trash]
            label = job_label(plan.paths, roots, plan.total_bytes) if plan.items else ""
            if plan.trash:
                batches = plural(len(plan.trash), "trash batch", "trash batches")
                label = f"{label} + {batches}" if label else batches
            request = JobRequest(
                "gc", "", self._spec(roots[0]), label=label,
                payload=GcPayload(plan, purge=choice.purge),
            )  # fmt: skip
            self._submit([request], clear_marks=False)

        settings = self.host.settings
        screen = GcPlanScreen(
            planner,
            self.host.main.names,
            days=settings.stale_days,
            grace_days=settings.trash_grace_days,
        )
        self.host.push_screen(screen, answered)

    # -- trash ------------------------------------------------------------------------

    def show_trash(self) -> None:
        """The trash screen over every cache; its restores and purges run in its workers."""
        screen = TrashScreen(self.host.settings, self.host.main.names, self.host.request_scan)
        self.host.push_screen(screen)

    # -- fix permissions --------------------------------------------------------------

    def ask_fix_perms(self) -> None:
        """The permissions screen (marked images, else all); its plan becomes one job."""
        inventory = self._inventory()
        if inventory is None:
            return
        table = self.host.main.table
        marked = table.marks.ordered(table.model)
        scope = f"{plural(len(marked), 'marked image')}" if marked else "every image"
        if marked:
            inventory = replace(inventory, images=tuple(marked))
        chosen = inventory

        def answered(plan: perms.PermPlan | None) -> None:
            if plan is None:
                return
            roots = [change.root for change in plan.changes]
            request = JobRequest(
                "fix-perms", "", self._spec(roots[0]),
                label=plural(len(plan.changes), "mode change"), payload=PermsPayload(plan),
            )  # fmt: skip
            self._submit([request], clear_marks=bool(marked))

        screen = PermsPlanScreen(
            lambda: perms.plan_permissions(chosen), self.host.main.names, scope=scope
        )
        self.host.push_screen(screen, answered)


def _short(item: PlanItem, exc: MaintenanceError) -> str:
    """A refusal without the path at its start (the dialog lists the path beside it)."""
    text = str(exc)
    for prefix in (f"{item.path}: ", f"{item.path} "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text
