"""Hostile input: cut, flipped, random and lying files never break the probe.

Whatever the bytes, a probe returns a result (corrupt or unknown at worst), never
raises, never reports an internal error, and never reads past its budget.
"""

from __future__ import annotations

import io
import struct
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgcache.backends.inventory.model import Format, ProbeResult
from imgcache.backends.inventory.probe import MAX_HEADER_BYTES, probe_fileobj, probe_path

FIXTURES = [
    "probe_squashfs",
    "probe_sif",
    "probe_oci_archive",
    "probe_docker_archive",
    "probe_oci_sif",
    "probe_sif_no_rootfs",
]

#: What a cut copy of each format may be taken for.
SAME_FAMILY = {Format.OCI_SIF: {Format.OCI_SIF, Format.SIF}}

# No example database: tests must not leave files in the working tree.
fuzz = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def probe_bytes(data: bytes, size: int | None = None) -> ProbeResult:
    result = probe_fileobj(io.BytesIO(data), len(data) if size is None else size)
    assert result.bytes_read <= MAX_HEADER_BYTES
    assert result.error is None or "internal error" not in result.error, result.error
    return result


def content_end(data: bytes) -> int:
    """Where the last byte that matters lies: past it a cut loses nothing."""
    if data[257:262] == b"ustar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return max(m.offset_data + m.size for m in tar.getmembers())
    return len(data)


@pytest.mark.tools
@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_truncation_of_the_first_64k(request, fixture):
    path: Path = request.getfixturevalue(fixture)
    data = path.read_bytes()
    whole = probe_bytes(data)
    assert whole.error is None and whole.format is not Format.UNKNOWN
    end = content_end(data)
    started = time.perf_counter()
    for n in range(min(len(data), MAX_HEADER_BYTES) + 1):
        result = probe_fileobj(io.BytesIO(data[:n]), n)
        assert result.bytes_read <= MAX_HEADER_BYTES, n
        assert result.error is None or "internal error" not in result.error, (n, result.error)
        if n < end:
            # A copy cut short is never reported healthy.
            assert result.corrupt or result.format is Format.UNKNOWN, (n, result)
        if result.corrupt:
            # Cut before its descriptors, an OCI-SIF can only be known as a SIF.
            assert result.format in SAME_FAMILY.get(whole.format, {whole.format}), (n, result)
    elapsed = time.perf_counter() - started
    print(f"{fixture}: {min(len(data), MAX_HEADER_BYTES) + 1} truncations in {elapsed:.1f} s")
    assert elapsed < 30


@given(st.binary(max_size=4096))
@fuzz
def test_random_bytes(data):
    probe_bytes(data)


@given(
    st.sampled_from([b"hsqs", b"sqsh", b"\0" * 32 + b"SIF_MAGIC\x0001\x0002\x00"]),
    st.binary(max_size=2048),
)
@fuzz
def test_random_bytes_behind_a_magic(magic, rest):
    probe_bytes(magic + rest)


@given(
    st.sampled_from(["<", ">"]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=512),
)
@fuzz
def test_any_squashfs_version_in_either_byte_order(order, major, minor, rest):
    block = bytearray(96)
    block[:4] = b"hsqs" if order == "<" else b"sqsh"
    struct.pack_into(order + "HH", block, 28, major, minor)
    result = probe_bytes(bytes(block) + rest)
    assert result.format is Format.SQUASHFS
    if order == "<" and (major, minor) == (4, 0):
        return  # the usual superblock: parsed (the zero fields make it corrupt)
    endian = "little-endian" if order == "<" else "big-endian"
    if 1 <= major <= 4:
        # A real old or big-endian squashfs: said exactly, and not corrupt.
        assert result.error is None
        assert result.not_image == f"squashfs {major}.{minor}, {endian}"
    else:
        assert (
            result.error == f"squashfs magic ({endian}) with an impossible version {major}.{minor}"
        )


@given(st.binary(min_size=1, max_size=2048))
@fuzz
def test_random_tar_headers(rest):
    header = bytearray(rest.ljust(512, b"\0"))
    header[257:263] = b"ustar\0"
    # A valid checksum gets random headers past tarfile's first check.
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    probe_bytes(bytes(header) + rest[512:])


@pytest.mark.tools
@pytest.mark.parametrize("fixture", FIXTURES)
@given(data=st.data())
@fuzz
def test_byte_flips_in_real_headers(request, fixture, data):
    original = request.getfixturevalue(fixture).read_bytes()
    flips = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, min(len(original), MAX_HEADER_BYTES) - 1), st.integers(0, 255)
            ),
            min_size=1,
            max_size=8,
        )
    )
    mutated = bytearray(original)
    for position, value in flips:
        mutated[position] = value
    probe_bytes(bytes(mutated))


# Headers that lie.


def patched(data: bytes, fmt: str, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# Offsets of SIF global header fields.
DFREE, DTOTAL, DESCR_OFFSET, DESCR_SIZE = 80, 88, 96, 104
FIRST_DESCRIPTOR = 4096
# Offsets inside a descriptor.
D_OFFSET, D_SIZE = 17, 25


@pytest.mark.tools
@pytest.mark.parametrize(
    ("fmt", "offset", "value", "reason"),
    [
        ("<q", DTOTAL, 2**62, f"header claims {2**62} descriptors but the descriptor area"),
        ("<q", DTOTAL, -1, "header claims -1 descriptors"),
        ("<q", DFREE, 49, "header claims 48 descriptors of which 49 are free"),
        ("<q", DESCR_OFFSET, -4096, "descriptor area at offset -4096"),
        ("<q", DESCR_OFFSET, 2**62, "past the end of the file"),
        ("<q", DESCR_SIZE, -1, "is impossible"),
        ("<q", DESCR_SIZE, 585, "holds only 1"),
        ("<q", FIRST_DESCRIPTOR + D_OFFSET, -1, "descriptor 1 (deffile) has a negative offset"),
        ("<q", FIRST_DESCRIPTOR + D_SIZE, -5, "descriptor 1 (deffile) has a negative offset"),
        ("<q", FIRST_DESCRIPTOR + D_OFFSET, 2**62, "descriptor 1 (deffile) ends at"),
        ("<q", FIRST_DESCRIPTOR + D_SIZE, 2**62, "past the end of the file"),
    ],
)
def test_lying_sif_headers(probe_sif, fmt, offset, value, reason):
    started = time.perf_counter()
    result = probe_bytes(patched(probe_sif.read_bytes(), fmt, offset, value))
    assert result.format is Format.SIF
    assert result.error is not None and reason in result.error
    assert time.perf_counter() - started < 0.5


@pytest.mark.tools
def test_sif_with_more_descriptors_than_the_budget(tmp_path, probe_sif):
    data = bytearray(probe_sif.read_bytes()[: FIRST_DESCRIPTOR + 48 * 585])
    total = 1000
    struct.pack_into("<qqqq", data, DFREE, total - 3, total, FIRST_DESCRIPTOR, total * 585)
    path = tmp_path / "many.sif"
    path.write_bytes(data)
    with path.open("r+b") as f:
        f.truncate(FIRST_DESCRIPTOR + total * 585 + 4096)
    result = probe_path(str(path))
    assert result.bytes_read <= MAX_HEADER_BYTES
    assert result.note is not None and "read budget reached after" in result.note
    assert result.sif is not None and len(result.sif.descriptors) == 3


def test_squashfs_claiming_2_to_the_63_bytes():
    block = bytearray(96)
    struct.pack_into("<4sIIII6H", block, 0, b"hsqs", 1, 0, 131072, 0, 4, 17, 0, 1, 4, 0)
    struct.pack_into("<Q", block, 40, 2**63)
    result = probe_bytes(bytes(block))
    assert result.format is Format.SQUASHFS
    assert result.error == f"truncated: superblock says {2**63} bytes, file has 96"


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def test_tar_claiming_a_1_gb_index_json():
    layout = tar_header("oci-layout", 2) + b"{}".ljust(512, b"\0")
    data = layout + tar_header("index.json", 1 << 30) + b'{"manifests": []}'.ljust(1024, b"\0")
    started = time.perf_counter()
    result = probe_bytes(data)
    assert time.perf_counter() - started < 0.5
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is not None and "truncated" in result.error


def test_sparse_file_with_a_1_gb_index_json(tmp_path):
    path = tmp_path / "huge.tar"
    layout = tar_header("oci-layout", 2) + b"{}".ljust(512, b"\0")
    path.write_bytes(layout + tar_header("index.json", 1 << 30))
    with path.open("r+b") as f:
        f.truncate(len(layout) + 512 + (1 << 30) + 1024)
    result = probe_path(str(path))
    assert result.bytes_read <= MAX_HEADER_BYTES
    assert result.format is Format.OCI_ARCHIVE
    assert result.error == f"index.json claims {1 << 30} bytes, more than 1 MiB of metadata"


def test_tar_with_more_members_than_the_budget():
    members = [tar_header(f"blobs/sha256/{i:064x}", 0) for i in range(1000)]
    data = b"".join(members) + bytes(1024)
    result = probe_bytes(data)
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is None
    assert result.note is not None and result.note.endswith("before index.json")


def test_deeply_nested_index_json():
    nested = b"[" * 50_000 + b"]" * 50_000
    data = (
        tar_header("oci-layout", 2)
        + b"{}".ljust(512, b"\0")
        + tar_header("index.json", len(nested))
        + nested.ljust(-(-len(nested) // 512) * 512, b"\0")
        + bytes(1024)
    )
    result = probe_bytes(data)
    assert result.format is Format.OCI_ARCHIVE
    # Too big for the budget or too deep for the parser; never a crash.
    assert result.corrupt or result.note


def test_pax_header_claiming_a_huge_size():
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 1 << 40
    data = info.tobuf(format=tarfile.GNU_FORMAT) + b"30 path=" + b"a" * 21 + b"\n" + bytes(1024)
    result = probe_bytes(data)
    assert result.format is Format.UNKNOWN


# The file itself misbehaving.


def test_symlinks_are_refused_not_followed(tmp_path):
    target = tmp_path / "image.sqsh"
    target.write_bytes(b"hsqs" + bytes(92))
    link = tmp_path / "link.sqsh"
    link.symlink_to(target)
    with pytest.raises(OSError):
        probe_path(str(link))


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_path(str(tmp_path / "gone.sif"))


def test_read_errors_propagate():
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        probe_fileobj(Failing(b"x" * 1000), 1000)


@pytest.mark.tools
def test_file_that_shrank_since_the_scanner_saw_it(tmp_path, probe_sif):
    cut = tmp_path / "shrunk.sif"
    cut.write_bytes(probe_sif.read_bytes()[:10_000])
    result = probe_path(str(cut), size=probe_sif.stat().st_size)
    assert result.format is Format.SIF
    assert result.error is not None and "truncated" in result.error
