"""Replacing a SIF's primary partition: layout arithmetic on SIFs written by backends.demo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgcache.backends.demo import squashfs_superblock, write_sif
from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.maintenance import MaintenanceError, sifedit


def partition(path: Path, size: int) -> int:
    """A file holding a squashfs superblock for `size` bytes; returns an open descriptor."""
    path.write_bytes(squashfs_superblock(size, comp="zstd").ljust(size, b"\0"))
    return os.open(path, os.O_RDONLY)


def rewrite(tmp_path: Path, source: Path, new_size: int) -> tuple[Path, sifedit.SifLayout]:
    out = tmp_path / "out.sif"
    src = os.open(source, os.O_RDONLY)
    part = partition(tmp_path / "part", new_size)
    dst = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        layout = sifedit.read_layout(src)
        slot = layout.slot_of(3)
        new = sifedit.write_sif(src, layout, slot, part, new_size, dst, now=1234)
        sifedit.check_kept(src, layout, dst, sifedit.read_layout(dst), slot)
        assert sifedit.read_layout(dst) == new
    finally:
        for fd in (src, part, dst):
            os.close(fd)
    return out, new


@pytest.mark.parametrize("new_size", [20_000, 300_000, 2_000_000])
def test_objects_after_the_partition_move_by_whole_pages(tmp_path: Path, new_size: int):
    source = tmp_path / "in.sif"
    write_sif(source, 1 << 20, signed=True)
    before = probe_path(str(source)).sif
    out, layout = rewrite(tmp_path, source, new_size)
    result = probe_path(str(out))
    assert not result.corrupt and result.compression == "zstd"
    after = result.sif
    old = {d.id: d for d in before.descriptors}
    new = {d.id: d for d in after.descriptors}
    assert new[3].offset == old[3].offset and new[3].size == new_size
    shift = old[4].offset - new[4].offset
    assert shift % 4096 == 0
    assert new[4].offset >= new[3].offset + new_size
    assert new[4].offset - (new[3].offset + new_size) < 4096
    assert (new[1], new[2]) == (old[1], old[2])
    assert after.uuid == before.uuid and after.modified == 1234 and after.created == before.created
    assert out.stat().st_size == source.stat().st_size - shift
    # The header's data size still reaches the end of the file.
    data_offset, data_size = layout.header[11], layout.header[12]
    assert data_offset + data_size == out.stat().st_size


def test_without_objects_after_it_the_file_ends_with_the_partition(tmp_path: Path):
    source = tmp_path / "in.sif"
    write_sif(source, 1 << 20)
    out, _ = rewrite(tmp_path, source, 12_345)
    primary = probe_path(str(out)).sif.primary
    assert out.stat().st_size == primary.offset + 12_345


def test_a_changed_object_is_caught(tmp_path: Path):
    source = tmp_path / "in.sif"
    write_sif(source, 1 << 20, signed=True)
    out, _ = rewrite(tmp_path, source, 20_000)
    signature = probe_path(str(out)).sif.descriptors[-1]
    with out.open("r+b") as f:
        f.seek(signature.offset)
        f.write(b"X")
    src, dst = os.open(source, os.O_RDONLY), os.open(out, os.O_RDONLY)
    try:
        old, new = sifedit.read_layout(src), sifedit.read_layout(dst)
        with pytest.raises(MaintenanceError, match="object 4 was not copied intact"):
            sifedit.check_kept(src, old, dst, new, old.slot_of(3))
    finally:
        os.close(src)
        os.close(dst)


def test_an_object_overlapping_the_partition_is_refused(tmp_path: Path):
    source = tmp_path / "in.sif"
    write_sif(source, 1 << 20, signed=True)
    fd = os.open(source, os.O_RDONLY)
    try:
        layout = sifedit.read_layout(fd)
    finally:
        os.close(fd)
    slots = [list(s) for s in layout.slots]
    slots[3][sifedit.D_OFFSET] -= 100  # the signature now starts inside the partition
    broken = sifedit.SifLayout(layout.header, tuple(map(tuple, slots)), layout.size)
    with pytest.raises(MaintenanceError, match="overlaps the primary partition"):
        sifedit.shift_for(broken, broken.slot_of(3), 1000)
