"""import: a registry image into a `.sqsh` in an enroot cache, named as `enroot import` names it.

Like `manage-enroot-cache --nocreate`, only the shared file is made; with
`create` the image is also `enroot create`d for the current user when enroot is
installed. The runtime backend is `enroot import`; the builtin one fetches with
skopeo, unpacks with umoci, gives the owner access as enroot does, writes
enroot's `/etc/environment`, `/etc/rc`, `/etc/rc.local` and `/etc/fstab` from the
image config (`runtime.enroot_files`), and squashes straight into the temp file
with `-all-root` and without `/dev` contents, as enroot does. A reference by
digest (sha256, as enroot takes) works with the builtin backend and with
enroot >= 4.0.
"""

from __future__ import annotations

import os

from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import pipeline, rootfs
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import enroot_config
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.jobs.runtime import enroot_files
from imgcache.backends.jobs.states import JobError
from imgcache.backends.tools import enroot

BUILTIN = Backend(
    "builtin", "builtin (skopeo, umoci, mksquashfs)", ("skopeo", "umoci", "mksquashfs")
)
# enroot refuses to write over an existing file, so the temp is not reserved.
RUNTIME = Backend("runtime", "enroot", ("enroot",), reserve=False)


class Import(JobKind):
    """Registry image -> enroot squashfs."""

    name = "import"
    cache_kinds = (CacheKind.ENROOT,)
    formats = (Format.SQUASHFS,)

    def backends(self) -> list[Backend]:
        """enroot when installed, then the builtin pipeline."""
        return [RUNTIME, BUILTIN]

    def validate(self, ctx: JobContext) -> None:
        """A digest enroot cannot take (not sha256) is refused before anything runs."""
        assert ctx.ref is not None
        enroot.uri(ctx.ref)

    def run(self, ctx: JobContext, backend: Backend) -> None:
        """Write the squashfs to `ctx.temp`."""
        if backend.name == "runtime":
            run_runtime(ctx)
        else:
            run_builtin(ctx)

    def after_publish(self, ctx: JobContext, backend: Backend) -> str:
        """`enroot create` the published image for the current user, when asked."""
        if not ctx.request.create:
            return ""
        if enroot.find() is None:
            return "not created for you: enroot is not installed here"
        name = enroot.container_name(os.path.basename(ctx.target))
        ctx.run(enroot.create_argv(name, ctx.target))
        return f"created as enroot container {name}"


def runtime_argv(ctx: JobContext) -> list[str]:
    """The exact `enroot import` command of the runtime backend."""
    assert ctx.ref is not None
    user = ctx.request.credentials.username if ctx.request.credentials else None
    return enroot.import_argv(ctx.temp, enroot.uri(ctx.ref, user))


def run_runtime(ctx: JobContext) -> None:
    """`enroot import --output TEMP docker://...` with imgcache's squash options."""
    assert ctx.ref is not None
    registry = ctx.ref.normalized().registry or "docker.io"
    ctx.progress(None, "enroot import")
    if ctx.ref.digest is not None:
        version = ctx.run(enroot.version_argv(), capture=True).stdout.decode(errors="replace")
        if not enroot.takes_digests(version):
            raise JobError(
                f"enroot {version.strip() or '(unknown version)'} cannot import by digest "
                "(enroot >= 4.0 can); use a tag or --backend builtin"
            )
    with enroot_config(ctx.request.credentials, [registry]) as config_path:
        try:
            env = enroot.import_env(ctx.settings.squash_options, config_path)
        except ValueError as exc:
            raise JobError(str(exc)) from None
        ctx.run(runtime_argv(ctx), env=env, writes_to=ctx.temp)


def run_builtin(ctx: JobContext) -> None:
    """skopeo -> umoci -> enroot's config files -> mksquashfs into the temp file."""
    fetched = pipeline.fetch(ctx, 0.0, 0.45)
    root = pipeline.unpack(ctx, fetched, 0.5)
    rootfs.fix_permissions(root)
    enroot_files.write_enroot(root, fetched.settings, note=ctx.note)
    pipeline.squash(ctx, root, ctx.temp, 0.55, 0.97, all_root=True, exclude_dev=True)
