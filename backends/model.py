"""The records every part of imgcache shares: what a probe read, what the scanner found.

Everything here is a frozen dataclass or an enum so records can be cached, compared
and handed between threads without copying. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CacheKind(StrEnum):
    """The kinds of shared cache imgcache understands."""

    SINGULARITY = "singularity"
    ENROOT = "enroot"
    PODMAN = "podman"


class Format(StrEnum):
    """What a file in a cache turned out to be, read from its header."""

    SIF = "sif"
    SQUASHFS = "squashfs"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SquashInfo:
    """What a squashfs superblock says about the filesystem behind it."""

    compression: str | None
    """Codec name (gzip, lzma, lzo, xz, lz4, zstd) or None for an unknown id."""
    compression_id: int
    block_size: int
    flags: int
    inodes: int
    bytes_used: int
    mkfs_time: int
    version: tuple[int, int]
    inodes_compressed: bool
    data_compressed: bool
    fragments_compressed: bool
    no_fragments: bool
    xattrs_compressed: bool
    ids_compressed: bool
    compressor_options: bool

    @property
    def fully_uncompressed(self) -> bool:
        """True when inodes, data and fragments are all stored raw (`-noI -noD -noF`)."""
        return not (self.inodes_compressed or self.data_compressed or self.fragments_compressed)


@dataclass(frozen=True, slots=True)
class SifDescriptor:
    """One used data object descriptor of a SIF file."""

    id: int
    datatype: int
    datatype_name: str
    group_id: int
    linked_id: int
    offset: int
    size: int
    name: str
    fstype: str | None = None
    """For partitions: squashfs, ext3, archive, raw, encrypted-squashfs."""
    parttype: str | None = None
    """For partitions: system, primary-system, data, overlay."""
    arch: str | None = None
    """For partitions: amd64, arm64, ... as SIF names them."""
    hash_type: str | None = None
    """For signatures: sha256, sha384, ..."""


@dataclass(frozen=True, slots=True)
class SifInfo:
    """The SIF global header and its descriptors."""

    version: str
    arch: str
    uuid: str
    created: int
    modified: int
    descriptors_total: int
    descriptors_free: int
    descriptors: tuple[SifDescriptor, ...]
    primary: SifDescriptor | None
    """The primary system partition, if any."""
    signed: bool


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer of an archived image, as its manifest lists it."""

    media_type: str
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What the index/manifest of an OCI or docker archive says."""

    refs: tuple[str, ...]
    """Image references as written inside the archive (annotation or RepoTags)."""
    layers: tuple[LayerInfo, ...]
    manifests: int
    """How many images the archive holds."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Everything read from one file's headers.

    `error` is set when the format was recognised but its structure is broken
    (the file is `corrupt`); a file that is not an image at all has format UNKNOWN
    and no error.
    """

    format: Format
    error: str | None = None
    squashfs: SquashInfo | None = None
    sif: SifInfo | None = None
    archive: ArchiveInfo | None = None
    bytes_read: int = 0
    note: str | None = None
    """Why the probe stopped short without the file being broken (read budget reached,
    a compressed tar it will not decompress, the file could not be opened)."""

    @property
    def corrupt(self) -> bool:
        """True when a recognised format turned out to be broken."""
        return self.error is not None

    @property
    def compression(self) -> str | None:
        """The squashfs codec of the image's filesystem, where there is one."""
        return self.squashfs.compression if self.squashfs else None

    @property
    def data_compressed(self) -> bool | None:
        """Whether data blocks are compressed; None where that does not apply."""
        return self.squashfs.data_compressed if self.squashfs else None

    @property
    def block_size(self) -> int | None:
        """The squashfs block size in bytes; None where that does not apply."""
        return self.squashfs.block_size if self.squashfs else None


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing worth an admin's attention about one image."""

    code: str
    """One word of the fixed vocabulary in `backends.findings.VOCABULARY`."""
    reason: str
    """Why this file has the finding, in a sentence."""
    advice: str = ""
    """What to do about it, in a sentence."""


@dataclass(frozen=True, slots=True)
class FileStat:
    """The parts of one `lstat` result imgcache keeps."""

    dev: int
    ino: int
    size: int
    mtime: float
    atime: float
    ctime: float
    mode: int
    uid: int
    gid: int

    @property
    def key(self) -> tuple[int, int, int, int]:
        """Identity of this version of the file: (device, inode, size, mtime in ns)."""
        return (self.dev, self.ino, self.size, int(self.mtime * 1e9))


@dataclass(frozen=True, slots=True)
class Image:
    """One file in a cache, with everything imgcache knows about it."""

    cache: CacheKind
    root: str
    """Absolute path of the cache root this file was found under."""
    path: str
    """Absolute path of the file."""
    ref: str | None
    """The normalised image reference, or None when the name does not map to one."""
    ref_error: str | None
    """Why the name does not map to a reference, when it does not."""
    stat: FileStat
    probe: ProbeResult
    owner: str
    group: str
    blocked_by: str | None = None
    """A directory above the file that other users cannot traverse, if any."""
    findings: tuple[Finding, ...] = field(default=())

    @property
    def rel(self) -> str:
        """The path relative to its cache root."""
        return self.path[len(self.root) :].lstrip("/")

    @property
    def codes(self) -> tuple[str, ...]:
        """The finding codes alone, in vocabulary order."""
        return tuple(f.code for f in self.findings)
