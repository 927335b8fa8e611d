"""The squashfs probe against what `unsquashfs -s` says about the same file."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import pytest

from imgcache.backends.inventory.model import Format
from imgcache.backends.inventory.probe import probe_fileobj, probe_path
from imgcache.backends.inventory.probe.squashfs import SquashfsError, parse_superblock
from imgcache.backends.tools.run import ToolError, run
from tests.builders import have, make_squashfs, truncated_copy

COMPRESSORS = ["gzip", "lzma", "lzo", "xz", "lz4", "zstd"]


def unsquashfs_s(path: Path) -> dict[str, object]:
    """Parse `unsquashfs -s`: the oracle for everything the superblock says."""
    out = run(["unsquashfs", "-s", str(path)], capture=True).stdout.decode()
    facts: dict[str, object] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"Compression (\w+)$", line):
            facts["compression"] = m[1]
            # Compressor options are printed indented under the codec.
            facts["compressor_options"] = i + 1 < len(lines) and lines[i + 1].startswith("\t")
        elif m := re.match(r"Block size (\d+)$", line):
            facts["block_size"] = int(m[1])
        elif m := re.match(r"Filesystem size (\d+) bytes", line):
            facts["bytes_used"] = int(m[1])
        elif m := re.match(r"Number of inodes (\d+)$", line):
            facts["inodes"] = int(m[1])
        elif m := re.match(r"Inodes are (un)?compressed$", line):
            facts["inodes_compressed"] = m[1] is None
        elif m := re.match(r"Data is (un)?compressed$", line):
            facts["data_compressed"] = m[1] is None
        elif m := re.match(r"Uids/Gids \(Id table\) are (un)?compressed$", line):
            facts["ids_compressed"] = m[1] is None
        elif m := re.match(r"Fragments are (not stored|uncompressed|compressed)$", line):
            facts["fragments"] = m[1]
        elif m := re.match(r"Xattrs are (not stored|uncompressed|compressed)$", line):
            facts["xattrs"] = m[1]
    return facts


def build(tmp_path: Path, rootfs: Path, comp: str, options: list[str]) -> Path:
    """Build a squashfs, skipping when this mksquashfs lacks the compressor."""
    try:
        return make_squashfs(tmp_path / "fs.sqsh", comp=comp, options=options, rootfs=rootfs)
    except ToolError as exc:
        if comp == "lzma":
            pytest.skip(f"this mksquashfs does not support lzma: {exc}")
        raise


def assert_matches_oracle(path: Path) -> None:
    result = probe_path(str(path))
    facts = unsquashfs_s(path)
    assert result.format is Format.SQUASHFS
    assert result.error is None
    info = result.squashfs
    assert info is not None
    assert info.compression == facts["compression"]
    assert info.block_size == facts["block_size"]
    assert info.bytes_used == facts["bytes_used"]
    assert info.inodes == facts["inodes"]
    assert info.inodes_compressed == facts["inodes_compressed"]
    assert info.data_compressed == facts["data_compressed"]
    assert info.ids_compressed == facts["ids_compressed"]
    if facts["compressor_options"]:
        # unsquashfs prints options only when they differ from the codec's
        # defaults (lz4 always stores some), so only this direction is checked.
        assert info.compressor_options
    assert info.no_fragments == (facts["fragments"] == "not stored")
    if facts["fragments"] != "not stored":
        assert info.fragments_compressed == (facts["fragments"] == "compressed")
    if facts["xattrs"] != "not stored":
        assert info.xattrs_compressed == (facts["xattrs"] == "compressed")
    # One small read tells everything about a bare squashfs.
    assert 96 <= result.bytes_read <= 512


needs_squashfs_tools = pytest.mark.skipif(
    not have("mksquashfs", "unsquashfs"), reason="needs mksquashfs and unsquashfs"
)


@pytest.mark.tools
@needs_squashfs_tools
@pytest.mark.parametrize("comp", COMPRESSORS)
def test_every_compressor_matches_unsquashfs(tmp_path, probe_rootfs, comp):
    assert_matches_oracle(build(tmp_path, probe_rootfs, comp, []))


@pytest.mark.tools
@needs_squashfs_tools
@pytest.mark.parametrize(
    ("comp", "options"),
    [
        pytest.param("lzo", ["-noD"], id="enroot-default-lzo-noD"),
        pytest.param("gzip", ["-noI", "-noD", "-noF", "-noX"], id="all-uncompressed"),
        pytest.param("zstd", ["-b", "1M"], id="block-1M"),
        pytest.param("zstd", ["-Xcompression-level", "3", "-b", "1M"], id="pyxis-recommended"),
        pytest.param("xz", ["-no-fragments", "-no-xattrs"], id="no-fragments"),
        pytest.param("gzip", ["-b", "4K"], id="block-4K"),
    ],
)
def test_options_match_unsquashfs(tmp_path, probe_rootfs, comp, options):
    assert_matches_oracle(build(tmp_path, probe_rootfs, comp, options))


@pytest.mark.tools
@needs_squashfs_tools
def test_what_an_admin_looks_for(tmp_path, probe_rootfs):
    enroot = probe_path(str(build(tmp_path / "a", probe_rootfs, "lzo", ["-noD"])))
    assert (enroot.compression, enroot.data_compressed) == ("lzo", False)
    assert enroot.squashfs is not None and not enroot.squashfs.fully_uncompressed
    raw = probe_path(str(build(tmp_path / "b", probe_rootfs, "gzip", ["-noI", "-noD", "-noF"])))
    assert raw.squashfs is not None and raw.squashfs.fully_uncompressed
    reused = probe_path(str(build(tmp_path / "c", probe_rootfs, "zstd", ["-b", "1M"])))
    assert (reused.compression, reused.block_size, reused.data_compressed) == (
        "zstd",
        1024 * 1024,
        True,
    )


@pytest.mark.tools
def test_truncated_squashfs_is_corrupt_with_both_sizes(tmp_path, probe_squashfs):
    full = probe_path(str(probe_squashfs))
    assert full.squashfs is not None
    cut = truncated_copy(probe_squashfs, tmp_path / "cut.sqsh", 200_000)
    result = probe_path(str(cut))
    assert result.format is Format.SQUASHFS
    assert result.error == (
        f"truncated: superblock says {full.squashfs.bytes_used} bytes, file has 200000"
    )


@pytest.mark.tools
def test_squashfs_cut_inside_its_superblock(probe_squashfs):
    data = probe_squashfs.read_bytes()[:50]
    result = probe_fileobj(io.BytesIO(data), len(data))
    assert result.format is Format.SQUASHFS
    assert result.error is not None and "truncated" in result.error


@pytest.mark.tools
def test_probe_path_is_not_fooled_by_names(tmp_path, probe_squashfs):
    renamed = tmp_path / "image.sif"
    renamed.write_bytes(probe_squashfs.read_bytes())
    assert probe_path(str(renamed)).format is Format.SQUASHFS
    readme = tmp_path / "ubuntu.sqsh"
    readme.write_text("# not an image\n")
    assert probe_path(str(readme)).format is Format.UNKNOWN


# Synthetic superblocks: every check, without the tools.

_SB = struct.Struct("<4sIIII6H8Q")


def superblock(**fields: int | bytes) -> bytes:
    """A valid gzip squashfs 4.0 superblock of 8 KiB, with `fields` overridden."""
    values: dict[str, int | bytes] = {
        "magic": b"hsqs",
        "inodes": 3,
        "mkfs_time": 1_700_000_000,
        "block_size": 131072,
        "fragments": 1,
        "compression": 1,
        "block_log": 17,
        "flags": 0x00C0,
        "no_ids": 1,
        "major": 4,
        "minor": 0,
        "root_inode": 0x60,
        "bytes_used": 8000,
        "id_table": 7990,
        "xattr_id_table": 0xFFFF_FFFF_FFFF_FFFF,
        "inode_table": 7000,
        "directory_table": 7500,
        "fragment_table": 7800,
        "lookup_table": 7900,
    }
    values.update(fields)
    return _SB.pack(*values.values())


def test_synthetic_superblock_parses():
    info = parse_superblock(superblock(), 8192)
    assert (info.compression, info.block_size, info.version) == ("gzip", 131072, (4, 0))
    assert info.data_compressed and info.inodes_compressed and not info.compressor_options


@pytest.mark.parametrize(
    ("flags", "field", "value"),
    [
        (0x0001, "inodes_compressed", False),
        (0x0002, "data_compressed", False),
        (0x0008, "fragments_compressed", False),
        (0x0010, "no_fragments", True),
        (0x0100, "xattrs_compressed", False),
        (0x0400, "compressor_options", True),
        (0x0800, "ids_compressed", False),
    ],
)
def test_each_flag_bit(flags, field, value):
    assert getattr(parse_superblock(superblock(flags=flags), 8192), field) is value
    assert getattr(parse_superblock(superblock(flags=0), 8192), field) is not value


@pytest.mark.parametrize(("comp_id", "name"), enumerate(COMPRESSORS, start=1))
def test_compression_ids(comp_id, name):
    assert parse_superblock(superblock(compression=comp_id), 8192).compression == name


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"major": 3, "minor": 1}, "squashfs 3.1, little-endian: the kernel and squashfuse"),
        ({"major": 77, "minor": 0}, "squashfs magic (little-endian) with an impossible version"),
        ({"compression": 9}, "unknown squashfs compression id 9"),
        ({"block_size": 3000, "block_log": 12}, "not a power of two between 4 KiB and 1 MiB"),
        ({"block_size": 2048, "block_log": 11}, "not a power of two between 4 KiB and 1 MiB"),
        ({"block_size": 1 << 21, "block_log": 21}, "not a power of two between 4 KiB and 1 MiB"),
        ({"block_log": 16}, "block_log 16 disagrees with block size 128 KiB"),
        ({"bytes_used": 2**63}, f"truncated: superblock says {2**63} bytes, file has 8192"),
        ({"inode_table": 9000}, "inode table starts at 9000, beyond the 8000 bytes"),
        ({"directory_table": 10}, "directory table starts at 10, inside the superblock"),
    ],
)
def test_impossible_superblocks_say_why(fields, reason):
    with pytest.raises(SquashfsError, match=re.escape(reason)):
        parse_superblock(superblock(**fields), 8192)


def old_superblock(order: str, major: int, minor: int) -> bytes:
    """The first 96 bytes of a squashfs 1.x-3.x (or big-endian) file: the magic in the
    file's byte order, and the version where every version keeps it (bytes 28-31).

    Typed here because no tool on a current system writes one: squashfs-tools 4
    writes little-endian 4.0 only.
    """
    block = bytearray(96)
    block[:4] = b"hsqs" if order == "<" else b"sqsh"
    struct.pack_into(order + "HH", block, 28, major, minor)
    return bytes(block)


@pytest.mark.parametrize(
    ("order", "major", "minor", "which"),
    [
        (">", 3, 1, "squashfs 3.1, big-endian"),
        ("<", 3, 0, "squashfs 3.0, little-endian"),
        (">", 2, 1, "squashfs 2.1, big-endian"),
        ("<", 1, 0, "squashfs 1.0, little-endian"),
        (">", 4, 0, "squashfs 4.0, big-endian"),
    ],
)
def test_big_endian_and_old_squashfs_say_exactly_which(order, major, minor, which):
    data = old_superblock(order, major, minor)
    result = probe_fileobj(io.BytesIO(data), len(data))
    # Not broken (it is not corrupt), but no runtime here mounts it.
    assert (result.format, result.error) == (Format.SQUASHFS, None)
    assert result.not_image == which
    assert result.note == (
        f"{which}: the kernel and squashfuse mount squashfs 4.0 (little-endian) only; "
        "rebuild the image with mksquashfs 4"
    )


def test_a_byte_swapped_magic_with_a_nonsense_version_is_corrupt():
    result = probe_fileobj(io.BytesIO(b"sqsh" + bytes(92)), 96)
    assert result.format is Format.SQUASHFS
    assert result.error == "squashfs magic (big-endian) with an impossible version 0.0"
