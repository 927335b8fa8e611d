"""The builtin pipeline's shared steps: fetch with skopeo, unpack with umoci, squash.

Everything happens in the job's private scratch directory (`$IMGCACHE_TMPDIR`,
else `$TMPDIR`, else /var/tmp), never in the shared cache, except the final
squashfs of an enroot image, which mksquashfs writes straight into the temp file.
skopeo gets `--tmpdir` (and `TMPDIR`) inside that directory too, so what it
stages stays there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import auth_file
from imgcache.backends.maintenance.temps import proc_path
from imgcache.backends.tools import skopeo, squashfs, umoci
from imgcache.backends.tools.run import Runner, ToolError

#: The tag the image gets inside the scratch OCI layout.
LAYOUT_TAG = "image"


@dataclass(frozen=True, slots=True)
class Fetched:
    """An image fetched into an OCI layout, with its config read."""

    layout: str
    config: dict[str, Any]
    """The image config (architecture, config.Env, Cmd, Labels, ...)."""
    manifest_digest: str

    @property
    def arch(self) -> str:
        """The image's architecture (amd64, arm64, ...)."""
        return str(self.config.get("architecture") or skopeo.host_arch())

    @property
    def settings(self) -> dict[str, Any]:
        """The `config` part of the image config: Env, Cmd, Entrypoint, Labels, ..."""
        return self.config.get("config") or {}


def source_ref(ctx: JobContext) -> str:
    """The fully qualified reference skopeo fetches."""
    assert ctx.ref is not None
    return str(ctx.ref.normalized())


def _blob(layout: str, digest: str) -> bytes:
    algorithm, _, hexpart = digest.partition(":")
    with open(os.path.join(layout, "blobs", algorithm, hexpart), "rb") as f:
        return f.read()


def read_layout(layout: str, tag: str = LAYOUT_TAG) -> tuple[str, dict[str, Any]]:
    """The manifest digest and the image config of `tag` in an OCI layout."""
    with open(os.path.join(layout, "index.json"), "rb") as f:
        index = json.load(f)
    entries = index.get("manifests") or []
    chosen = next(
        (
            e
            for e in entries
            if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
        ),
        entries[0] if entries else None,
    )
    if chosen is None:
        raise ValueError(f"the OCI layout {layout} holds no image")
    manifest = json.loads(_blob(layout, chosen["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    return chosen["digest"], config


def copy(
    ctx: JobContext,
    dest: str,
    authfile: str | None,
    start: float,
    end: float,
    *,
    writes_to: str,
    cwd: str | None = None,
) -> skopeo.ManifestInfo | None:
    """`skopeo copy docker://REF DEST`, with `skopeo inspect` run beside it.

    Progress goes from `start` to `end` as layers arrive. The inspect tells the
    layer count (for that progress) and the size (for a "no space" message). It
    runs at the same time as the copy rather than before it, so the copy does
    not wait for the registry's answer; if it fails, the copy still decides the
    job. Returns what the inspect found, or None.
    """
    ref = source_ref(ctx)

    def on_layers(done: int, total: int | None) -> None:
        # A "Copying blob" line starts a layer; count the finished ones.
        if total is None:
            ctx.progress(start, f"fetching layer {done}")
        else:
            ctx.progress(
                start + (end - start) * (done - 1) / total, f"fetching {done}/{total} layers"
            )

    counter = skopeo.BlobCounter(None, on_layers)

    def ask(runner: Runner) -> skopeo.ManifestInfo:
        info = skopeo.inspect(ref, runner, authfile=authfile)
        counter.total = max(info.layers, 1)
        # A squashfs of compressed layers ends up about their size; add a margin.
        ctx.need = int(info.size * 1.2) or None
        return info

    asked = ctx.beside(ask, "skopeo inspect")
    try:
        # skopeo stages a whole image before it writes an archive: in the scratch.
        staging = ctx.tool_tmpdir()
        ctx.run(
            skopeo.copy_argv(f"docker://{ref}", dest, authfile=authfile, tmpdir=staging),
            on_line=counter,
            writes_to=writes_to,
            cwd=cwd,
            env={"TMPDIR": staging},
        )
    except BaseException:
        asked.wait()  # the copy's error is the one the admin needs
        raise
    try:
        info = asked.result()
    except (ToolError, ValueError) as exc:
        # A registry may refuse the manifest request but serve the copy; the
        # copy has the image, so the job goes on without the count.
        ctx.note(f"skopeo inspect failed, the copy went on: {exc}")
        return None
    ctx.note(f"{info.layers} layers, {info.size} bytes compressed")
    return info


def fetch(ctx: JobContext, start: float, end: float) -> Fetched:
    """Copy the job's image from its registry into an OCI layout in the scratch dir."""
    assert ctx.ref is not None
    registry = ctx.ref.normalized().registry or "docker.io"
    layout = os.path.join(ctx.workdir(), "layout")
    with auth_file(ctx.request.credentials, [registry]) as authfile:
        ctx.progress(start, "asking the registry")
        info = copy(ctx, f"oci:{layout}:{LAYOUT_TAG}", authfile, start, end, writes_to=layout)
    digest, config = read_layout(layout)
    ctx.progress(end, f"fetched {info.layers} layers" if info else "fetched the layers")
    return Fetched(layout, config, digest)


def unpack(ctx: JobContext, fetched: Fetched, progress: float) -> str:
    """Unpack the fetched image with umoci (whiteouts applied); returns the rootfs path.

    The layout is not needed after this; its removal starts at once.
    """
    rootfs = os.path.join(ctx.workdir(), "rootfs")
    ctx.progress(progress, "unpacking layers")
    ctx.run(umoci.unpack_argv(fetched.layout, LAYOUT_TAG, rootfs), writes_to=rootfs, capture=True)
    ctx.discard(fetched.layout)
    return rootfs


def squash(
    ctx: JobContext,
    rootfs: str,
    dest: str,
    start: float,
    end: float,
    *,
    all_root: bool,
    exclude_dev: bool = False,
) -> None:
    """Build a squashfs of `rootfs` at `dest` with the configured options.

    Nothing needs the unpacked tree after this, so its removal starts at once.
    """

    def on_fraction(fraction: float) -> None:
        ctx.progress(start + (end - start) * fraction, f"squashing {int(fraction * 100)}%")

    ctx.progress(start, "squashing 0%")
    # Into the job's own temp, mksquashfs writes through /proc/<pid>/fd/<n> of the file
    # the job reserved: a link someone puts at the temp's name meanwhile is not followed.
    fd = ctx.open_temp(os.O_RDWR) if ctx.publication is not None and dest == ctx.temp else None
    target = dest if fd is None else proc_path(fd, dest)
    argv = squashfs.mksquashfs_argv(
        rootfs, target, ctx.settings.squash_options, all_root=all_root, exclude_dev=exclude_dev
    )
    try:
        ctx.run(argv, on_line=squashfs.progress_parser(on_fraction), writes_to=dest)
    finally:
        if fd is not None:
            os.close(fd)
    ctx.discard(rootfs)
