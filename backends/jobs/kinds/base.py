"""What every job does around its own work: check, lock, write a temp, verify, publish.

A job kind (`JobKind`) only turns a request into a file at `ctx.temp` (its
`JobContext`, in `imgcache.backends.jobs.context`). `execute` does the rest in
the same order for every kind, so safety does not depend on each kind getting it
right:

1. parse the reference and build the target path (`naming.path_in_root`): a bad
   ref or a path outside the cache root fails here, before any tool runs;
2. pick the backend (runtime or builtin) and say which;
3. skip when a good image is already there (unless `replace`);
4. take the per-reference lock (`imgcache.backends.jobs.locks`), look again;
5. let the kind write the temp file, probe it (a result that is not a valid image
   of the right kind is never published), then `Publication.commit`;
6. whatever happens, remove the temp, the scratch directory and the lock.

`execute` is handed the lookup of a kind by name (the queue passes
`imgcache.backends.jobs.kinds.get`), so this module never imports the registry.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from imgcache.backends.config import Settings
from imgcache.backends.inventory import caches, naming, probe, refs
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import errors, leftovers, publish
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import CredentialsError
from imgcache.backends.jobs.locks import LockBusy, RefLock
from imgcache.backends.jobs.logs import open_job_log
from imgcache.backends.jobs.states import JobError, JobState, JobStatus
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.tools import skopeo
from imgcache.backends.tools.run import Cancelled, CancelToken, ToolError


@dataclass(frozen=True, slots=True)
class Backend:
    """One way of doing a job: the runtime's own command, or the builtin pipeline."""

    name: str
    """"runtime" or "builtin" (as `jobs.backend` and `--backend` name them)."""
    label: str
    """What the job shows: "apptainer", "builtin (skopeo, umoci, mksquashfs, siftool)"."""
    tools: tuple[str, ...]
    reserve: bool = True
    """Whether the temp file may exist before the tool writes it (enroot refuses)."""

    def missing(self) -> list[str]:
        """The programs this backend needs that are not on PATH."""
        return [tool for tool in self.tools if shutil.which(tool) is None]


class Kind(ABC):
    """Anything the queue can run: a name and `perform`."""

    name: ClassVar[str]

    @abstractmethod
    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Do the whole job and return its one-line result; raise to fail it."""


class JobKind(Kind):
    """A job that writes one new image into a cache; one module each in `jobs.kinds`."""

    cache_kinds: ClassVar[tuple[CacheKind, ...]]
    formats: ClassVar[tuple[Format, ...]]
    """What the result must probe as."""

    @abstractmethod
    def backends(self) -> list[Backend]:
        """The ways to do this job, the runtime first."""

    def validate(self, ctx: JobContext) -> None:
        """Refuse a request before any tool runs (the default accepts everything)."""

    def file_mode(self, ctx: JobContext) -> int:
        """The mode the result is published with (`permissions.file_mode` unless a kind adds)."""
        return ctx.settings.file_mode

    def result_formats(self, ctx: JobContext) -> tuple[Format, ...]:
        """What the result must probe as (`formats` unless a kind decides per cache)."""
        return self.formats

    @abstractmethod
    def run(self, ctx: JobContext, backend: Backend) -> None:
        """Write the image to `ctx.temp`."""

    def after_publish(self, ctx: JobContext, backend: Backend) -> str:
        """Work after the file is in place (enroot create); returns a note for the result."""
        return ""

    def perform(self, ctx: JobContext, lock_timeout: float) -> str:
        """Do the whole job and return its one-line result: check, lock, write, publish."""
        return _work(self, ctx, lock_timeout)


def choose_backend(kind: JobKind, wanted: str) -> Backend:
    """The backend to use: forced by `wanted` (runtime/builtin) or the first available."""
    options = kind.backends()
    if wanted in ("runtime", "builtin"):
        chosen = [b for b in options if b.name == wanted]
        if not chosen:
            raise JobError(f"{kind.name} has no {wanted} backend")
        missing = chosen[0].missing()
        if missing:
            raise JobError(f"the {wanted} backend of {kind.name} needs {', '.join(missing)}")
        return chosen[0]
    for backend in options:
        if not backend.missing():
            return backend
    needs = "; or ".join(f"{b.label} needs {', '.join(b.missing())}" for b in options)
    raise JobError(f"no way to {kind.name} here: {needs}")


def existing_state(path: str, formats: Sequence[Format]) -> str | None:
    """None (nothing there), "ok" (a good image), "broken" (an image that fails its probe)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if os.path.islink(path):
        return "ok"  # an admin's alias; it is theirs to change
    if not os.path.isfile(path):
        raise JobError(f"{path} exists and is not a file")
    result = probe.probe_path(path, st.st_size)
    if result.format in formats and not result.corrupt and result.not_image is None:
        return "ok"
    if result.corrupt or result.format is not Format.UNKNOWN:
        return "broken"
    raise JobError(f"{path} exists and is not an image; remove it or pull with --force")


def verify(path: str, formats: Sequence[Format]) -> None:
    """Refuse to publish a result that does not probe as a valid image of `formats`."""
    result = probe.probe_path(path)
    wanted = " or ".join(f.value for f in formats)
    if result.format not in formats:
        raise JobError(f"the result is not a {wanted} image ({result.note or result.format})")
    if result.corrupt:
        raise JobError(f"the result is a broken {result.format.value}: {result.error}")
    if result.not_image is not None:
        raise JobError(f"the result is no image a runtime can start: {result.note}")
    if result.format is Format.SIF and (result.sif is None or result.sif.primary is None):
        raise JobError("the result is a SIF without a primary system partition")


def describe_failure(exc: BaseException, ctx: JobContext) -> str:
    """One line for the admin saying why a job failed."""
    if isinstance(exc, JobError | refs.RefError | LockBusy | CredentialsError | MaintenanceError):
        return str(exc)
    where = ctx.writing_to or ctx.target or publish.work_base()
    if isinstance(exc, ToolError):
        if ctx.saw_no_space or "no space left on device" in exc.tail.lower():
            return publish.no_space_message(where, ctx.need)
        tool = os.path.basename(exc.argv[0])
        if tool in ("skopeo", "podman") and exc.returncode is not None:
            return f"{tool}: {errors.registry_failure(skopeo.one_line(exc.tail))}"
        return str(exc)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return publish.no_space_message(where, ctx.need)
        name = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{name}"
    return f"internal error: {type(exc).__name__}: {exc}"


def _header(ctx: JobContext, kind: Kind) -> None:
    request = ctx.request
    what = f"{request.ref} into {request.cache.label}" if request.ref else request.label
    ctx.log.write(
        f"# imgcache {kind.name} {what}\n"
        f"# job {ctx.token} on {socket.gethostname()} pid {os.getpid()}, "
        f"started {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
    )
    if request.source:
        ctx.log.write(f"# source file {request.source}\n")
    if request.credentials is not None:
        ctx.log.write(f"# registry user {request.credentials.username} (password not logged)\n")
    ctx.log.flush()


def _waiting(ctx: JobContext, text: str) -> None:
    """Say whom a job waits for, in its progress (the bar) and its log."""
    ctx.report(phase=text)
    ctx.note(text)


def _work(kind: JobKind, ctx: JobContext, lock_timeout: float) -> str:
    request = ctx.request
    spec = request.cache
    if spec.kind not in kind.cache_kinds:
        kinds = ", ".join(k.value for k in kind.cache_kinds)
        raise JobError(f"{kind.name} fills {kinds} caches; {spec.label} is not one")
    ref = refs.parse(request.ref)
    ctx.ref = ref
    rel = caches.target_relpath(spec.kind, ref)
    ctx.target = naming.path_in_root(spec.path, rel)
    ctx.report(target=ctx.target)
    kind.validate(ctx)
    backend = choose_backend(kind, request.backend or ctx.settings.job_backend)
    ctx.report(backend=backend.label)
    ctx.note(f"backend: {backend.label}; target {ctx.target}")
    formats = kind.result_formats(ctx)
    # Whatever killed jobs left in this directory goes first (any cache, --to ones too).
    for path in leftovers.clean_directory(spec.path, os.path.dirname(ctx.target)):
        ctx.note(f"removed a leftover of an interrupted job: {path}")
    state = existing_state(ctx.target, formats)
    if state == "ok" and not request.replace:
        return "already present"
    ctx.progress(None, "waiting for the lock")
    lock = RefLock(spec.path, rel, what=str(ref), dir_mode=ctx.settings.dir_mode)
    lock.acquire(lock_timeout, ctx.cancel, on_wait=lambda text: _waiting(ctx, text))
    try:
        if lock.warning:
            ctx.note(lock.warning)
        if not request.replace and existing_state(ctx.target, formats) == "ok":
            return "already present (another pull finished it meanwhile)"
        pub = publish.Publication(
            spec.path,
            ctx.target,
            ctx.token,
            file_mode=kind.file_mode(ctx),
            dir_mode=ctx.settings.dir_mode,
        )
        ctx.temp = pub.temp
        ctx.publication = pub
        ctx.writing_to = pub.temp
        try:
            pub.prepare(reserve=backend.reserve)
            ctx.progress(0.0, "starting")
            kind.run(ctx, backend)
            ctx.release_workdir()
            ctx.cancel.raise_if_cancelled()
            ctx.progress(0.98, "checking the result")
            verify(pub.temp, formats)
            ctx.progress(0.99, "publishing")
            outcome = pub.commit(replace=request.replace or state == "broken")
        finally:
            if not pub.committed:
                pub.discard()
            pub.close()
    finally:
        lock.release()
    if outcome == "exists":
        return "already present (another pull published it first)"
    ctx.note(f"{outcome} {ctx.target}")
    extra = kind.after_publish(ctx, backend)
    message = "done (replaced the old file)" if outcome == "replaced" else "done"
    return f"{message}; {extra}" if extra else message


def execute(
    status: JobStatus,
    settings: Settings,
    cancel: CancelToken,
    report: Callable[..., None],
    lock_timeout: float,
    find_kind: Callable[[str], Kind],
    on_log_problem: Callable[[str], None] | None = None,
) -> tuple[JobState, str]:
    """Run one job to its end; returns the final state and message. Never raises.

    `find_kind` turns the request's kind name into the `Kind` that does the work
    (`imgcache.backends.jobs.kinds.get`); an unknown name fails the job. A log
    that cannot be written does not fail the job: `on_log_problem` hears why,
    and a job that got no log at all reports an empty `log_path`.
    """
    logfile = open_job_log(status.log_path)
    if logfile.problem:
        report(log_path="")
    ctx = JobContext(status, settings, cancel, report, logfile)
    try:
        kind = find_kind(status.request.kind)
        _header(ctx, kind)
        message = kind.perform(ctx, lock_timeout)
        state = JobState.DONE
    except Cancelled:
        state, message = JobState.CANCELLED, "cancelled"
    except Exception as exc:
        state, message = JobState.FAILED, describe_failure(exc, ctx)
        if message.startswith("internal error"):
            logfile.write(traceback.format_exc())
    finally:
        with contextlib.suppress(OSError):
            ctx.close()
    logfile.write(f"# {state.value}: {message}\n")
    logfile.close()
    if logfile.problem and on_log_problem is not None:
        on_log_problem(logfile.problem)
    return state, message
