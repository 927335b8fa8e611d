"""The SIF probe against what `siftool list`, `header` and `info` say about the same file."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from imgcache.backends.inventory.model import Format, ProbeResult
from imgcache.backends.inventory.probe import MAX_HEADER_BYTES, probe_fileobj, probe_path
from imgcache.backends.tools.run import run
from tests.builders import SIGN_ENTITY, have, make_sif, truncated_copy

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(not have("siftool", "mksquashfs"), reason="needs siftool and mksquashfs"),
]

#: siftool's type column for the objects the builders add.
SIFTOOL_TYPES = {
    "Def.FILE": "deffile",
    "JSON.Labels": "labels",
    "FS": "partition",
    "Signature": "signature",
}
SIFTOOL_PARTTYPES = {"*System": "primary-system", "System": "system", "Data": "data"}


def siftool_list(path: Path) -> list[dict[str, object]]:
    """Parse `siftool list`: id, group, link, start, end and type of every object."""
    out = run(["siftool", "list", str(path)], capture=True).stdout.decode()
    rows = []
    for line in out.splitlines():
        m = re.match(r"(\d+)\s*\|(\w+)\s*\|(\w+)\s*\|(\d+)-(\d+)\s*\|(.+)$", line)
        if not m:
            continue
        kind = m[6].strip()
        row: dict[str, object] = {
            "id": int(m[1]),
            "group": 0 if m[2] == "NONE" else int(m[2]),
            "link": 0 if m[3] == "NONE" else int(m[3]),
            "start": int(m[4]),
            "end": int(m[5]),
            "type": SIFTOOL_TYPES[kind.split(" ")[0]],
        }
        if fs := re.match(r"FS \((\w+)/(\*?\w+)/(\w+)\)", kind):
            row["fstype"] = fs[1].lower()
            row["parttype"] = SIFTOOL_PARTTYPES[fs[2]]
            row["arch"] = fs[3]
        rows.append(row)
    return rows


def siftool_fields(*argv: str) -> dict[str, str]:
    """Parse the `Key: value` lines of `siftool header` or `siftool info`."""
    out = run(["siftool", *argv], capture=True).stdout.decode()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def probe_ok(path: Path) -> ProbeResult:
    result = probe_path(str(path))
    assert result.format is Format.SIF
    assert result.error is None, result.error
    assert result.sif is not None
    return result


def test_descriptors_match_siftool_list(probe_sif_full):
    sif = probe_ok(probe_sif_full).sif
    assert sif is not None
    listed = siftool_list(probe_sif_full)
    probed = [
        {
            "id": d.id,
            "group": d.group_id,
            "link": d.linked_id,
            "start": d.offset,
            "end": d.offset + d.size,
            "type": d.datatype_name,
            **(
                {"fstype": d.fstype, "parttype": d.parttype, "arch": d.arch}
                if d.datatype_name == "partition"
                else {}
            ),
        }
        for d in sif.descriptors
    ]
    assert probed == listed
    assert [row["type"] for row in listed] == [
        "deffile",
        "labels",
        "partition",
        "partition",
        "partition",
        "signature",
    ]


def test_arm64_primary(tmp_path, probe_squashfs):
    path = make_sif(tmp_path / "arm.sif", squashfs=probe_squashfs, arch=4)
    sif = probe_ok(path).sif
    assert sif is not None and sif.primary is not None
    assert sif.arch == siftool_fields("header", str(path))["Primary Architecture"] == "arm64"
    assert sif.primary.arch == "arm64"


def test_header_matches_siftool_header(probe_sif):
    sif = probe_ok(probe_sif).sif
    assert sif is not None
    header = siftool_fields("header", str(probe_sif))
    assert sif.version == header["Version"]
    assert sif.arch == header["Primary Architecture"]
    assert sif.uuid == header["ID"]
    assert sif.descriptors_total == int(header["Descriptors Total"])
    assert sif.descriptors_free == int(header["Descriptors Free"])
    assert sif.descriptors_total - sif.descriptors_free == len(sif.descriptors)


def test_primary_partition_and_its_compression(probe_sif, probe_squashfs):
    result = probe_ok(probe_sif)
    assert result.sif is not None and result.sif.primary is not None
    primary = result.sif.primary
    info = siftool_fields("info", str(primary.id), str(probe_sif))
    assert info["Partition Type"] == "*System"
    assert info["Filesystem Type"] == "Squashfs"
    assert primary.size == int(info["Size"]) == probe_squashfs.stat().st_size
    # The compression is the one of the squashfs that went in.
    assert result.squashfs == probe_path(str(probe_squashfs)).squashfs
    assert (result.compression, result.data_compressed) == ("zstd", True)
    assert not result.sif.signed
    assert [d.datatype_name for d in result.sif.descriptors] == ["deffile", "labels", "partition"]


def test_signature_matches_siftool_info(probe_sif_full):
    sif = probe_ok(probe_sif_full).sif
    assert sif is not None and sif.primary is not None
    assert sif.signed
    (signature,) = [d for d in sif.descriptors if d.datatype_name == "signature"]
    info = siftool_fields("info", str(signature.id), str(probe_sif_full))
    assert info["Hash Type"] == "SHA-256" and signature.hash_type == "sha256"
    assert info["Entity"] == SIGN_ENTITY
    assert signature.linked_id == int(info["Linked ID"]) == sif.primary.id


def test_several_partitions_primary_is_the_primary_one(probe_sif_full):
    sif = probe_ok(probe_sif_full).sif
    assert sif is not None and sif.primary is not None
    partitions = [d for d in sif.descriptors if d.datatype_name == "partition"]
    assert [p.parttype for p in partitions] == ["primary-system", "data", "data"]
    assert sif.primary == partitions[0]


def test_arch_and_groups(tmp_path, probe_squashfs):
    path = tmp_path / "arm.sif"
    run(["siftool", "new", str(path)], capture=True)
    partition = ["--datatype", "4", "--parttype", "1", "--partfs", "1", "--partarch", "4"]
    run(["siftool", "add", *partition, "--groupid", "1", str(path), str(probe_squashfs)])
    sif = probe_ok(path).sif
    assert sif is not None and sif.primary is not None
    # Only a primary partition sets the header's arch; siftool then prints none.
    assert "Primary Architecture" not in siftool_fields("header", str(path))
    assert sif.arch == "unknown"
    # A plain system partition is the primary one when none is marked primary.
    assert (sif.primary.parttype, sif.primary.arch, sif.primary.group_id) == ("system", "arm64", 1)
    assert siftool_list(path)[0]["group"] == 1


def test_sif_without_partition_is_not_corrupt_and_has_no_root_filesystem(tmp_path):
    path = tmp_path / "empty.sif"
    deffile = tmp_path / "Singularity"
    deffile.write_text("Bootstrap: scratch\n")
    run(["siftool", "new", str(path)], capture=True)
    run(["siftool", "add", "--datatype", "1", str(path), str(deffile)], capture=True)
    result = probe_path(str(path))
    assert (result.format, result.error) == (Format.SIF, None)
    assert result.note == "no root filesystem: the SIF holds deffile"
    assert result.not_image == "a SIF with no root filesystem (it holds deffile)"


def test_truncated_inside_the_partition(tmp_path, probe_sif):
    primary = probe_ok(probe_sif).sif.primary  # type: ignore[union-attr]
    assert primary is not None
    cut_at = primary.offset + 10_000
    result = probe_path(str(truncated_copy(probe_sif, tmp_path / "cut.sif", cut_at)))
    assert result.format is Format.SIF
    assert result.error == (
        f"descriptor {primary.id} (partition) ends at {primary.offset + primary.size}, "
        f"past the end of the file at {cut_at}: truncated"
    )


@pytest.mark.parametrize(
    ("where", "length"),
    [
        ("inside the header", 100),
        ("just after the header", 128),
        ("inside the descriptor area", 4096 + 585 * 2 + 17),
        ("at the start of the data", 32768),
        ("inside the primary superblock", 32768 + 40),
    ],
)
def test_truncated_copies_say_truncated(tmp_path, probe_sif, where, length):
    result = probe_path(str(truncated_copy(probe_sif, tmp_path / "cut.sif", length)))
    assert result.format is Format.SIF, where
    assert result.error is not None and "truncated" in result.error, where
    assert result.bytes_read <= MAX_HEADER_BYTES


def test_partition_squashfs_lying_about_its_size(tmp_path, probe_sif):
    primary = probe_ok(probe_sif).sif.primary  # type: ignore[union-attr]
    assert primary is not None
    data = bytearray(probe_sif.read_bytes())
    # bytes_used sits at offset 40 of the superblock.
    struct.pack_into("<Q", data, primary.offset + 40, primary.size + 1)
    result = probe_fileobj(io.BytesIO(bytes(data)), len(data))
    assert result.error == (
        f"primary partition (descriptor {primary.id}): truncated: superblock says "
        f"{primary.size + 1} bytes, partition has {primary.size}"
    )


def test_partition_that_is_not_squashfs(tmp_path, probe_sif):
    primary = probe_ok(probe_sif).sif.primary  # type: ignore[union-attr]
    assert primary is not None
    data = bytearray(probe_sif.read_bytes())
    data[primary.offset : primary.offset + 4] = b"XXXX"
    result = probe_fileobj(io.BytesIO(bytes(data)), len(data))
    assert result.error is not None and result.error.startswith("primary partition")
    assert "no squashfs superblock" in result.error


def test_five_gib_sparse_sif_reads_under_the_budget(tmp_path, probe_sif):
    big = tmp_path / "big.sif"
    shutil.copyfile(probe_sif, big)
    os.truncate(big, 5 * 1024**3)
    result = probe_path(str(big))
    assert result.error is None
    assert result.compression == "zstd"
    assert result.bytes_read < 64 * 1024
    # A SIF costs its header, its descriptor area and one superblock.
    assert result.bytes_read == 512 + 48 * 585 + 96
