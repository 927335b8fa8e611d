"""compress on SIF files: only the primary partition changes; siftool sees the rest as before."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imgcache.backends.config import Settings
from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.maintenance.compress import compress_image
from tests.builders import have, make_rootfs, make_sif, make_squashfs

pytestmark = pytest.mark.tools


@pytest.fixture(autouse=True)
def jobs_env() -> None:
    """Shadow the job tests' autouse fixture of this name: no registry is needed here."""


def siftool(*args: str) -> str:
    return subprocess.run(["siftool", *args], capture_output=True, text=True, check=True).stdout


def rows(path: Path) -> list[list[str]]:
    """`siftool list` rows without the position column."""
    out = []
    for line in siftool("list", str(path)).splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            out.append([cells[0], cells[1], cells[2], cells[4]])
    return out


def info(path: Path, ident: int, drop: tuple[str, ...]) -> list[str]:
    return [
        line
        for line in siftool("info", str(ident), str(path)).splitlines()
        if not line.strip().startswith(drop)
    ]


def header(path: Path) -> list[str]:
    drop = ("Modified At", "Data Size")
    return [line for line in siftool("header", str(path)).splitlines() if not line.startswith(drop)]


def ids(path: Path) -> list[int]:
    return [int(r[0]) for r in rows(path)]


def listing(path: Path) -> list[str]:
    primary = probe_path(str(path)).sif.primary
    argv = ["unsquashfs", "-lln", "-o", str(primary.offset), str(path)]
    lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    # Directory sizes depend on the builder; names, modes, owners, sizes of the rest must not.
    return [" ".join(l.split()[:2] + l.split()[3 if l.startswith("d") else 2 :]) for l in lines]  # noqa: E741


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have("siftool", "mksquashfs", "sqfs2tar", "tar2sqfs"):
        pytest.skip("needs siftool, mksquashfs and squashfs-tools-ng")
    base = tmp_path_factory.mktemp("sif")
    rootfs = make_rootfs(base / "rootfs")
    make_squashfs(base / "raw.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs)
    return base


def build(parts: Path, dest: Path, **kwargs) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return make_sif(dest, squashfs=parts / "raw.sqsh", **kwargs)


def check_same_objects(before: Path, after: Path) -> None:
    assert rows(after) == rows(before)
    assert header(after) == header(before)
    primary = probe_path(str(before)).sif.primary.id
    for ident in ids(before):
        if ident == primary:
            drop = ("Offset", "Size", "Modified At")
            assert info(after, ident, drop) == info(before, ident, drop)
            continue
        assert info(after, ident, ("Offset",)) == info(before, ident, ("Offset",))
        old = subprocess.run(["siftool", "dump", str(ident), str(before)], capture_output=True)
        new = subprocess.run(["siftool", "dump", str(ident), str(after)], capture_output=True)
        assert old.returncode == new.returncode == 0
        assert old.stdout == new.stdout, f"object {ident} differs"
    assert listing(after) == listing(before)
    result = probe_path(str(after))
    assert not result.corrupt
    assert (result.compression, result.data_compressed) == ("zstd", True)


def test_a_signed_sif_is_refused_unless_allowed(parts, tmp_path):
    path = build(parts, tmp_path / "cache" / "lib" / "app:1.sif", signature=True)
    data = path.read_bytes()
    with pytest.raises(MaintenanceError, match="signature will no longer verify") as caught:
        compress_image(str(tmp_path / "cache"), str(path), Settings())
    assert caught.value.reason == "signed"
    assert path.read_bytes() == data


def test_every_other_descriptor_and_object_is_kept(parts, tmp_path):
    path = build(parts, tmp_path / "cache" / "app:1.sif", signature=True, extra_partitions=2)
    original = shutil.copy2(path, tmp_path / "original.sif")
    result = compress_image(str(path.parent), str(path), Settings(), allow_signed=True)
    assert result.replaced and result.format == "sif"
    assert result.after < result.before == os.path.getsize(original)
    assert "signature no longer verifies" in result.note
    check_same_objects(Path(original), path)
    # The objects after the partition moved down and kept their 4096-byte alignment.
    for d in probe_path(str(path)).sif.descriptors:
        if d.datatype_name == "partition":
            assert d.offset % 4096 == 0


def test_a_sif_whose_partition_is_the_last_object(parts, tmp_path):
    path = build(parts, tmp_path / "cache" / "plain.sif")
    original = shutil.copy2(path, tmp_path / "original.sif")
    result = compress_image(str(path.parent), str(path), Settings())
    assert result.replaced
    check_same_objects(Path(original), path)


def test_descriptor_ids_with_gaps_are_kept(parts, tmp_path):
    path = build(parts, tmp_path / "cache" / "gaps.sif", extra_partitions=1)
    siftool("del", "2", str(path))  # the labels: ids are now 1, 3, 4
    original = shutil.copy2(path, tmp_path / "original.sif")
    assert ids(path) == [1, 3, 4]
    result = compress_image(str(path.parent), str(path), Settings())
    assert result.replaced and ids(path) == [1, 3, 4]
    check_same_objects(Path(original), path)


def test_an_ext3_primary_partition_is_refused(parts, tmp_path):
    path = tmp_path / "cache" / "ext3.sif"
    path.parent.mkdir()
    siftool("new", str(path))
    blob = tmp_path / "fs.img"
    blob.write_bytes(b"\0" * 8192)
    ext3_primary = ["--datatype", "4", "--partfs", "2", "--parttype", "2", "--partarch", "2"]
    siftool("add", *ext3_primary, str(path), str(blob))
    with pytest.raises(MaintenanceError, match="primary partition is ext3"):
        compress_image(str(path.parent), str(path), Settings())
