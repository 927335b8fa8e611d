"""The queue that runs jobs (pull, import, save, add, the maintenance actions).

The app and the command line drive the same `JobQueue`:

    queue = JobQueue(settings, on_update=callback)   # callback(JobStatus), any thread
    status = queue.submit(JobRequest("pull", "ubuntu:22.04", cache))
    queue.cancel(status.id)                          # kills the tool's process group
    queue.wait()                                     # or watch the callbacks
    queue.shutdown()

`missing_default_requests(inventory.presence)` turns the defaults a cache lacks
into requests: the app's one key. `queue.cleanup_stale()` removes what killed
jobs left behind; call it once at start-up (it walks every cache). Each job
also cleans the directory it writes into (`imgcache.backends.jobs.leftovers`).

A job runs in one of `concurrency` worker threads; what it does is a *job kind*
from `imgcache.backends.jobs.kinds` (one module each), so new kinds plug in by
name: the queue hands the registry's lookup to `kinds.base.execute`. What a job
is (`JobRequest`, `JobStatus`, `JobState`, `JobError`) is in
`imgcache.backends.jobs.states`. Every job writes a log file of its own
(commands, tool output, result; never a password) under
`$XDG_STATE_HOME/imgcache/jobs`, kept after the job ends: where, and what
happens when that directory cannot be written (jobs run without logs and
`queue.log_problem` says why, once), is `imgcache.backends.jobs.logs`.
`on_update` receives an immutable `JobStatus` snapshot on every change of state
and, at most about ten times a second, of progress (`StatusUpdates`); it runs
on worker threads, so the app turns it into a message (`post_message`) and
nothing else.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.defaults import Presence
from imgcache.backends.jobs import kinds as jobkinds
from imgcache.backends.jobs import leftovers, locks, publish
from imgcache.backends.jobs.kinds.base import execute
from imgcache.backends.jobs.logs import KEEP_LOGS, LogFolder, log_dir, prune_logs
from imgcache.backends.jobs.states import JobError, JobRequest, JobState, JobStatus
from imgcache.backends.tools.run import CancelToken

__all__ = [
    "KEEP_LOGS",
    "PROGRESS_INTERVAL",
    "JobQueue",
    "StatusUpdates",
    "log_dir",
    "missing_default_requests",
    "prune_logs",
]

log = logging.getLogger("imgcache.jobs")

#: Progress updates closer together than this are folded into the next one.
PROGRESS_INTERVAL = 0.1

# Process-wide, so two queues in one process never hand out the same temp name.
_SEQUENCE = itertools.count(1)


def missing_default_requests(
    presences: Iterable[Presence], *, backend: str | None = None
) -> list[JobRequest]:
    """One fetch request per default image a cache lacks (or holds broken): the one key.

    `presences` is `Inventory.presence` (the resource pools' own defaults included);
    defaults that are file paths are skipped.
    """
    requests = []
    for p in presences:
        if p.state not in ("missing", "broken") or p.default.ref is None:
            continue
        requests.append(
            JobRequest(
                jobkinds.fetch_kind(p.cache_kind),
                p.default.value,
                CacheSpec(p.cache_kind, p.cache_root),
                backend=backend,
                replace=p.state == "broken",
                label=p.default.label,
            )
        )
    return requests


@dataclass
class _Job:
    status: JobStatus
    cancel: CancelToken = field(default_factory=CancelToken)
    done: threading.Event = field(default_factory=threading.Event)


class StatusUpdates:
    """Hands job snapshots to a listener, thinning out storms of progress.

    A snapshot marked as progress goes out only when the job's last one went out
    at least `PROGRESS_INTERVAL` ago; every other snapshot always goes out. A
    listener that raises is logged, never allowed to stop a job.
    """

    def __init__(self, listener: Callable[[JobStatus], None] | None) -> None:
        self.listener = listener
        self._last: dict[int, float] = {}

    def send(self, status: JobStatus, *, progress: bool = False) -> None:
        """Give `status` to the listener, unless it is progress that came too soon."""
        if self.listener is None:
            return
        now = time.monotonic()
        if progress and now - self._last.get(status.id, 0.0) < PROGRESS_INTERVAL:
            return
        self._last[status.id] = now
        try:
            self.listener(status)
        except Exception:
            log.exception("job update callback failed")


class JobQueue:
    """Runs job requests on a few worker threads; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_update: Callable[[JobStatus], None] | None = None,
        concurrency: int | None = None,
        logs: str | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self._updates = StatusUpdates(on_update)
        self.concurrency = max(1, concurrency or settings.job_concurrency)
        self._folder = LogFolder(logs)
        self.logs = self._folder.directory
        self.lock_timeout = locks.lock_timeout() if lock_timeout is None else lock_timeout
        self._jobs: dict[int, _Job] = {}
        self._pending: deque[int] = deque()
        self._cond = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._closed = False

    @property
    def on_update(self) -> Callable[[JobStatus], None] | None:
        """The listener every snapshot goes to (see the module docstring), or None."""
        return self._updates.listener

    @on_update.setter
    def on_update(self, listener: Callable[[JobStatus], None] | None) -> None:
        self._updates.listener = listener

    @property
    def log_problem(self) -> str:
        """Why job logs could not be (fully) written, or "": jobs run on without them."""
        return self._folder.problem

    # --- what the app and the command line call ----------------------------------

    def submit(self, request: JobRequest) -> JobStatus:
        """Queue a job; returns its first snapshot (state queued).

        Raises ValueError for a job kind that does not exist; everything else
        about the request is checked when the job runs and reported as its failure.
        """
        try:
            jobkinds.get(request.kind)
        except JobError as exc:
            raise ValueError(str(exc)) from None
        seq = next(_SEQUENCE)
        token = publish.make_token(seq)
        path = self._folder.path_for(token, request.kind)
        status = JobStatus(
            id=seq,
            token=token,
            request=request,
            state=JobState.QUEUED,
            phase="queued",
            fraction=None,
            log_path=path,
            created=time.time(),
        )
        job = _Job(status)
        with self._cond:
            if self._closed:
                raise RuntimeError("the job queue has been shut down")
            self._jobs[seq] = job
            self._pending.append(seq)
            if len(self._workers) < self.concurrency:
                worker = threading.Thread(
                    target=self._work, name=f"imgcache-job-{len(self._workers) + 1}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
            self._cond.notify()
        self._updates.send(job.status)
        return status

    def submit_many(self, requests: Iterable[JobRequest]) -> list[JobStatus]:
        """Queue several jobs in order."""
        return [self.submit(request) for request in requests]

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it had already finished."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.status.state.finished:
                return False
            queued = job.status.state is JobState.QUEUED
            if queued:
                with contextlib.suppress(ValueError):
                    self._pending.remove(job_id)
                self._finish_locked(job, JobState.CANCELLED, "cancelled before it started")
        if queued:
            self._updates.send(job.status)
            job.done.set()
        else:
            job.cancel.cancel()
        return True

    def cancel_all(self) -> None:
        """Cancel every job that has not finished."""
        for job_id in list(self._jobs):
            self.cancel(job_id)

    def get(self, job_id: int) -> JobStatus:
        """The latest snapshot of one job (KeyError for an unknown id)."""
        with self._cond:
            return self._jobs[job_id].status

    def jobs(self) -> list[JobStatus]:
        """Snapshots of every job this queue has seen, oldest first."""
        with self._cond:
            return [job.status for job in self._jobs.values()]

    def wait(self, ids: Sequence[int] | None = None, timeout: float | None = None) -> bool:
        """Block until the jobs (all by default) finish; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            jobs = [self._jobs[i] for i in ids] if ids is not None else list(self._jobs.values())
        for job in jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.done.wait(left):
                return False
        return True

    def log_text(self, job_id: int) -> str:
        """The job's log as written so far ("" before it starts)."""
        try:
            with open(self.get(job_id).log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cleanup_stale(self) -> list[str]:
        """Remove leftovers of dead jobs (temps in every cache, scratch dirs); returns them."""
        removed = []
        for spec in self.settings.caches:
            removed += leftovers.cleanup_stale(spec.path)
        removed += leftovers.cleanup_workdirs(publish.work_base())
        return removed

    def shutdown(self, *, cancel: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking jobs; with `cancel`, cancel the running ones; wait for the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if cancel:
            self.cancel_all()
        for worker in self._workers:
            worker.join(timeout)

    # --- the workers -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                job = self._jobs[self._pending.popleft()]
                job.status = replace(
                    job.status, state=JobState.RUNNING, phase="starting", started=time.time()
                )
            self._updates.send(job.status)
            self._run(job)

    def _run(self, job: _Job) -> None:
        def report(**changes: object) -> None:
            with self._cond:
                job.status = replace(job.status, **changes)  # type: ignore[arg-type]
            # Progress (a fraction) may come in storms and is thinned out; a phase
            # alone ("waiting for pid N on host H") is news and always goes out.
            self._updates.send(job.status, progress="fraction" in changes)

        try:
            state, message = execute(
                job.status,
                self.settings,
                job.cancel,
                report,
                self.lock_timeout,
                jobkinds.get,
                self._folder.note_problem,
            )
        except BaseException as exc:  # a worker must never die silently
            log.exception("job %s crashed", job.status.id)
            state, message = JobState.FAILED, f"internal error: {exc!r}"
        with self._cond:
            self._finish_locked(job, state, message)
        # The listener hears the end before any waiter wakes up.
        self._updates.send(job.status)
        job.done.set()

    def _finish_locked(self, job: _Job, state: JobState, message: str) -> None:
        """Record the end of a job; the caller holds the lock, then emits and sets done."""
        fraction = 1.0 if state is JobState.DONE else job.status.fraction
        job.status = replace(
            job.status,
            state=state,
            message=message,
            phase=message,
            fraction=fraction,
            finished=time.time(),
        )
