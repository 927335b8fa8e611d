"""save: a registry image into an oci-archive in a podman cache, usable as `oci-archive:/path`.

The runtime backend is `podman pull` then `podman save --format=oci-archive`;
the builtin one lets skopeo write the archive directly. Either way the archive's
`org.opencontainers.image.ref.name` is the fully qualified reference, which is
what the scanner lists it under. skopeo gets the temp path relative to the
cache directory, because its `oci-archive:PATH:REF` syntax cannot hold a path
with a colon.
"""

from __future__ import annotations

import os

from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import pipeline
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import auth_file
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.tools import podman, skopeo

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
    """`podman pull REF` then `podman save --format=oci-archive -o TEMP REF`."""
    ref = pipeline.source_ref(ctx)
    pull, save = runtime_argvs(ref, ctx.temp, authfile)
    counter = skopeo.BlobCounter(
        None, lambda done, _total: ctx.progress(None, f"fetching layer {done}")
    )
    ctx.progress(None, "podman pull")
    ctx.run(pull, on_line=counter, writes_to=podman.storage_dir())
    ctx.progress(0.7, "podman save")
    ctx.run(save, writes_to=ctx.temp)


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
