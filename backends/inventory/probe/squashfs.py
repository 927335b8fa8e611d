"""Read the 96-byte squashfs 4.0 superblock: codec, block size, what is compressed.

Older squashfs (1.x to 3.x) and big-endian files share the magic (byte-swapped
for big-endian) and keep their version at the same place; they are named
exactly ("squashfs 3.1, big-endian") and refused as `UnsupportedSquashfs`.

The layout and flag bits follow squashfs-tools' `squashfs_fs.h`. A superblock is
checked as far as it can be without reading anything else: a filesystem that claims
more bytes than the file (or SIF partition) holds is truncated, and offsets or sizes
outside what the format allows mean the file is corrupt.
"""

from __future__ import annotations

import struct

from imgcache.backends.inventory.model import SquashInfo, new_squash_info

#: The squashfs 4.0 magic, little-endian "hsqs".
MAGIC = b"hsqs"
#: Byte-swapped magic: big-endian squashfs, or 3.x and older written on such hosts.
MAGIC_SWAPPED = b"sqsh"
SUPERBLOCK_SIZE = 96

# magic, inodes, mkfs_time, block_size, fragments; compression, block_log, flags,
# no_ids, major, minor; root inode, bytes_used and the six table offsets.
_SUPERBLOCK = struct.Struct("<4sIIII6H8Q")
assert _SUPERBLOCK.size == SUPERBLOCK_SIZE

#: What follows "squashfs 3.1, big-endian: " in the note of an unsupported squashfs.
UNSUPPORTED_REASON = (
    "the kernel and squashfuse mount squashfs 4.0 (little-endian) only; "
    "rebuild the image with mksquashfs 4"
)
#: Compression ids as squashfs_fs.h numbers them.
COMPRESSORS: dict[int, str] = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

# Superblock flag bits (squashfs_fs.h SQUASHFS_NOI, _NOD, _NOF, ...).
UNCOMPRESSED_INODES = 0x0001
UNCOMPRESSED_DATA = 0x0002
UNCOMPRESSED_FRAGMENTS = 0x0008
NO_FRAGMENTS = 0x0010
ALWAYS_FRAGMENTS = 0x0020
DUPLICATES = 0x0040
EXPORTABLE = 0x0080
UNCOMPRESSED_XATTRS = 0x0100
NO_XATTRS = 0x0200
COMPRESSOR_OPTIONS = 0x0400
UNCOMPRESSED_IDS = 0x0800

MIN_BLOCK_SIZE = 4 * 1024
MAX_BLOCK_SIZE = 1024 * 1024
#: A table offset that means "this table is absent" (SQUASHFS_INVALID_BLK, -1).
ABSENT = 0xFFFF_FFFF_FFFF_FFFF


class SquashfsError(ValueError):
    """The superblock is not a usable squashfs 4.0 superblock; str() says why."""


class UnsupportedSquashfs(SquashfsError):
    """A squashfs the runtimes cannot mount: another version (1.x to 3.x) or
    big-endian. Not broken, so not `corrupt`; str() says which exactly."""


#: Where every squashfs version keeps its major and minor number (two 16-bit
#: fields at 28 and 30, in the byte order of the magic).
_VERSION_AT = 28


def unsupported(data: bytes) -> str | None:
    """Which squashfs `data` starts, when it is one the runtimes cannot mount.

    "squashfs 3.1, big-endian", "squashfs 2.0, little-endian": squashfs 4.0 is
    little-endian only, and the kernel (since 2.6.29) and squashfuse read 4.0
    alone. None for a little-endian 4.0 superblock, for anything without a
    squashfs magic, and for a superblock too short to hold its version.
    """
    magic = data[:4]
    if magic not in (MAGIC, MAGIC_SWAPPED) or len(data) < _VERSION_AT + 4:
        return None
    order = "<" if magic == MAGIC else ">"
    major, minor = struct.unpack_from(order + "HH", data, _VERSION_AT)
    if order == "<" and (major, minor) == (4, 0):
        return None
    endian = "little-endian" if order == "<" else "big-endian"
    if not 1 <= major <= 4:
        return f"squashfs magic ({endian}) with an impossible version {major}.{minor}"
    return f"squashfs {major}.{minor}, {endian}"


def _size(n: int) -> str:
    """Name a byte count the way the reasons do: exact, with a readable unit."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


#: Version 4.0 as its two little-endian 16-bit fields: the usual case, tested first.
_V40 = struct.pack("<HH", 4, 0)


def _refuse(data: bytes, container: str) -> None:
    """Raise the SquashfsError for a superblock that is not little-endian 4.0."""
    if data[:4] not in (MAGIC, MAGIC_SWAPPED):
        raise SquashfsError("no squashfs superblock (magic 'hsqs' missing)")
    which = unsupported(data)
    if which is None:
        # Too short to hold its version: cut short right after the magic.
        raise SquashfsError(
            f"truncated: the squashfs superblock is {SUPERBLOCK_SIZE} bytes, "
            f"the {container} has {len(data)}"
        )
    if which.startswith("squashfs magic"):
        raise SquashfsError(which)
    raise UnsupportedSquashfs(f"{which}: {UNSUPPORTED_REASON}")


def parse_superblock(data: bytes, available: int, *, container: str = "file") -> SquashInfo:
    """Parse a squashfs superblock from `data` (its first 96 bytes or more).

    `available` is how many bytes of file (or of SIF partition) start at the
    superblock; a filesystem claiming more is truncated. `container` names that
    space in the reason ("file", "partition"). Raises SquashfsError (a ValueError)
    with a reason a person can read.
    """
    if data[:4] != MAGIC or data[_VERSION_AT : _VERSION_AT + 4] != _V40:
        _refuse(data, container)
    if len(data) < SUPERBLOCK_SIZE:
        raise SquashfsError(
            f"truncated: the squashfs superblock is {SUPERBLOCK_SIZE} bytes, "
            f"the {container} has {len(data)}"
        )
    (
        _magic,
        inodes,
        mkfs_time,
        block_size,
        _fragments,
        compression_id,
        block_log,
        flags,
        _no_ids,
        _major,
        _minor,
        _root_inode,
        bytes_used,
        id_table,
        xattr_id_table,
        inode_table,
        directory_table,
        fragment_table,
        lookup_table,
    ) = _SUPERBLOCK.unpack_from(data)

    # The version was checked first (`unsupported`): 3.x superblocks share the
    # magic but not the layout, so every other field would be in the wrong place.
    if compression_id not in COMPRESSORS:
        raise SquashfsError(f"unknown squashfs compression id {compression_id}")
    power_of_two = block_size > 0 and block_size & (block_size - 1) == 0
    if not power_of_two or not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise SquashfsError(
            f"block size {block_size} is not a power of two between 4 KiB and 1 MiB"
        )
    if 1 << block_log != block_size:
        raise SquashfsError(f"block_log {block_log} disagrees with block size {_size(block_size)}")
    if bytes_used > available:
        raise SquashfsError(
            f"truncated: superblock says {bytes_used} bytes, {container} has {available}"
        )
    if bytes_used < SUPERBLOCK_SIZE:
        raise SquashfsError(f"superblock says the filesystem is only {bytes_used} bytes")

    lo, hi = SUPERBLOCK_SIZE, bytes_used
    if (
        lo <= id_table <= hi
        and lo <= inode_table <= hi
        and lo <= directory_table <= hi
        and (xattr_id_table == ABSENT or lo <= xattr_id_table <= hi)
        and (fragment_table == ABSENT or lo <= fragment_table <= hi)
        and (lookup_table == ABSENT or lo <= lookup_table <= hi)
    ):
        # Every table in place (the usual case): no need to walk them for a reason.
        return _info(compression_id, block_size, flags, inodes, bytes_used, mkfs_time)
    tables = (
        ("id table", id_table, False),
        ("xattr id table", xattr_id_table, True),
        ("inode table", inode_table, False),
        ("directory table", directory_table, False),
        ("fragment table", fragment_table, True),
        ("export table", lookup_table, True),
    )
    for name, start, optional in tables:
        if optional and start == ABSENT:
            continue
        if start > bytes_used:
            raise SquashfsError(
                f"{name} starts at {start}, beyond the {bytes_used} bytes the filesystem uses"
            )
        if start < SUPERBLOCK_SIZE:
            raise SquashfsError(f"{name} starts at {start}, inside the superblock")

    return _info(compression_id, block_size, flags, inodes, bytes_used, mkfs_time)


#: The only version `parse_superblock` accepts, as SquashInfo.version holds it
#: (one tuple shared by every record instead of one per superblock).
_VERSION = (4, 0)


def _info(
    compression_id: int,
    block_size: int,
    flags: int,
    inodes: int,
    bytes_used: int,
    mkfs_time: int,
) -> SquashInfo:
    """The SquashInfo of a (4.0) superblock that passed every check."""
    # The fast constructor, positional in SquashInfo's field order: this runs for
    # every squashfs and SIF of a scan (see imgcache.backends.inventory.model.fast_constructor).
    return new_squash_info(
        COMPRESSORS[compression_id],
        compression_id,
        block_size,
        flags,
        inodes,
        bytes_used,
        mkfs_time,
        _VERSION,
        not flags & UNCOMPRESSED_INODES,
        not flags & UNCOMPRESSED_DATA,
        not flags & UNCOMPRESSED_FRAGMENTS,
        bool(flags & NO_FRAGMENTS),
        not flags & UNCOMPRESSED_XATTRS,
        # mksquashfs writes the id table with the inode metadata, so -noI leaves it
        # raw even without the NOID bit; unsquashfs -s reports it the same way.
        not flags & (UNCOMPRESSED_IDS | UNCOMPRESSED_INODES),
        bool(flags & COMPRESSOR_OPTIONS),
    )
