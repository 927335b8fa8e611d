"""The app's side of the job queue: open it, submit to it, show and announce what it does.

`imgcache.backends.jobs.queue.JobQueue` runs the jobs on its own threads and calls back on them
with `JobStatus` snapshots; here each snapshot becomes a `JobsUpdated` message
(collapsing while queued) and nothing else happens on those threads. On the UI
thread the snapshots go down to the jobs pane, a job's end is announced once
(a notification, and a rescan of the directory it wrote), and the admin's
intents (dialogs, keys in the panes) become job requests.

The queue is opened in a worker once the first scan is on screen (opening
prunes old logs, and `cleanup_stale` walks every cache for the leftovers of
killed jobs); jobs asked for before that wait for it. In read-only mode it is
never opened: there is nothing that could write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from imgcache.backends.inventory.defaults import Presence
from imgcache.backends.jobs.kinds import fetch_kind
from imgcache.backends.jobs.queue import JobQueue, missing_default_requests
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.tui.host import Host
from imgcache.tui.maintenance_control import touched_dirs
from imgcache.tui.messages import JobsReady, JobsUpdated
from imgcache.tui.screens.add_dialog import AddChoice, AddDialog
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.job_log import JobLogScreen
from imgcache.tui.screens.pull_dialog import PullChoice, PullDialog
from imgcache.tui.widgets.job_lines import result_text, subject

#: Seconds `shutdown` waits for cancelled jobs to clean up on the way out.
SHUTDOWN_WAIT = 15.0
#: Characters of a failure's reason a notification shows (the jobs pane and log: all).
NOTE_REASON = 160


def merge_requests(requests: Iterable[JobRequest]) -> list[JobRequest]:
    """One request per (job, reference, cache): the CPU and CUDA defaults are often one image."""
    merged: dict[tuple[object, ...], JobRequest] = {}
    for request in requests:
        # Jobs on files already in a cache have no reference: never merge those.
        key = (request.kind, request.ref, request.cache.path) if request.ref else (id(request),)
        first = merged.get(key)
        if first is None:
            merged[key] = request
        elif request.label and request.label not in first.label:
            envs = first.label.removesuffix(" default").removesuffix(" defaults")
            env = request.label.removesuffix(" default")
            merged[key] = replace(first, label=f"{envs}, {env} defaults")
    return list(merged.values())


def plan_text(requests: Sequence[JobRequest], names: Mapping[str, str]) -> RenderableType:
    """What pulling the missing defaults will do, for the confirmation dialog."""
    images = sorted({r.ref for r in requests})
    caches = sorted({names.get(r.cache.path, r.cache.path) for r in requests})
    image_word = "image" if len(images) == 1 else "images"
    job_word = "job" if len(requests) == 1 else "jobs"
    head = Text.assemble(
        (f"{len(images)} default {image_word}", "bold"),
        f" into {', '.join(caches)}: {len(requests)} {job_word}",
    )
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("cache", no_wrap=True)
    table.add_column("job", style="dim", no_wrap=True)
    table.add_column("image", overflow="fold")
    for request in requests:
        image = Text(request.ref, style="bold")
        if request.label:
            image.append(f"  {request.label}", style="dim")
        if request.replace:
            image.append("  replaces a broken file", style="magenta")
        table.add_row(f"→ {names.get(request.cache.path, request.cache.path)}", request.kind, image)
    return Group(head, Text(""), table)


class JobControl:
    """Everything the app does with jobs; see the module docstring."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.queue: JobQueue | None = None
        self.statuses: dict[int, JobStatus] = {}
        """The newest snapshot of every job of this session, by id."""
        self._waiting: list[JobRequest] = []
        self._announced: set[int] = set()

    @property
    def read_only(self) -> bool:
        """True when nothing may be written."""
        return self.host.settings.read_only

    # -- the queue's life ---------------------------------------------------------

    def open(self) -> None:
        """Open the queue and clean up after killed jobs, in a worker (not in read-only)."""
        if not self.read_only:
            self.host.run_worker(
                self._open, thread=True, group="jobs", name="open the job queue",
                exit_on_error=False,
            )  # fmt: skip

    def _open(self) -> None:
        queue = JobQueue(self.host.settings, on_update=self._on_update)
        removed = queue.cleanup_stale()
        self.host.post_message(JobsReady(queue, removed))

    def _on_update(self, status: JobStatus) -> None:
        # Runs on the queue's worker threads: post, and touch nothing else.
        self.host.post_message(JobsUpdated({status.id: status}))

    def ready(self, message: JobsReady) -> None:
        """The queue is open: say what was cleaned up, submit what waited for it."""
        self.queue = message.queue
        for path in message.removed:
            self.host.note_event(f"removed a leftover of an interrupted job: {path}")
        waiting, self._waiting = self._waiting, []
        if waiting:
            self.submit(waiting)

    def shutdown(self) -> None:
        """Cancel what still runs and wait for the tools to be gone (on the way out)."""
        if self.queue is not None:
            self.queue.shutdown(cancel=True, timeout=SHUTDOWN_WAIT)

    @property
    def active(self) -> list[JobStatus]:
        """Jobs queued or running."""
        return [s for s in self.statuses.values() if not s.state.finished]

    # -- snapshots from the queue -------------------------------------------------

    def updated(self, statuses: Iterable[JobStatus]) -> None:
        """Show new snapshots; announce each job's end once."""
        fresh = []
        for status in statuses:
            old = self.statuses.get(status.id)
            if old is not None and old.state.finished and not status.state.finished:
                continue  # a late copy of an older snapshot: the job has ended
            fresh.append(status)
            self.statuses[status.id] = status
            if status.state.finished and status.id not in self._announced:
                self._announced.add(status.id)
                self._announce(status)
                self._rescan(status)
        self.host.main.show_jobs_update(fresh)

    def _announce(self, status: JobStatus) -> None:
        request = status.request
        where = self.host.main.names.get(request.cache.path, request.cache.path)
        what = f"{request.kind} {subject(status)[0]} → {where}"
        if status.state is JobState.DONE:
            self.host.notify(f"{what}: {result_text(status)}", title="Job done", markup=False)
        elif status.state is JobState.FAILED:
            reason = status.message.splitlines()[0] if status.message else "failed"
            if len(reason) > NOTE_REASON:
                # Tools chain their errors: the start says what failed, the end why.
                head = NOTE_REASON // 3
                reason = f"{reason[:head]}…{reason[len(reason) - (NOTE_REASON - head - 1) :]}"
            self.host.notify(
                f"{what}: {reason}", title="Job failed", severity="error", markup=False
            )
        else:
            self.host.notify(what, title="Job cancelled", severity="warning", markup=False)

    def _rescan(self, status: JobStatus) -> None:
        # The watcher sees the new file anyway; this makes it show at once, and
        # with no watcher at all. New directories are walked from their parent.
        touched = touched_dirs(status.request)
        if touched:
            # Actions change files where they are, and may stop half way (cancelled,
            # one file refused): re-list those directories however the job ended.
            self.host.request_scan(touched)
            return
        if status.state is not JobState.DONE or not status.target:
            return
        root = status.request.cache.path
        dirs = {root}
        directory = os.path.dirname(status.target)
        while directory.startswith(root.rstrip("/") + "/"):
            dirs.add(directory)
            directory = os.path.dirname(directory)
        self.host.request_scan(dirs)

    # -- submitting -----------------------------------------------------------------

    def submit(self, requests: Sequence[JobRequest]) -> None:
        """Queue jobs (merged) and show the jobs pane; refused in read-only mode."""
        if self.read_only:
            self.host.notify("imgcache is read-only: no jobs", severity="warning")
            return
        requests = merge_requests(requests)
        if self.queue is None:
            self._waiting += requests  # opening the queue takes a moment
        else:
            statuses = [self.queue.submit(request) for request in requests]
            self.updated(statuses)
        self.host.main.reveal_jobs()

    def pull_presences(self, presences: Iterable[Presence]) -> None:
        """Pull the defaults these presences lack (one cell or one row of the panel)."""
        presences = list(presences)
        requests = missing_default_requests(presences)
        if requests:
            self.submit(requests)
            return
        states = {p.state for p in presences}
        if states <= {"present"}:
            note = "already present"
        elif "elsewhere" in states:
            note = "stored under another name; p pulls it under the name the runtime uses"
        else:
            details = {p.detail for p in presences if p.detail}
            note = "nothing to pull here" + (f": {'; '.join(sorted(details))}" if details else "")
        self.host.notify(note, title="Defaults", markup=False)

    # -- dialogs ------------------------------------------------------------------

    def ask_pull_ref(self) -> None:
        """The pull dialog; its answer becomes a fetch job for the chosen cache."""

        def chosen(choice: PullChoice | None) -> None:
            if choice is not None:
                kind = fetch_kind(choice.cache.kind)
                self.submit(
                    [JobRequest(kind, choice.ref, choice.cache, credentials=choice.credentials)]
                )

        main = self.host.main
        self.host.push_screen(
            PullDialog(self.host.settings.caches, main.names, cache=main.current_cache()), chosen
        )

    def ask_add_file(self) -> None:
        """The add dialog; its answer becomes an add job."""

        def chosen(choice: AddChoice | None) -> None:
            if choice is not None:
                self.submit([JobRequest("add", choice.ref, choice.cache, source=choice.source)])

        main = self.host.main
        self.host.push_screen(
            AddDialog(self.host.settings.caches, main.names, cache=main.current_cache()), chosen
        )

    def ask_pull_defaults(self) -> None:
        """Confirm, then pull every missing (or broken) default into every cache."""
        inventory = self.host.inventory
        if inventory is None:
            self.host.notify("the caches are still being read", severity="warning")
            return
        requests = merge_requests(missing_default_requests(inventory.presence))
        if not requests:
            self.host.notify(
                "every default image is in every cache that can hold it", title="Defaults"
            )
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.submit(requests)

        dialog = ConfirmDialog(
            "Pull the missing defaults", plan_text(requests, self.host.main.names), yes="Pull"
        )
        self.host.push_screen(dialog, confirmed)

    def cancel(self, job_id: int) -> None:
        """Cancel a job (its tool's whole process group is killed)."""
        if self.queue is not None and not self.read_only:
            self.queue.cancel(job_id)

    def show_log(self, job_id: int) -> None:
        """The log screen of one job."""
        status = self.statuses.get(job_id)
        if status is None:
            return
        queue = self.queue
        latest = (lambda: queue.get(job_id)) if queue is not None else (lambda: status)
        self.host.push_screen(JobLogScreen(status, latest))

    def confirm_quit(self) -> bool:
        """True to quit now; with jobs still going, ask first (and quit on yes)."""
        active = self.active
        if not active:
            return True
        running = sum(s.state is JobState.RUNNING for s in active)
        queued = len(active) - running
        parts = []
        if running:
            parts.append(f"{running} job{'s are' if running > 1 else ' is'} running")
        if queued:
            parts.append(f"{queued} {'are' if queued > 1 else 'is'} queued" if running else
                         f"{queued} job{'s are' if queued > 1 else ' is'} queued")  # fmt: skip
        question = f"{' and '.join(parts)}; quit and cancel them?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.host.exit()

        self.host.push_screen(ConfirmDialog("Quit", question, yes="Quit"), answered)
        return False
