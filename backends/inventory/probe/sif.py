"""Read a SIF file's global header, its descriptors and its primary partition's superblock.

Layout as in sylabs/sif (pkg/sif/sif.go, descriptor.go), all little-endian:
a 128-byte global header, an array of 585-byte data object descriptors (48 at
offset 4096 by default), then the data objects. The header and descriptors are
never trusted: counts are bounded by the descriptor area and the file, and every
used object must lie inside the file, so a copy cut short anywhere is reported
as truncated instead of being believed.

A SIF with no partition is not broken: one holding an OCI root index is an
OCI-SIF (`ocisif`), one holding only other objects has no root filesystem.
"""

from __future__ import annotations

import struct

from imgcache.backends.inventory.model import (
    Format,
    ProbeResult,
    SifDescriptor,
    new_probe_result,
    new_sif_descriptor,
    new_sif_info,
)
from imgcache.backends.inventory.probe.ocisif import DATA_OCI_ROOT_INDEX, probe_oci_sif
from imgcache.backends.inventory.probe.reader import BudgetExhausted, BudgetReader
from imgcache.backends.inventory.probe.squashfs import (
    SUPERBLOCK_SIZE,
    SquashfsError,
    parse_superblock,
)

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
assert _HEADER.size == HEADER_SIZE
assert _DESCRIPTOR.size == DESCRIPTOR_SIZE
#: What a descriptor's record keeps, in one unpack: datatype, used, id, groupid,
#: linkedid, offset, size; (size with padding, ctime, mtime, uid, gid skipped);
#: name[128]; then the first 11 bytes of extra, read as a partition's fstype,
#: parttype and arch[3] (a signature's hash type is the same first int32).
_DESCRIPTOR_KEPT = struct.Struct("<iBIIIqq40x128sii3s")
#: Offsets inside a descriptor: the `used` flag, name[128] and extra[384].
_USED_AT = 4
_NAME_AT = 73
_NAME_SIZE = 128
_EXTRA_AT = _NAME_AT + _NAME_SIZE
assert _DESCRIPTOR.size == _EXTRA_AT + 384
assert _DESCRIPTOR_KEPT.size == _EXTRA_AT + _PARTITION.size

#: Group and link ids carry this mask in the file (sylabs/sif descrGroupMask).
GROUP_MASK = 0xF000_0000
_ID_BITS = ~GROUP_MASK

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
#: OCI root index and OCI blob objects record their content digest in `extra`.
_OCI_TYPES = frozenset({0x400A, 0x400B})

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


#: The 3-byte arch field as siftool writes it (two digits and a NUL), to its name:
#: one dict lookup for the usual case instead of decoding the field each time.
_ARCH_BY_RAW: dict[bytes, str] = {code.encode() + b"\0": name for code, name in ARCHES.items()}


def _arch(raw: bytes) -> str:
    name = _ARCH_BY_RAW.get(raw)
    if name is not None:
        return name
    code = _cstr(raw)
    return ARCHES.get(code) or f"unknown ({code!r})"


def _descriptor(area: bytes, at: int) -> SifDescriptor:
    """Build the record for the used descriptor at offset `at` of the descriptor area.

    One unpack takes every field imgcache keeps (this runs for every used
    descriptor of every SIF of a scan); `extra` means something only for
    partitions and signatures.
    """
    datatype, _used, ident, group, linked, offset, size, name, code, code2, arch_raw = (
        _DESCRIPTOR_KEPT.unpack_from(area, at)
    )
    if datatype == DATA_PARTITION:
        fstype = FSTYPES.get(code) or f"unknown ({code})"
        parttype = PARTTYPES.get(code2) or f"unknown ({code2})"
        arch = _arch(arch_raw)
        hash_type = None
    elif datatype == DATA_SIGNATURE:
        fstype = parttype = arch = None
        hash_type = HASHTYPES.get(code) or f"unknown ({code})"
    else:
        fstype = parttype = arch = hash_type = None
    digest = None
    if datatype in _OCI_TYPES:
        # The blob's digest, as text ("sha256:..."), NUL-padded in `extra`.
        digest = _cstr(area[at + _EXTRA_AT : at + DESCRIPTOR_SIZE]) or None
    # The fast constructor, positional in SifDescriptor's field order (see
    # imgcache.backends.inventory.model.fast_constructor).
    return new_sif_descriptor(
        ident,
        datatype,
        DATATYPES.get(datatype) or f"unknown (0x{datatype & 0xFFFFFFFF:x})",
        group & _ID_BITS,
        linked & _ID_BITS,
        offset,
        size,
        _cstr(name),
        fstype,
        parttype,
        arch,
        hash_type,
        digest,
    )


def probe_sif(reader: BudgetReader) -> ProbeResult:
    """Probe a file whose bytes 32..42 are the SIF magic. Never raises but OSError."""
    head = reader.head()
    size = reader.size
    if len(head) < HEADER_SIZE:
        return new_probe_result(
            Format.SIF,
            f"truncated: the SIF global header is {HEADER_SIZE} bytes, the file has {len(head)}",
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
        return new_probe_result(Format.SIF, f"SIF version {version!r} is not supported (only 01)")
    # SifInfo's fields from the global header, in its field order; every result
    # from here on carries them (a tuple, not a closure: this runs per SIF).
    header = (version, _arch(arch_raw), _uuid(uuid_raw), ctime, mtime, dtotal, dfree)

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
        return new_probe_result(Format.SIF, problem, sif=new_sif_info(*header, (), None, False))

    # Keep room for the primary partition's superblock; if not every descriptor
    # fits the budget, read the ones that do (used ones come first in practice).
    fit = min(dtotal, max(0, reader.remaining - SUPERBLOCK_SIZE) // DESCRIPTOR_SIZE)
    note = None
    if fit < dtotal:
        note = f"read budget reached after {fit} of {dtotal} descriptors"
    area = reader.read_at(descr_offset, fit * DESCRIPTOR_SIZE)
    if len(area) < fit * DESCRIPTOR_SIZE:
        # The file shrank since it was measured.
        return new_probe_result(
            Format.SIF,
            f"descriptor area ends at {descr_offset + len(area)}: truncated",
            sif=new_sif_info(*header, (), None, False),
        )

    # The `used` flag of every slot in one slice; slots after the last used one
    # are skipped without a Python-level look (most of the 48 are free).
    flags = area[_USED_AT::DESCRIPTOR_SIZE]
    used: list[SifDescriptor] = []
    problem = None
    signed = has_partition = False
    # The primary partition: the first one marked primary-system, failing that
    # the first system partition; picked on the way instead of in a second pass.
    primary = system = None
    for k in range(len(flags.rstrip(b"\0"))):
        if not flags[k]:
            continue
        d = _descriptor(area, k * DESCRIPTOR_SIZE)
        used.append(d)
        if d.datatype == DATA_PARTITION:
            has_partition = True
            if primary is None and d.parttype == "primary-system":
                primary = d
            elif system is None and d.parttype == "system":
                system = d
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
    if primary is None:
        primary = system
    # Every result from here on carries the same SifInfo (primary is None when
    # there is no partition).
    info = new_sif_info(*header, tuple(used), primary, signed)
    if not has_partition and any(d.datatype == DATA_OCI_ROOT_INDEX for d in used):
        if problem is not None:
            return new_probe_result(Format.OCI_SIF, problem, sif=info, note=note)
        return probe_oci_sif(reader, info, note)
    if problem is not None:
        return new_probe_result(Format.SIF, problem, sif=info, note=note)
    if not has_partition:
        if note is not None:
            return new_probe_result(Format.SIF, sif=info, note=note)
        # Valid, but nothing a runtime could start: a signature, an SBOM or data
        # kept in SIF form. Not broken, so not corrupt.
        kinds = ", ".join(dict.fromkeys(d.datatype_name for d in used)) or "nothing"
        return new_probe_result(
            Format.SIF,
            sif=info,
            note=f"no root filesystem: the SIF holds {kinds}",
            not_image=f"a SIF with no root filesystem (it holds {kinds})",
        )
    if primary is None:
        return new_probe_result(Format.SIF, sif=info, note=note or "no system partition")
    if primary.fstype != "squashfs":
        return new_probe_result(Format.SIF, sif=info, note=note)

    try:
        block = reader.read_at(primary.offset, min(SUPERBLOCK_SIZE, primary.size))
    except BudgetExhausted:
        return new_probe_result(
            Format.SIF,
            sif=info,
            note="read budget reached before the primary partition's superblock",
        )
    try:
        squash = parse_superblock(block, primary.size, container="partition")
    except SquashfsError as exc:
        what = f"primary partition (descriptor {primary.id})"
        return new_probe_result(Format.SIF, f"{what}: {exc}", sif=info, note=note)
    # Positional, in ProbeResult's field order: the usual end of a SIF probe.
    return new_probe_result(Format.SIF, None, squash, info, None, reader.bytes_read, note)
