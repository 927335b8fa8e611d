"""Read a SIF file's global header, its descriptors and its primary partition's superblock.

Layout as in sylabs/sif (pkg/sif/sif.go, descriptor.go), all little-endian:
a 128-byte global header, an array of 585-byte data object descriptors (48 at
offset 4096 by default), then the data objects. The header and descriptors are
never trusted: counts are bounded by the descriptor area and the file, and every
used object must lie inside the file, so a copy cut short anywhere is reported
as truncated instead of being believed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from backends.model import Format, ProbeResult, SifDescriptor, SifInfo
from backends.probe.reader import BudgetExhausted, BudgetReader
from backends.probe.squashfs import SUPERBLOCK_SIZE, SquashfsError, parse_superblock

MAGIC = b"SIF_MAGIC\0"
MAGIC_OFFSET = 32
HEADER_SIZE = 128
DESCRIPTOR_SIZE = 585
#: The only SIF spec version there is; sylabs/sif refuses anything else too.
VERSION = "01"

# launch[32], magic[10], version[3], arch[3], uuid[16]; ctime, mtime, descriptors
# free, total, offset, size, data offset, size.
_HEADER = struct.Struct("<32s10s3s3s16s8q")
# datatype, used, id, groupid, linkedid; offset, size, size with padding, ctime,
# mtime, uid, gid; name[128], extra[384]. `used` is read as a byte because any
# non-zero value counts as true, as in Go's binary.Read.
_DESCRIPTOR = struct.Struct("<iBIII7q128s384s")
_PARTITION = struct.Struct("<ii3s")
_SIGNATURE = struct.Struct("<i")
assert _HEADER.size == HEADER_SIZE
assert _DESCRIPTOR.size == DESCRIPTOR_SIZE
#: The descriptor fields up to its size: datatype, used, id, groupid, linkedid, offset, size.
_DESCRIPTOR_HEAD = struct.Struct("<iBIIIqq")
#: Offsets inside a descriptor: the `used` flag, name[128] and extra[384].
_USED_AT = 4
_NAME_AT = 73
_NAME_SIZE = 128
_EXTRA_AT = _NAME_AT + _NAME_SIZE
assert _DESCRIPTOR.size == _EXTRA_AT + 384

#: Group and link ids carry this mask in the file (sylabs/sif descrGroupMask).
GROUP_MASK = 0xF000_0000

DATATYPES: dict[int, str] = {
    0x4001: "deffile",
    0x4002: "envvar",
    0x4003: "labels",
    0x4004: "partition",
    0x4005: "signature",
    0x4006: "generic-json",
    0x4007: "generic",
    0x4008: "crypto-message",
    0x4009: "sbom",
    0x400A: "oci-root-index",
    0x400B: "oci-blob",
}
DATA_PARTITION = 0x4004
DATA_SIGNATURE = 0x4005

FSTYPES: dict[int, str] = {
    1: "squashfs",
    2: "ext3",
    3: "archive",
    4: "raw",
    5: "encrypted-squashfs",
}
PARTTYPES: dict[int, str] = {1: "system", 2: "primary-system", 3: "data", 4: "overlay"}
HASHTYPES: dict[int, str] = {
    1: "sha256",
    2: "sha384",
    3: "sha512",
    4: "blake2s_256",
    5: "blake2b_256",
}
#: Architecture codes as in sylabs/sif pkg/sif/arch.go, named like Go's GOARCH.
ARCHES: dict[str, str] = {
    "00": "unknown",
    "01": "386",
    "02": "amd64",
    "03": "arm",
    "04": "arm64",
    "05": "ppc64",
    "06": "ppc64le",
    "07": "mips",
    "08": "mipsle",
    "09": "mips64",
    "10": "mips64le",
    "11": "s390x",
    "12": "riscv64",
}


def _cstr(raw: bytes) -> str:
    """Decode a NUL-terminated field; undecodable bytes stay visible as escapes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _uuid(raw: bytes) -> str:
    """Format 16 bytes as str(uuid.UUID(bytes=raw)) does, without building a UUID."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _named(table: dict[int, str], code: int) -> str:
    return table.get(code, f"unknown ({code})")


def _arch(raw: bytes) -> str:
    code = _cstr(raw)
    return ARCHES.get(code, f"unknown ({code!r})")


def _descriptor(area: bytes, at: int) -> SifDescriptor:
    """Build the record for the used descriptor at offset `at` of the descriptor area.

    Only the fields imgcache keeps are unpacked; the name is decoded in place and
    the 384-byte `extra` is looked at only for partitions and signatures (this runs
    for every used descriptor of every SIF of a scan).
    """
    datatype, _used, ident, group, linked, offset, size = _DESCRIPTOR_HEAD.unpack_from(area, at)
    fstype = parttype = arch = hash_type = None
    if datatype == DATA_PARTITION:
        fs_code, part_code, arch_raw = _PARTITION.unpack_from(area, at + _EXTRA_AT)
        fstype, parttype, arch = (
            _named(FSTYPES, fs_code),
            _named(PARTTYPES, part_code),
            _arch(arch_raw),
        )
    elif datatype == DATA_SIGNATURE:
        (hash_code,) = _SIGNATURE.unpack_from(area, at + _EXTRA_AT)
        hash_type = _named(HASHTYPES, hash_code)
    datatype_name = DATATYPES.get(datatype)
    if datatype_name is None:
        datatype_name = f"unknown (0x{datatype & 0xFFFFFFFF:x})"
    name_at = at + _NAME_AT
    name_end = area.find(b"\0", name_at, name_at + _NAME_SIZE)
    if name_end < 0:
        name_end = name_at + _NAME_SIZE
    # Positional, in SifDescriptor's field order: keywords cost a third more.
    return SifDescriptor(
        ident,
        datatype,
        datatype_name,
        group & ~GROUP_MASK,
        linked & ~GROUP_MASK,
        offset,
        size,
        area[name_at:name_end].decode("utf-8", "backslashreplace"),
        fstype,
        parttype,
        arch,
        hash_type,
    )


def _primary(descriptors: Sequence[SifDescriptor]) -> SifDescriptor | None:
    """The primary system partition; failing that the first system partition."""
    partitions = [d for d in descriptors if d.datatype == DATA_PARTITION]
    for wanted in ("primary-system", "system"):
        for d in partitions:
            if d.parttype == wanted:
                return d
    return None


class _Header:
    """The global header fields that go into `SifInfo` (a plain class: one is
    made per SIF probed, and a frozen dataclass costs several times as much)."""

    __slots__ = ("arch_raw", "ctime", "dfree", "dtotal", "mtime", "uuid_raw", "version")

    def __init__(
        self,
        version: str,
        arch_raw: bytes,
        uuid_raw: bytes,
        ctime: int,
        mtime: int,
        dfree: int,
        dtotal: int,
    ) -> None:
        self.version = version
        self.arch_raw = arch_raw
        self.uuid_raw = uuid_raw
        self.ctime = ctime
        self.mtime = mtime
        self.dfree = dfree
        self.dtotal = dtotal

    def info(
        self,
        descriptors: tuple[SifDescriptor, ...],
        primary: SifDescriptor | None,
        signed: bool | None = None,
    ) -> SifInfo:
        """The SifInfo of this header with `descriptors`; `signed` if already known."""
        if signed is None:
            signed = any(d.datatype == DATA_SIGNATURE for d in descriptors)
        return SifInfo(
            self.version,
            _arch(self.arch_raw),
            _uuid(self.uuid_raw),
            self.ctime,
            self.mtime,
            self.dtotal,
            self.dfree,
            descriptors,
            primary,
            signed,
        )


def probe_sif(reader: BudgetReader) -> ProbeResult:
    """Probe a file whose bytes 32..42 are the SIF magic. Never raises but OSError."""
    head = reader.head()
    size = reader.size
    if len(head) < HEADER_SIZE:
        return ProbeResult(
            Format.SIF,
            error=f"truncated: the SIF global header is {HEADER_SIZE} bytes, "
            f"the file has {len(head)}",
        )
    (
        _launch,
        _magic,
        version_raw,
        arch_raw,
        uuid_raw,
        ctime,
        mtime,
        dfree,
        dtotal,
        descr_offset,
        descr_size,
        _data_offset,
        _data_size,
    ) = _HEADER.unpack_from(head)
    version = _cstr(version_raw)
    if version != VERSION:
        return ProbeResult(Format.SIF, error=f"SIF version {version!r} is not supported (only 01)")
    header = _Header(version, arch_raw, uuid_raw, ctime, mtime, dfree, dtotal)

    # The header alone can already be impossible; say so before reading more.
    problem = None
    if dtotal < 0 or dfree < 0 or dfree > dtotal:
        problem = f"header claims {dtotal} descriptors of which {dfree} are free"
    elif descr_offset < HEADER_SIZE or descr_size < 0:
        problem = f"descriptor area at offset {descr_offset}, {descr_size} bytes, is impossible"
    elif dtotal > descr_size // DESCRIPTOR_SIZE:
        problem = (
            f"header claims {dtotal} descriptors but the descriptor area of {descr_size} "
            f"bytes holds only {descr_size // DESCRIPTOR_SIZE}"
        )
    elif descr_offset + dtotal * DESCRIPTOR_SIZE > size:
        end = descr_offset + dtotal * DESCRIPTOR_SIZE
        problem = f"descriptor area ends at {end}, past the end of the file at {size}: truncated"
    if problem is not None:
        return ProbeResult(Format.SIF, error=problem, sif=header.info((), None))

    # Keep room for the primary partition's superblock; if not every descriptor
    # fits the budget, read the ones that do (used ones come first in practice).
    fit = min(dtotal, max(0, reader.remaining - SUPERBLOCK_SIZE) // DESCRIPTOR_SIZE)
    note = None
    if fit < dtotal:
        note = f"read budget reached after {fit} of {dtotal} descriptors"
    area = reader.read_at(descr_offset, fit * DESCRIPTOR_SIZE)
    if len(area) < fit * DESCRIPTOR_SIZE:
        # The file shrank since it was measured.
        return ProbeResult(
            Format.SIF,
            error=f"descriptor area ends at {descr_offset + len(area)}: truncated",
            sif=header.info((), None),
        )

    # The `used` flag of every slot in one slice; slots after the last used one
    # are skipped without a Python-level look (most of the 48 are free).
    flags = area[_USED_AT::DESCRIPTOR_SIZE]
    used: list[SifDescriptor] = []
    problem = None
    signed = has_partition = False
    for k in range(len(flags.rstrip(b"\0"))):
        if not flags[k]:
            continue
        d = _descriptor(area, k * DESCRIPTOR_SIZE)
        used.append(d)
        if d.datatype == DATA_PARTITION:
            has_partition = True
        elif d.datatype == DATA_SIGNATURE:
            signed = True
        if problem is not None:
            continue
        if d.offset < 0 or d.size < 0:
            what = f"descriptor {d.id} ({d.datatype_name})"
            problem = f"{what} has a negative offset or size ({d.offset}, {d.size})"
        elif d.offset + d.size > size:
            what = f"descriptor {d.id} ({d.datatype_name})"
            problem = (
                f"{what} ends at {d.offset + d.size}, past the end of the file at {size}: truncated"
            )
    descriptors = tuple(used)
    primary = _primary(descriptors) if has_partition else None
    if problem is not None:
        return ProbeResult(
            Format.SIF, error=problem, sif=header.info(descriptors, primary, signed), note=note
        )
    if not has_partition:
        if note is not None:
            return ProbeResult(Format.SIF, sif=header.info(descriptors, None, signed), note=note)
        return ProbeResult(
            Format.SIF, error="no partition", sif=header.info(descriptors, None, signed)
        )
    if primary is None:
        return ProbeResult(
            Format.SIF,
            sif=header.info(descriptors, None, signed),
            note=note or "no system partition",
        )
    if primary.fstype != "squashfs":
        return ProbeResult(Format.SIF, sif=header.info(descriptors, primary, signed), note=note)

    try:
        block = reader.read_at(primary.offset, min(SUPERBLOCK_SIZE, primary.size))
    except BudgetExhausted:
        return ProbeResult(
            Format.SIF,
            sif=header.info(descriptors, primary, signed),
            note="read budget reached before the primary partition's superblock",
        )
    try:
        squash = parse_superblock(block, primary.size, container="partition")
    except SquashfsError as exc:
        what = f"primary partition (descriptor {primary.id})"
        return ProbeResult(
            Format.SIF,
            error=f"{what}: {exc}",
            sif=header.info(descriptors, primary, signed),
            note=note,
        )
    return ProbeResult(
        Format.SIF,
        None,
        squash,
        header.info(descriptors, primary, signed),
        None,
        reader.bytes_read,
        note,
    )
