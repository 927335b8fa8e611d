"""save: a registry image into an oci-archive in a podman cache, usable as `oci-archive:/path`.

The runtime backend is `podman pull` then `podman save --format=oci-archive`,
then `podman rmi` of the image when the local store did not have it before;
the builtin one lets skopeo write the archive directly. Both tools get `TMPDIR`
in the job's scratch directory, where they stage layers (skopeo stages the
whole image there before writing an archive). Either way the archive's
`org.opencontainers.image.ref.name` is the fully qualified reference, which is
what the scanner lists it under. skopeo gets the temp path relative to the
cache directory, because its `oci-archive:PATH:REF` syntax cannot hold a path
with a colon.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import pipeline
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import auth_file
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.tools import podman, skopeo
from imgcache.backends.tools.run import run

# Images this process pulled into podman's store, with the number of its jobs
# using each: the last one to finish removes it, so two jobs saving the same
# image into two caches never pull the store from under each other.
_pulled: Counter[str] = Counter()
_pulled_guard = threading.Lock()

BUILTIN = Backend("builtin", "builtin (skopeo)", ("skopeo",))
RUNTIME = Backend("runtime", "podman", ("podman",))


class Save(JobKind):
    """Registry image -> oci-archive."""

    name = "save"
    cache_kinds = (CacheKind.PODMAN,)
    formats = (Format.OCI_ARCHIVE,)

    def backends(self) -> list[Backend]:
        """podman when installed, then skopeo alone."""
        return [RUNTIME, BUILTIN]

    def run(self, ctx: JobContext, backend: Backend) -> None:
        """Write the archive to `ctx.temp`."""
        assert ctx.ref is not None
        registry = ctx.ref.normalized().registry or "docker.io"
        with auth_file(ctx.request.credentials, [registry]) as authfile:
            if backend.name == "runtime":
                run_runtime(ctx, authfile)
            else:
                run_builtin(ctx, authfile)


def runtime_argvs(ref: str, temp: str, authfile: str | None) -> list[list[str]]:
    """The exact commands of the runtime backend: pull, then save."""
    return [podman.pull_argv(ref, authfile), podman.save_argv(ref, temp)]


def run_runtime(ctx: JobContext, authfile: str | None) -> None:
    """`podman pull REF`, `podman save --format=oci-archive -o TEMP REF`, then tidy the store."""
    ref = pipeline.source_ref(ctx)
    pull, save = runtime_argvs(ref, ctx.temp, authfile)
    counter = skopeo.BlobCounter(
        None, lambda done, _total: ctx.progress(None, f"fetching layer {done}")
    )
    env = ctx.tool_env()
    ours = _claim(ctx, ref)
    try:
        ctx.progress(None, "podman pull")
        ctx.run(pull, on_line=counter, writes_to=podman.storage_dir(), env=env)
        ctx.progress(0.7, "podman save")
        ctx.run(save, writes_to=ctx.temp, env=env)
    finally:
        if ours:
            _release(ctx, ref, env)


def _claim(ctx: JobContext, ref: str) -> bool:
    """Whether this job's pull of `ref` is one this process must remove from podman's store."""
    with _pulled_guard:
        if ref not in _pulled:
            there = ctx.run(podman.exists_argv(ref), check=False, capture=True).returncode == 0
            if there:
                ctx.note(f"{ref} was in podman's store before; it stays there")
                return False
        _pulled[ref] += 1
        return True


def _release(ctx: JobContext, ref: str, env: dict[str, str]) -> None:
    """Drop this job's use of `ref`; the last user removes it, even after a cancel."""
    with _pulled_guard:
        _pulled[ref] -= 1
        if _pulled[ref] > 0:
            return
        del _pulled[ref]
        # Not through the job's cancel token: a cancelled job must still tidy up.
        run(podman.rmi_argv(ref), env=env, logfile=ctx.log, check=False, capture=True)


def run_builtin(ctx: JobContext, authfile: str | None) -> None:
    """`skopeo copy docker://REF oci-archive:TEMP:REF`."""
    ref = pipeline.source_ref(ctx)
    pipeline.copy(
        ctx,
        f"oci-archive:{os.path.basename(ctx.temp)}:{ref}",
        authfile,
        0.0,
        0.95,
        writes_to=ctx.temp,
        cwd=os.path.dirname(ctx.temp),
    )
