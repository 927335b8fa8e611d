"""pull: a registry image into a SIF in a singularity cache, at ROOT/<ref as written>.

The runtime backend is `apptainer pull` (or `singularity pull`), its cache kept
out of the admin's home (`tools.apptainer`). The builtin one fetches with skopeo,
unpacks with umoci, writes `/.singularity.d` from the image config
(`runtime.singularity_files`), squashes with the configured mksquashfs options
and wraps the result with siftool the way `apptainer pull` does: the launch
line in the header, then def file, `inspect-metadata.json`, `oci-config.json`
and the primary system partition, all in group 1.

Either way the SIF is published with execute bits where `permissions.file_mode`
has read bits (0644 -> 0755), as `apptainer pull` leaves it under umask 022,
so the launch line makes `./image.sif` run.
"""

from __future__ import annotations

import os

from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import pipeline
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import apptainer_env
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.jobs.runtime import singularity_files
from imgcache.backends.jobs.runtime.singularity_files import SifMetadata
from imgcache.backends.tools import apptainer, siftool, skopeo, umoci
from imgcache.backends.tools.run import Runner

BUILTIN = Backend(
    "builtin",
    "builtin (skopeo, umoci, mksquashfs, siftool)",
    ("skopeo", "umoci", "mksquashfs", "siftool"),
)


class Pull(JobKind):
    """Registry image -> SIF."""

    name = "pull"
    cache_kinds = (CacheKind.SINGULARITY,)
    formats = (Format.SIF,)

    def backends(self) -> list[Backend]:
        """apptainer (else singularity) when installed, then the builtin pipeline."""
        binary = apptainer.find()
        name = os.path.basename(binary) if binary else "apptainer"
        return [Backend("runtime", name, (binary or "apptainer",)), BUILTIN]

    def file_mode(self, ctx: JobContext) -> int:
        """`permissions.file_mode` plus an execute bit for each read bit."""
        mode = ctx.settings.file_mode
        return mode | (mode & 0o444) >> 2

    def run(self, ctx: JobContext, backend: Backend) -> None:
        """Write the SIF to `ctx.temp`."""
        if backend.name == "runtime":
            run_runtime(ctx, backend.tools[0])
        else:
            run_builtin(ctx)


def runtime_argv(binary: str, temp: str, ref: str) -> list[str]:
    """The exact command the runtime backend runs (see `tools.apptainer.pull_argv`)."""
    return apptainer.pull_argv(binary, temp, ref)


def runtime_env(ctx: JobContext, binary: str) -> dict[str, str]:
    """What the runtime backend adds to the environment: credentials, its temporary directory."""
    return {
        **apptainer_env(binary, ctx.request.credentials),
        **apptainer.pull_env(binary, ctx.workdir()),
    }


def run_runtime(ctx: JobContext, binary: str) -> None:
    """`apptainer pull [--disable-cache] TEMP docker://REF`, credentials in its environment."""
    ref = pipeline.source_ref(ctx)
    counter = skopeo.BlobCounter(
        None, lambda done, _total: ctx.progress(None, f"fetching layer {done}")
    )
    ctx.progress(None, f"{os.path.basename(binary)} pull")
    # The temp was reserved empty; apptainer wants to create it itself.
    os.unlink(ctx.temp)
    ctx.run(
        runtime_argv(binary, ctx.temp, ref),
        env=runtime_env(ctx, binary),
        on_line=counter,
        writes_to=ctx.temp,
    )


def run_builtin(ctx: JobContext) -> None:
    """skopeo -> umoci -> /.singularity.d -> mksquashfs -> siftool."""
    fetched = pipeline.fetch(ctx, 0.0, 0.4)
    root = pipeline.unpack(ctx, fetched, 0.45)
    ref = pipeline.source_ref(ctx)
    meta = singularity_files.write_singularity(
        root,
        fetched.settings,
        ref=ref,
        digest=fetched.manifest_digest,
        arch=fetched.arch,
        note=ctx.note,
    )
    work = ctx.workdir()
    # The SIF's metadata objects do not depend on the squashfs: siftool writes
    # them while mksquashfs runs, and the partition goes in after, last, as
    # `apptainer pull` orders them.
    started = ctx.beside(lambda runner: start_sif(runner, ctx.temp, work, meta), "the SIF metadata")
    squashfs = os.path.join(work, "rootfs.squashfs")
    try:
        # As root umoci kept the image's owners; otherwise everything is ours,
        # and apptainer then builds with -all-root too.
        pipeline.squash(ctx, root, squashfs, 0.5, 0.92, all_root=umoci.rootless())
    except BaseException:
        started.wait()
        raise
    started.result()
    ctx.progress(0.93, "writing the SIF")
    ctx.run(
        siftool.add_partition_argv(ctx.temp, squashfs, fetched.arch),
        capture=True,
        writes_to=ctx.temp,
    )


def start_sif(runner: Runner, sif: str, work: str, meta: SifMetadata) -> None:
    """`siftool new`, the launch line, then the def file and each JSON object, in group 1."""
    runner(siftool.new_argv(sif), capture=True, writes_to=sif)
    siftool.write_launch_script(sif)
    objects = [(siftool.DATATYPE_DEFFILE, "Singularity", None, meta.deffile)]
    for name in sorted(meta.json_objects):
        objects.append((siftool.DATATYPE_GENERIC_JSON, name, name, meta.json_objects[name]))
    for datatype, filename, name, data in objects:
        path = os.path.join(work, filename)
        with open(path, "wb") as f:
            f.write(data)
        runner(siftool.add_object_argv(sif, path, datatype, name), capture=True, writes_to=sif)
