"""add: a local SIF, `.sqsh` or archive into a cache under a given reference.

What `manage-singularity-cache -i FILE REF` does, with the name, placement and
permissions made right: the file is probed first and refused unless it is a
valid image of a kind the cache holds (SIF or squashfs for singularity,
squashfs for enroot, an OCI or docker archive for podman). It is copied into a
temp file next to the target (`copy_file_range`, so a server-side copy where the
filesystem offers one) and published like a pull.

A podman archive is listed by the reference inside it, so an archive that does
not name REF (or a docker-archive) is rewritten by skopeo into an oci-archive
that does.
"""

from __future__ import annotations

import contextlib
import errno
import os

from imgcache.backends.inventory import probe, refs
from imgcache.backends.inventory.caches import NATIVE_FORMATS
from imgcache.backends.inventory.model import CacheKind, Format, ProbeResult
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.jobs.states import JobError
from imgcache.backends.tools import skopeo

COPY = Backend("builtin", "copy", ())
_CHUNK = 64 * 1024 * 1024
_ALLOWED = {
    CacheKind.SINGULARITY: (Format.SIF, Format.SQUASHFS),
    CacheKind.ENROOT: (Format.SQUASHFS,),
    CacheKind.PODMAN: (Format.OCI_ARCHIVE,),
}


class Add(JobKind):
    """Local image file -> cache."""

    name = "add"
    cache_kinds = tuple(NATIVE_FORMATS)
    formats = (Format.SIF, Format.SQUASHFS, Format.OCI_ARCHIVE)

    def backends(self) -> list[Backend]:
        """Only a copy (and skopeo for archives that need a new name)."""
        return [COPY]

    def result_formats(self, ctx: JobContext) -> tuple[Format, ...]:
        """What the cache's kind holds."""
        return _ALLOWED[ctx.request.cache.kind]

    def validate(self, ctx: JobContext) -> None:
        """Refuse a source that is missing or not a valid image for this cache."""
        source = ctx.request.source
        if not source:
            raise JobError("add needs a file to add")
        if not os.path.isfile(source):
            raise JobError(f"{source}: no such file")
        result = probe.probe_path(source)
        kind = ctx.request.cache.kind
        accepted = NATIVE_FORMATS[kind]
        if result.format not in accepted:
            names = " or ".join(f.value for f in accepted)
            what = result.note or result.format.value
            raise JobError(
                f"{source} is not a {names} image ({what}); {kind.value} caches hold those"
            )
        if result.corrupt:
            raise JobError(f"{source} is a broken {result.format.value}: {result.error}")
        if result.not_image is not None:
            raise JobError(f"{source} is no image a runtime can start: {result.note}")
        if result.format is Format.SIF and (result.sif is None or result.sif.primary is None):
            raise JobError(f"{source} is a SIF without a primary system partition")
        ctx.need = os.path.getsize(source)

    def run(self, ctx: JobContext, backend: Backend) -> None:
        """Copy (or for archives maybe rewrite) the source into `ctx.temp`."""
        source = ctx.request.source
        assert source is not None and ctx.ref is not None
        result = probe.probe_path(source)
        if ctx.request.cache.kind is CacheKind.PODMAN and not names_ref(result, ctx.ref):
            relabel(ctx, source, result)
        else:
            copy_file(ctx, source, ctx.temp)


def names_ref(result: ProbeResult, ref: refs.Reference) -> bool:
    """Whether an OCI archive already carries `ref` (normalised) as its only image."""
    if result.format is not Format.OCI_ARCHIVE or result.archive is None:
        return False
    if result.archive.manifests != 1:
        return False
    wanted = str(ref.normalized())
    for text in result.archive.refs:
        with contextlib.suppress(refs.RefError):
            if str(refs.parse(text).normalized()) == wanted:
                return True
    return False


def relabel(ctx: JobContext, source: str, result: ProbeResult) -> None:
    """Rewrite an archive with skopeo so that it names the job's reference."""
    transport = "docker-archive" if result.format is Format.DOCKER_ARCHIVE else "oci-archive"
    ref = str(ctx.ref.normalized()) if ctx.ref else ""
    ctx.progress(None, "writing the archive under its new name")
    src = f"{transport}:{os.path.abspath(source)}"
    if result.archive is not None and result.archive.manifests > 1 and result.archive.refs:
        raise JobError(f"{source} holds several images; export the one for {ref} alone")
    dest = f"oci-archive:{os.path.basename(ctx.temp)}:{ref}"
    # skopeo stages the whole image first: keep that in the job's scratch directory.
    staging = ctx.tool_tmpdir()
    ctx.run(
        skopeo.copy_argv(src, dest, tmpdir=staging),
        cwd=os.path.dirname(ctx.temp),
        writes_to=ctx.temp,
        env={"TMPDIR": staging},
    )


def copy_file(ctx: JobContext, source: str, dest: str) -> None:
    """Copy `source` over the (reserved, empty) `dest`, with progress and cancel."""
    size = os.path.getsize(source)
    done = 0
    ctx.writing_to = dest
    # The temp is opened through the directory the job checked, never through a link.
    ours = ctx.publication is not None and dest == ctx.temp
    target: int | str = ctx.open_temp(os.O_WRONLY | os.O_TRUNC) if ours else dest
    with open(source, "rb") as src, open(target, "wb") as dst:
        fast = hasattr(os, "copy_file_range")
        while True:
            ctx.cancel.raise_if_cancelled()
            if fast:
                try:
                    n = os.copy_file_range(src.fileno(), dst.fileno(), _CHUNK)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    fast = False
                    continue
            else:
                chunk = src.read(8 * 1024 * 1024)
                n = len(chunk)
                dst.write(chunk)
            if n == 0:
                break
            done += n
            if size:
                ctx.progress(min(done / size, 1.0) * 0.95, f"copying {int(100 * done / size)}%")
