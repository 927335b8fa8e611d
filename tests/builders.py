"""Build real image files with the real tools, for tests of every layer.

Each builder runs the program an admin would (mksquashfs, siftool, umoci, skopeo)
through `imgcache.backends.tools.run.run` and returns the path it made, so tests check
imgcache against what those tools actually write, not against our own idea of
the formats. Callers skip when `have(...)` says a tool is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

from imgcache.backends.tools.run import run

#: A def file like the ones `singularity build` embeds.
DEFFILE = b"Bootstrap: docker\nFrom: alpine:3.19\n\n%runscript\n    exec /bin/hello\n"
#: Labels JSON as `singularity build` embeds it.
LABELS = b'{"org.label-schema.schema-version": "1.0", "org.opencontainers.image.title": "test"}'
#: A made-up OpenPGP key fingerprint for fake signature descriptors.
SIGN_ENTITY = "433FE984155206BD962725E20E8713472A879943"

DATATYPE_DEFFILE = 1
DATATYPE_LABELS = 3
DATATYPE_PARTITION = 4
DATATYPE_SIGNATURE = 5
PARTFS_SQUASHFS = 1
PARTTYPE_PRIMARY = 2
PARTTYPE_DATA = 3
SIGNHASH_SHA256 = 1


def have(*tools: str) -> bool:
    """True when every named program is on PATH."""
    return all(shutil.which(tool) for tool in tools)


def make_rootfs(dest: Path) -> Path:
    """Create a small root filesystem tree at `dest` and return it.

    It holds /etc/os-release, an executable /bin/hello, a 0750 directory, a
    symlink, a file with the xattr user.test (where the filesystem allows it),
    and 300 KiB each of incompressible and compressible data, so that mksquashfs
    writes real data blocks and fragments.
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "etc").mkdir(exist_ok=True)
    (dest / "etc" / "os-release").write_text('NAME="imgcache test"\nID=imgcache\n')
    (dest / "bin").mkdir(exist_ok=True)
    hello = dest / "bin" / "hello"
    hello.write_text("#!/bin/sh\necho hello\n")
    hello.chmod(0o755)
    private = dest / "private"
    private.mkdir(exist_ok=True)
    (private / "secret.txt").write_text("not for everyone\n")
    private.chmod(0o750)
    link = dest / "bin" / "greet"
    if not link.is_symlink():
        link.symlink_to("hello")
    tagged = dest / "etc" / "tagged.conf"
    tagged.write_text("tagged=yes\n")
    # tmpfs without user xattrs, or a filesystem mounted nouser_xattr, refuses.
    with contextlib.suppress(OSError):
        os.setxattr(tagged, "user.test", b"imgcache")
    data = dest / "data"
    data.mkdir(exist_ok=True)
    (data / "random.bin").write_bytes(os.urandom(300 * 1024))
    line = b"imgcache compressible line of text, repeated to fill data blocks\n"
    (data / "text.txt").write_bytes(line * (300 * 1024 // len(line)))
    return dest


def make_squashfs(
    dest: Path,
    *,
    comp: str = "zstd",
    options: Sequence[str] = (),
    rootfs: Path | None = None,
) -> Path:
    """Run mksquashfs on `rootfs` (a fresh `make_rootfs` tree by default) into `dest`.

    `options` go to mksquashfs as they are, e.g. ["-noD"], ["-b", "1M"] or
    ["-noI", "-noD", "-noF", "-noX"]. Raises ToolError if mksquashfs refuses.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if rootfs is None:
        rootfs = make_rootfs(dest.with_name(dest.name + ".rootfs"))
    argv = ["mksquashfs", str(rootfs), str(dest), "-comp", comp, *options]
    run([*argv, "-noappend", "-quiet", "-no-progress"], capture=True)
    return dest


def _tiny_squashfs(dest: Path) -> Path:
    """A squashfs of a one-file tree, for extra partitions that only need to exist."""
    tree = dest.with_name(dest.name + ".tree")
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "data.txt").write_text("extra partition\n")
    return make_squashfs(dest, comp="gzip", rootfs=tree)


def make_sif(
    dest: Path,
    *,
    squashfs: Path | None = None,
    deffile: bool = True,
    labels: bool = True,
    signature: bool = False,
    extra_partitions: int = 0,
    arch: int = 2,
) -> Path:
    """Assemble a SIF at `dest` with siftool, in the order `singularity build` uses.

    Objects: the def file (datatype 1), labels JSON (datatype 3), `squashfs` (a
    fresh `make_squashfs` by default) as the primary system partition for SIF
    arch code `arch` (2 = amd64), `extra_partitions` small data partitions, and
    with `signature` a fake signature (datatype 5, SHA-256) linked to the primary
    partition. Descriptor ids are handed out from 1 in that order.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if squashfs is None:
        squashfs = make_squashfs(dest.with_name(dest.name + ".squashfs"))
    dest.unlink(missing_ok=True)
    run(["siftool", "new", str(dest)], capture=True)
    next_id = 1
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        inputs = Path(tmp)

        def add(source: Path, *flags: str) -> int:
            nonlocal next_id
            run(["siftool", "add", *flags, str(dest), str(source)], capture=True)
            next_id += 1
            return next_id - 1

        if deffile:
            (inputs / "Singularity").write_bytes(DEFFILE)
            add(inputs / "Singularity", "--datatype", str(DATATYPE_DEFFILE))
        if labels:
            (inputs / "labels.json").write_bytes(LABELS)
            add(inputs / "labels.json", "--datatype", str(DATATYPE_LABELS))
        partition = ["--datatype", str(DATATYPE_PARTITION), "--partfs", str(PARTFS_SQUASHFS)]
        primary = add(
            squashfs, *partition, "--parttype", str(PARTTYPE_PRIMARY), "--partarch", str(arch)
        )
        for i in range(extra_partitions):
            extra = _tiny_squashfs(inputs / f"extra{i}.squashfs")
            add(extra, *partition, "--parttype", str(PARTTYPE_DATA), "--partarch", str(arch))
        if signature:
            (inputs / "signature.asc").write_bytes(b"-----BEGIN PGP SIGNATURE-----\nfake\n")
            add(
                inputs / "signature.asc",
                "--datatype",
                str(DATATYPE_SIGNATURE),
                "--signentity",
                SIGN_ENTITY,
                "--signhash",
                str(SIGNHASH_SHA256),
                "--link",
                str(primary),
            )
    return dest


def make_oci_layout(
    dest: Path,
    tag: str = "latest",
    *,
    files: dict[str, bytes] | None = None,
    env: Sequence[str] = ("PATH=/usr/bin:/bin",),
    cmd: Sequence[str] = ("/bin/sh",),
    layers: int = 1,
) -> Path:
    """Build an OCI image layout at `dest` with umoci; the image is `<dest>:<tag>`.

    The first layer holds `files` (path inside the image -> content; a small
    /etc/os-release and /bin/hello by default); each further layer adds one small
    file, so the image has exactly `layers` layers. Returns the layout directory.
    """
    if files is None:
        files = {"etc/os-release": b'NAME="imgcache test"\n', "bin/hello": b"#!/bin/sh\necho hi\n"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    image = f"{dest}:{tag}"
    # umoci needs --rootless to record files it cannot chown when not root.
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    run(["umoci", "init", "--layout", str(dest)], capture=True)
    run(["umoci", "new", "--image", image], capture=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        for i in range(layers):
            tree = Path(tmp) / f"layer{i}"
            tree.mkdir()
            contents = files if i == 0 else {f"layer{i}.txt": f"layer {i}\n".encode()}
            for name, data in contents.items():
                path = tree / name.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                if name.lstrip("/").startswith("bin/"):
                    path.chmod(0o755)
            run(["umoci", "insert", *rootless, "--image", image, str(tree), "/"], capture=True)
    config = ["umoci", "config", "--image", image]
    for item in env:
        config += ["--config.env", item]
    for arg in cmd:
        config += ["--config.cmd", arg]
    run(config, capture=True)
    return dest


def _skopeo_copy(source: str, target: str) -> None:
    # --insecure-policy: test machines need not have /etc/containers/policy.json.
    run(["skopeo", "--insecure-policy", "copy", "--quiet", source, target], capture=True)


def make_oci_archive(
    dest: Path, ref: str, *, layout: Path | None = None, tag: str = "latest"
) -> Path:
    """Copy `<layout>:<tag>` (a fresh `make_oci_layout` by default) into an oci-archive.

    skopeo writes `ref` as the image's org.opencontainers.image.ref.name annotation.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if layout is None:
        layout = make_oci_layout(dest.with_name(dest.name + ".layout"), tag)
    dest.unlink(missing_ok=True)
    _skopeo_copy(f"oci:{layout}:{tag}", f"oci-archive:{dest}:{ref}")
    return dest


def make_docker_archive(
    dest: Path, ref: str, *, layout: Path | None = None, tag: str = "latest"
) -> Path:
    """Copy `<layout>:<tag>` (a fresh `make_oci_layout` by default) into a docker-archive.

    `ref` must be a name:tag docker reference; skopeo writes it into RepoTags.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if layout is None:
        layout = make_oci_layout(dest.with_name(dest.name + ".layout"), tag)
    dest.unlink(missing_ok=True)
    _skopeo_copy(f"oci:{layout}:{tag}", f"docker-archive:{dest}:{ref}")
    return dest


def truncated_copy(src: Path, dest: Path, length: int) -> Path:
    """Copy the first `length` bytes of `src` to `dest`: a transfer cut short."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as f:
        dest.write_bytes(f.read(length))
    return dest


#: SIF data object types siftool 2.8 (Debian bookworm) does not know yet; newer
#: siftool adds them with `--datatype 10` and `--datatype 11`.
DATATYPE_OCI_ROOT_INDEX = 10
DATATYPE_OCI_BLOB = 11
_SIF_DESCRIPTORS_AT = 4096
_SIF_DESCRIPTOR_SIZE = 585
_SIF_EXTRA_AT = 201


def make_sif_objects(dest: Path, objects: Sequence[tuple[int, bytes]]) -> Path:
    """Assemble a SIF at `dest` with siftool holding exactly `objects` (datatype, data).

    `siftool new`, then one `siftool add --datatype N` per object, ids from 1 in
    order; no partition unless one is listed (datatype 4 needs flags: use
    `make_sif` for those). An OCI root index (10) or blob (11) goes in as newer
    siftool adds it: where the installed siftool refuses those types, it is added
    as a generic object (7) and its descriptor then given the OCI type and the
    blob's digest, the two fields newer siftool writes differently.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    run(["siftool", "new", str(dest)], capture=True)
    retag: dict[int, tuple[int, str]] = {}
    oci = (DATATYPE_OCI_ROOT_INDEX, DATATYPE_OCI_BLOB)
    knows_oci = any(datatype in oci for datatype, _ in objects) and _siftool_knows_oci()
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        for ident, (datatype, data) in enumerate(objects, start=1):
            source = Path(tmp) / f"object{ident}"
            source.write_bytes(data)
            argv = ["siftool", "add", "--datatype", str(datatype), str(dest), str(source)]
            if datatype in oci and not knows_oci:
                argv[3] = "7"
                retag[ident] = (0x4000 + datatype, "sha256:" + hashlib.sha256(data).hexdigest())
            run(argv, capture=True)
    if retag:
        _retag_descriptors(dest, retag)
    return dest


def _siftool_knows_oci() -> bool:
    """True when the installed siftool adds OCI root index and blob objects itself."""
    help_text = run(["siftool", "add", "--help"], capture=True, check=False).stdout
    return b"OCI.RootIndex" in help_text


def _retag_descriptors(path: Path, retag: dict[int, tuple[int, str]]) -> None:
    """Give the descriptors with these ids a new datatype and an OCI digest in `extra`."""
    with path.open("r+b") as f:
        for slot in range(48):
            at = _SIF_DESCRIPTORS_AT + slot * _SIF_DESCRIPTOR_SIZE
            f.seek(at)
            _old_type, used, ident = struct.unpack("<iBI", f.read(9))
            if used and ident in retag:
                new_type, digest = retag[ident]
                f.seek(at)
                f.write(struct.pack("<i", new_type))
                f.seek(at + _SIF_EXTRA_AT)
                f.write(digest.encode().ljust(384, b"\0"))


def make_oci_sif(dest: Path, ref: str, *, layout: Path | None = None, tag: str = "latest") -> Path:
    """An OCI-SIF like SingularityCE 4's `pull --oci`: the image's blobs as OCI blob
    objects (layers, config, manifest) and its OCI index as the root index object.

    The image is `<layout>:<tag>` (a fresh `make_oci_layout` by default), copied
    by skopeo into an OCI layout under `ref`, so the index carries `ref` in its
    `org.opencontainers.image.ref.name` annotation.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if layout is None:
        layout = make_oci_layout(dest.with_name(dest.name + ".layout"), tag)
    named = dest.with_name(dest.name + ".named")
    if named.exists():
        shutil.rmtree(named)
    _skopeo_copy(f"oci:{layout}:{tag}", f"oci:{named}:{ref}")
    index = (named / "index.json").read_bytes()

    def blob(digest: str) -> bytes:
        algorithm, hexdigest = digest.split(":", 1)
        return (named / "blobs" / algorithm / hexdigest).read_bytes()

    objects: list[tuple[int, bytes]] = []
    for entry in json.loads(index)["manifests"]:
        manifest = blob(entry["digest"])
        doc = json.loads(manifest)
        for part in [*doc["layers"], doc["config"]]:
            objects.append((DATATYPE_OCI_BLOB, blob(part["digest"])))
        objects.append((DATATYPE_OCI_BLOB, manifest))
    objects.append((DATATYPE_OCI_ROOT_INDEX, index))
    return make_sif_objects(dest, objects)
