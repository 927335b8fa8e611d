"""A demo cache: realistic names, sizes and headers, costing almost no disk.

`create_demo(DIR)` writes three caches (apptainer, enroot, podman) holding the
default images of all three Determined generations the image-cache pages name,
other well-known images, and at least one file in every finding state. Files are
sparse: each starts with a real header (a SIF global header and descriptors, a
squashfs superblock, OCI/docker tar headers and JSON) and is then extended to
the size of the real image, so `ls -l` shows gigabytes while `du` shows kilobytes.
It is a demo: the filesystems behind the headers are empty and will not mount.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20
DAY = 86400.0

_COMPRESSION = {"gzip": 1, "lzma": 2, "lzo": 3, "xz": 4, "lz4": 5, "zstd": 6}
_NO_TABLE = 0xFFFFFFFFFFFFFFFF
_SIF_DESCRIPTORS = 48
_SIF_DESCRIPTOR_SIZE = 585
_SIF_DESCRIPTOR_OFFSET = 4096
_SIF_LAUNCH = b"#!/usr/bin/env run-singularity\n"


def squashfs_superblock(
    size: int,
    *,
    comp: str = "zstd",
    block_size: int = 1 << 20,
    flags: int = 0x00C0,
    mkfs_time: int = 0,
    bytes_used: int | None = None,
) -> bytes:
    """A squashfs 4.0 superblock for a filesystem of `size` bytes.

    `flags` use squashfs's bits (0x0002 data uncompressed, ...); the default is
    what mksquashfs writes by default (duplicates removed, exportable).
    """
    used = size if bytes_used is None else bytes_used
    # Tables sit at the end of a real image; keep them inside bytes_used.
    table = max(96, used - 4096)
    return struct.pack(
        "<IIIIIHHHHHHQQQQQQQQ",
        0x73717368,
        1000,
        mkfs_time,
        block_size,
        1,
        _COMPRESSION[comp],
        block_size.bit_length() - 1,
        flags,
        1,
        4,
        0,
        0,
        used,
        table + 2048,
        _NO_TABLE,
        table,
        table + 1024,
        table + 1536,
        table + 3072,
    )


def _descriptor(
    datatype: int,
    did: int,
    offset: int,
    size: int,
    when: int,
    name: str,
    extra: bytes = b"",
) -> bytes:
    return struct.pack(
        "<iBIIIqqqqqqq128s384s",
        datatype,
        1,
        did,
        0xF0000000,  # "no group", as siftool writes it
        0,
        offset,
        size,
        size,
        when,
        when,
        0,
        0,
        name.encode(),
        extra,
    )


def write_sif(
    path: Path,
    size: int,
    *,
    comp: str = "gzip",
    squash_flags: int = 0x00C0,
    when: int = 0,
    signed: bool = False,
    definition: str = "Bootstrap: docker\n",
    labels: dict[str, str] | None = None,
) -> None:
    """Write a sparse SIF of `size` bytes with a primary squashfs partition."""
    deffile = definition.encode()
    labels_json = json.dumps(labels or {}).encode()
    data_offset = _SIF_DESCRIPTOR_OFFSET + _SIF_DESCRIPTORS * _SIF_DESCRIPTOR_SIZE
    part_offset = -(-(data_offset + len(deffile) + len(labels_json)) // 4096) * 4096
    signature = b"-----BEGIN PGP SIGNED MESSAGE-----\n" if signed else b""
    part_size = size - part_offset - len(signature)
    descriptors = [
        _descriptor(0x4001, 1, data_offset, len(deffile), when, "deffile"),
        _descriptor(0x4003, 2, data_offset + len(deffile), len(labels_json), when, "labels"),
        _descriptor(
            0x4004,
            3,
            part_offset,
            part_size,
            when,
            "rootfs",
            struct.pack("<ii3s", 1, 2, b"02\0"),
        ),
    ]
    if signed:
        descriptors.append(
            _descriptor(
                0x4005,
                4,
                part_offset + part_size,
                len(signature),
                when,
                "signature",
                struct.pack("<i20s", 1, bytes.fromhex("433FE984155206BD962725E20E8713472A879943")),
            )
        )
    header = struct.pack(
        "<32s10s3s3s16sqqqqqqqq",
        _SIF_LAUNCH,
        b"SIF_MAGIC\0",
        b"01\0",
        b"02\0",
        uuid.UUID(int=int.from_bytes(hashlib.sha256(str(path).encode()).digest()[:16])).bytes,
        when,
        when,
        _SIF_DESCRIPTORS - len(descriptors),
        _SIF_DESCRIPTORS,
        _SIF_DESCRIPTOR_OFFSET,
        _SIF_DESCRIPTORS * _SIF_DESCRIPTOR_SIZE,
        data_offset,
        size - data_offset,
    )
    with path.open("wb") as f:
        f.write(header)
        f.seek(_SIF_DESCRIPTOR_OFFSET)
        f.write(b"".join(descriptors))
        f.seek(data_offset)
        f.write(deffile + labels_json)
        f.seek(part_offset)
        f.write(squashfs_superblock(part_size, comp=comp, flags=squash_flags, mkfs_time=when))
        if signed:
            f.seek(part_offset + part_size)
            f.write(signature)
        f.truncate(size)


def write_squashfs(
    path: Path,
    size: int,
    *,
    comp: str = "zstd",
    flags: int = 0x00C0,
    block_size: int = 1 << 20,
    when: int = 0,
    bytes_used: int | None = None,
) -> None:
    """Write a sparse squashfs image of `size` bytes."""
    with path.open("wb") as f:
        f.write(
            squashfs_superblock(
                size,
                comp=comp,
                flags=flags,
                block_size=block_size,
                mkfs_time=when,
                bytes_used=bytes_used,
            )
        )
        f.truncate(size)


def _tar_member(f: io.BufferedWriter, name: str, data: bytes | int, when: int) -> None:
    """Append one member; an int `data` is a sparse member of that many bytes."""
    info = tarfile.TarInfo(name)
    info.size = data if isinstance(data, int) else len(data)
    info.mtime = when
    info.mode = 0o644
    f.write(info.tobuf(tarfile.GNU_FORMAT))
    if isinstance(data, int):
        f.seek(f.tell() + data)
    else:
        f.write(data)
    pad = -info.size % 512
    if pad:
        f.seek(f.tell() + pad - 1)
        f.write(b"\0")


def write_archive(
    path: Path, ref: str, layers: list[int], *, docker: bool = False, when: int = 0
) -> None:
    """Write a sparse oci-archive (or docker-archive) naming `ref`, with these layer sizes."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]}}
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    # Layer digests are made up (the layer bytes are sparse zeros); they only
    # need to look like the real thing to the eye.
    digests = [hashlib.sha256(f"{ref}/{i}".encode()).hexdigest() for i in range(len(layers))]
    with path.open("wb") as f:
        if docker:
            for digest, size in zip(digests, layers, strict=True):
                _tar_member(f, f"{digest}.tar", size, when)
            _tar_member(f, f"{config_digest}.json", config, when)
            manifest = [
                {
                    "Config": f"{config_digest}.json",
                    "RepoTags": [ref],
                    "Layers": [f"{d}.tar" for d in digests],
                }
            ]
            _tar_member(f, "manifest.json", json.dumps(manifest).encode(), when)
        else:
            _tar_member(f, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', when)
            for digest, size in zip(digests, layers, strict=True):
                _tar_member(f, f"blobs/sha256/{digest}", size, when)
            _tar_member(f, f"blobs/sha256/{config_digest}", config, when)
            image_manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": f"sha256:{config_digest}",
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": f"sha256:{d}",
                            "size": s,
                        }
                        for d, s in zip(digests, layers, strict=True)
                    ],
                }
            ).encode()
            manifest_digest = hashlib.sha256(image_manifest).hexdigest()
            _tar_member(f, f"blobs/sha256/{manifest_digest}", image_manifest, when)
            index = {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": f"sha256:{manifest_digest}",
                        "size": len(image_manifest),
                        "annotations": {"org.opencontainers.image.ref.name": ref},
                    }
                ],
            }
            _tar_member(f, "index.json", json.dumps(index).encode(), when)
        # Two zero blocks end a tar archive.
        f.write(b"\0" * 1024)


@dataclass(frozen=True)
class DemoFile:
    """One file of the demo cache and why it is there."""

    cache: str
    rel: str
    size: int
    age_days: float
    """Days since it was last modified."""
    read_days: float | None = None
    """Days since it was last read; defaults to `age_days`."""
    kind: str = "sif"
    comp: str = "gzip"
    flags: int = 0x00C0
    signed: bool = False
    mode: int = 0o644
    truncate_to: int | None = None
    ref: str | None = None
    docker: bool = False
    layers: int = 6


_NOD = 0x00C2  # -noD: data blocks uncompressed
_ALL_RAW = 0x01CB  # -noI -noD -noF -noX

#: The demo's contents. Sizes follow the real images (the pyxis page's 18G and 7.1G
#: for the same PyTorch image uncompressed and zstd-compressed).
DEMO_FILES: tuple[DemoFile, ...] = (
    # Apptainer / Singularity image root (Determined's singularity_image_root).
    DemoFile("apptainer", "determinedai/pytorch-ngc:0.35.1", int(12.8 * GiB), 20, 0.2, comp="zstd", signed=True),
    DemoFile("apptainer", "determinedai/environments:py-3.8-pytorch-1.10-tf-2.8-cpu-096d730", int(4.1 * GiB), 150, 40),
    DemoFile("apptainer", "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730", int(11.2 * GiB), 150, 35),
    DemoFile("apptainer", "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730.sif", int(11.2 * GiB), 190, 190),
    DemoFile("apptainer", "determinedai/environments:py-3.8-pytorch-1.10-tf-2.8-cpu-69f397f", int(3.9 * GiB), 420, 300),
    DemoFile("apptainer", "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-69f397f", int(10.9 * GiB), 420, 260),
    DemoFile("apptainer", "determinedai/environments:rocm-4.2-pytorch-1.9-tf-2.5-rocm-9119094", int(14.1 * GiB), 430, 400),
    DemoFile("apptainer", "nvcr.io/nvidia/pytorch:25.09-py3.sif", int(9.4 * GiB), 45, 1, comp="zstd"),
    DemoFile("apptainer", "ubuntu:22.04", 29 * MiB, 60, 3),
    DemoFile("apptainer", "rocm/pytorch:latest", int(15.3 * GiB), 12, 12, mode=0o600),
    DemoFile("apptainer", "tensorflow/tensorflow:2.15.0-gpu", int(6.2 * GiB), 2, 2, comp="zstd", truncate_to=int(2.7 * GiB)),
    DemoFile("apptainer", "nvidia/cuda:12.4.1-devel-ubuntu22.04.sif.part", int(3.3 * GiB), 0.01, 0.01, truncate_to=int(1.1 * GiB)),
    DemoFile("apptainer", "README.txt", 1200, 500, 30, kind="text"),
    # enroot shared directory (manage-enroot-cache -s DIR, pyxis --container-save).
    DemoFile("enroot", "nvidia+pytorch+25.09-py3.sqsh", 18 * GiB, 30, 2, kind="sqsh", comp="lzo", flags=_NOD),
    DemoFile("enroot", "determinedai+pytorch-ngc+0.35.1.sqsh", int(7.1 * GiB), 20, 0.5, kind="sqsh", comp="zstd"),
    DemoFile("enroot", "determinedai+environments+cuda-10.2-base-gpu-mpi-0.19.4.sqsh", int(8.6 * GiB), 700, 650, kind="sqsh", comp="lzo", flags=_NOD),
    DemoFile("enroot", "ubuntu+22.04.sqsh", 31 * MiB, 60, 8, kind="sqsh", comp="gzip"),
    DemoFile("enroot", "ubuntu.sqsh", 30 * MiB, 200, 150, kind="sqsh", comp="gzip"),
    DemoFile("enroot", "ubuntu+latest.sqsh", 30 * MiB, 90, 20, kind="sqsh", comp="gzip"),
    DemoFile("enroot", "pytorch.sqsh", 18 * GiB, 5, 5, kind="sqsh", comp="gzip", flags=_ALL_RAW),
    DemoFile("enroot", "nvidia+cuda+12.4.1-runtime-ubuntu22.04.sqsh", int(2.9 * GiB), 1, 1, kind="sqsh", comp="zstd", truncate_to=int(1.7 * GiB)),
    DemoFile("enroot", "private/meta-llama+llama+3.1-8b.sqsh", int(16.2 * GiB), 15, 15, kind="sqsh", comp="zstd"),
    # Podman archives (podman save --format=oci-archive, used as oci-archive:/path).
    DemoFile("podman", "cuda-11.3-pytorch-1.10-tf-2.8-gpu", int(10.8 * GiB), 150, 150, kind="oci", ref="determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"),
    DemoFile("podman", "pytorch-ngc-0.35.1.tar", int(12.1 * GiB), 20, 1, kind="oci", ref="docker.io/determinedai/pytorch-ngc:0.35.1", layers=24),
    DemoFile("podman", "rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512.tar", int(13.7 * GiB), 25, 4, kind="oci", ref="docker.io/determinedai/environments:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512", docker=True, layers=18),
    DemoFile("podman", "jupyter-scipy.tar", int(1.3 * GiB), 260, 240, kind="oci", ref="quay.io/jupyter/scipy-notebook:2024-05-27", layers=14),
)  # fmt: skip


def _write(path: Path, item: DemoFile, now: float) -> None:
    when = int(now - item.age_days * DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    if item.kind == "sif":
        write_sif(
            path,
            item.size,
            comp=item.comp,
            squash_flags=item.flags,
            when=when,
            signed=item.signed,
            labels={"org.label-schema.usage.singularity.version": "1.3.4"},
        )
    elif item.kind == "sqsh":
        write_squashfs(path, item.size, comp=item.comp, flags=item.flags, when=when)
    elif item.kind == "oci":
        assert item.ref is not None
        per_layer = max(512, item.size // item.layers)
        write_archive(path, item.ref, [per_layer] * item.layers, docker=item.docker, when=when)
    else:
        path.write_text(
            "Shared container images for the cluster.\n"
            "Ask the admins before deleting anything here.\n"
        )
    if item.truncate_to is not None:
        os.truncate(path, item.truncate_to)
    os.chmod(path, item.mode)
    read = item.read_days if item.read_days is not None else item.age_days
    os.utime(path, (now - read * DAY, now - item.age_days * DAY))


def create_demo(directory: str | os.PathLike[str], now: float) -> Path:
    """Write the demo caches under `directory` and return the config file naming them.

    Writing into a directory that already holds a demo replaces the demo's files.
    """
    base = Path(directory).resolve()
    roots = {name: base / name for name in ("apptainer", "enroot", "podman")}
    for root in roots.values():
        root.mkdir(parents=True, exist_ok=True)
    for item in DEMO_FILES:
        _write(roots[item.cache] / item.rel, item, now)
    # A directory other users cannot enter hides the images inside it.
    os.chmod(roots["enroot"] / "private", 0o700)
    config = base / "config.toml"
    config.write_text(
        "# imgcache demo: sparse files with real headers (see README, Demo).\n"
        f'[[cache]]\nkind = "apptainer"\npath = "{roots["apptainer"]}"\n\n'
        f'[[cache]]\nkind = "enroot"\npath = "{roots["enroot"]}"\n\n'
        f'[[cache]]\nkind = "podman"\npath = "{roots["podman"]}"\n\n'
        '[defaults]\nprofile = "pytorch-ngc-0.35.1"\n'
    )
    return config
