"""What a job is, as the queue and the job kinds both see it: request, state, status, error.

`JobRequest` says what to do, `JobStatus` is a snapshot of one job as it runs
(its `JobState` among them), and `JobError` is a failure already phrased for the
admin. The queue (`imgcache.backends.jobs.queue`) and the kinds
(`imgcache.backends.jobs.kinds`) import these; nothing here imports either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from imgcache.backends.config import CacheSpec
from imgcache.backends.jobs.credentials import Credentials

__all__ = ["JobError", "JobRequest", "JobState", "JobStatus"]


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for done, failed and cancelled."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What to do: a job kind, its reference, the cache it fills, and options."""

    kind: str
    """A name from `imgcache.backends.jobs.kinds.KINDS`: pull, import, save, add."""
    ref: str
    """The image reference as the admin wrote it (validated when the job starts)."""
    cache: CacheSpec
    source: str | None = None
    """For add: the local file to put into the cache."""
    backend: str | None = None
    """auto, runtime or builtin; None means the config's `jobs.backend`."""
    credentials: Credentials | None = None
    replace: bool = False
    """Fetch again and replace the file even when a good one is there."""
    create: bool = False
    """For import: also `enroot create` the image for the current user."""
    label: str = ""
    """A short note shown with the job, e.g. "cuda default"; for actions, what they act on."""
    payload: Any = None
    """What an action job (compress, delete, gc, fix-perms) works on: see
    `imgcache.backends.jobs.kinds.actions` for each kind's payload."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A snapshot of one job, safe to hand to another thread."""

    id: int
    token: str
    """`<host>-<pid>-<seq>`: the job's mark on its temp files."""
    request: JobRequest
    state: JobState
    phase: str
    """What it is doing now, e.g. "fetching 3/12 layers", "squashing 45%"."""
    fraction: float | None
    """Progress from 0 to 1, or None when the tool does not say."""
    backend: str = ""
    """Which backend runs it, e.g. "builtin (skopeo, umoci, mksquashfs, siftool)"."""
    target: str = ""
    """The final path in the cache, once known."""
    message: str = ""
    """The result: "done", "already present", or why it failed, in one line."""
    log_path: str = ""
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def title(self) -> str:
        """ "pull docker.io/x:y -> /cache/path" (or "compress /cache/path") for lists."""
        if not self.request.ref:
            return f"{self.request.kind} {self.request.label or self.request.cache.path}"
        where = self.target or self.request.cache.path
        return f"{self.request.kind} {self.request.ref} -> {where}"


class JobError(RuntimeError):
    """A job failed for a reason already phrased for the admin."""
