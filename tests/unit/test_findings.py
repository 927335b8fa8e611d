"""Every finding rule on images made with the real tools, with the reasons users read.

The images come from mksquashfs and siftool with the options that cause each
finding (enroot's `-comp lzo -noD`, `-noI -noD -noF`, a SIF cut short, ...); the
scanner lists them and `findings.evaluate` judges them at a fixed `now`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.defaults import resolve_defaults
from imgcache.backends.inventory.findings import VOCABULARY, evaluate
from imgcache.backends.inventory.model import CacheKind, Image
from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.inventory.scan import Scanner
from tests.builders import have, make_sif, make_squashfs, truncated_copy

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(not have("mksquashfs", "siftool"), reason="needs mksquashfs and siftool"),
]

DAY = 86400
#: A fixed "now" (June 2025): every age below is relative to it.
NOW = 1_750_000_000
STALE_DAYS = 90
REPO = "determinedai/environments"
DEFAULT_TAG = "cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"
DEFAULTS = {
    "cpu": f"{REPO}:py-3.8-pytorch-1.10-tf-2.8-cpu-096d730",
    "cuda": f"{REPO}:{DEFAULT_TAG}",
    "rocm": f"{REPO}:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, probe_rootfs: Path) -> dict[str, Path]:
    """One image per way of building it that a rule looks at."""
    out = tmp_path_factory.mktemp("findings")

    def sqsh(name: str, comp: str, *options: str) -> Path:
        return make_squashfs(out / name, comp=comp, options=list(options), rootfs=probe_rootfs)

    images = {
        "zstd": sqsh("zstd.sqsh", "zstd"),
        "noD": sqsh("noD.sqsh", "gzip", "-noD"),
        "enroot": sqsh("enroot.sqsh", "lzo", "-noD"),
        "lzo": sqsh("lzo.sqsh", "lzo"),
        "raw": sqsh("raw.sqsh", "gzip", "-noI", "-noD", "-noF"),
    }
    images["sif"] = make_sif(out / "zstd.sif", squashfs=images["zstd"])
    images["sif_noD"] = make_sif(out / "noD.sif", squashfs=images["noD"])
    return images


def judge(root: Path, kind: CacheKind = CacheKind.SINGULARITY) -> dict[str, Image]:
    """Scan the cache at `root` and evaluate it against DEFAULTS at NOW, by relative path."""
    scanner = Scanner([CacheSpec(kind, str(root))])
    scanner.scan()
    _, defaults = resolve_defaults(Settings(default_images=DEFAULTS))
    images = evaluate(scanner.images(), defaults, now=NOW, stale_days=STALE_DAYS)
    return {image.rel: image for image in images}


def put(source: Path, dest: Path, *, mtime: float = NOW - DAY, atime: float | None = None) -> Path:
    """Copy an image into a cache, recently modified unless told otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    os.utime(dest, (mtime if atime is None else atime, mtime))
    return dest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A cache root others may enter (pytest's tmp_path itself is 0700)."""
    path = tmp_path / "cache"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def reasons(image: Image) -> dict[str, str]:
    return {f.code: f.reason for f in image.findings}


def test_compression_rules_name_what_mksquashfs_was_told(root, built):
    put(built["zstd"], root / "hpc" / "zstd:1")
    put(built["noD"], root / "hpc" / "nod:1")
    put(built["lzo"], root / "hpc" / "lzo:1")
    put(built["raw"], root / "hpc" / "raw:1")
    put(built["sif_noD"], root / "hpc" / "sif-nod:1")
    put(built["sif"], root / "hpc" / "sif:1")
    found = judge(root)
    assert reasons(found["hpc/zstd:1"]) == {}
    assert reasons(found["hpc/sif:1"]) == {}
    assert reasons(found["hpc/nod:1"]) == {
        "uncompressed": "it stores data blocks uncompressed (-noD)"
    }
    assert reasons(found["hpc/lzo:1"]) == {"legacy-codec": "it is compressed with lzo"}
    assert reasons(found["hpc/raw:1"]) == {
        "uncompressed": "it was built with everything uncompressed"
    }
    assert reasons(found["hpc/sif-nod:1"]) == {
        "uncompressed": "its primary partition stores data blocks uncompressed (-noD)"
    }
    advice = found["hpc/nod:1"].findings[0].advice
    assert (
        advice == "Recompress with zstd (imgcache compress): the pyxis docs measured 18G -> 7.1G."
    )


def test_enroots_default_squashfs_is_uncompressed_and_legacy_in_that_order(root, built):
    put(built["enroot"], root / "nvidia+pytorch+25.09-py3.sqsh")
    image = judge(root, CacheKind.ENROOT)["nvidia+pytorch+25.09-py3.sqsh"]
    assert image.codes == ("uncompressed", "legacy-codec")
    assert [f.reason for f in image.findings] == [
        "it stores data blocks uncompressed (-noD)",
        "it is compressed with lzo",
    ]
    assert image.findings[1].advice == VOCABULARY["legacy-codec"].advice


def test_unshared_by_file_mode_and_by_a_closed_directory(root, built):
    put(built["sif"], root / "hpc" / "private:1").chmod(0o600)
    put(built["sif"], root / "hpc" / "group:1").chmod(0o604)
    put(built["sif"], root / "hpc" / "shared:1").chmod(0o644)
    put(built["sif"], root / "team" / "deep" / "model:1")
    (root / "team").chmod(0o700)
    (root / "README.txt").write_text("not an image")
    (root / "README.txt").chmod(0o600)
    found = judge(root)
    assert reasons(found["hpc/private:1"]) == {
        "unshared": "mode 0600: others cannot read it, so users' jobs cannot open it"
    }
    assert reasons(found["hpc/group:1"]) == {
        "unshared": "mode 0604: the group cannot read it, so users' jobs cannot open it"
    }
    assert reasons(found["hpc/shared:1"]) == {}
    assert reasons(found["team/deep/model:1"]) == {
        "unshared": "directory team cannot be entered by other users"
    }
    # A file that is no image and maps to no reference is nobody's business.
    assert "unshared" not in found["README.txt"].codes


def test_a_closed_cache_root_blocks_everything(tmp_path, built):
    root = tmp_path / "cache"
    put(built["sif"], root / "hpc" / "model:1")
    root.chmod(0o750)
    found = judge(root)
    assert reasons(found["hpc/model:1"]) == {
        "unshared": "the cache root cannot be entered by other users"
    }


def test_a_sif_cut_short_is_corrupt_and_says_where(root, built):
    primary = probe_path(str(built["sif"])).sif.primary
    cut = primary.offset + 4096
    truncated_copy(built["sif"], root / "hpc" / "cut:1", cut)
    found = judge(root)
    end = primary.offset + primary.size
    assert reasons(found["hpc/cut:1"]) == {
        "corrupt": f"descriptor {primary.id} (partition) ends at {end}, "
        f"past the end of the file at {cut}: truncated"
    }
    assert found["hpc/cut:1"].findings[0].advice == VOCABULARY["corrupt"].advice


def test_a_temporary_file_is_incomplete_and_no_duplicate(root, built):
    put(built["sif"], root / "hpc" / "model:1")
    put(built["sif"], root / "hpc" / ".imgcache-x.tmp")
    found = judge(root)
    temp = found["hpc/.imgcache-x.tmp"]
    assert reasons(temp) == {"incomplete": ".imgcache-x.tmp is named like an unfinished write"}
    assert (temp.ref, temp.ref_error) == (None, "an unfinished write, not an image")
    assert reasons(found["hpc/model:1"]) == {}


def test_the_same_reference_twice_makes_the_older_copy_the_one_duplicate(root, built):
    put(built["sif"], root / "hpc" / "lammps:2024", mtime=NOW - 3 * DAY)
    put(built["sif"], root / "hpc" / "lammps:2024.sif", mtime=NOW - 10 * DAY)
    found = judge(root)
    assert found["hpc/lammps:2024"].ref == found["hpc/lammps:2024.sif"].ref
    assert reasons(found["hpc/lammps:2024.sif"]) == {
        "duplicate": "the same image is also stored as hpc/lammps:2024"
    }
    assert reasons(found["hpc/lammps:2024"]) == {}
    assert sum("duplicate" in image.codes for image in found.values()) == 1


def test_superseded_and_stale_against_the_defaults_at_a_fixed_now(root, built):
    old = NOW - 400 * DAY
    # The current default: never superseded, never stale, however old.
    put(built["sif"], root / f"{REPO}:{DEFAULT_TAG}", mtime=old)
    # An older tag of the default's repository, in use last week.
    put(built["sif"], root / f"{REPO}:cuda-10.2-pytorch-1.7-gpu-0.17.0")
    # Written long ago, read 120 days ago: stale.
    put(built["sif"], root / "hpc" / "old:1", mtime=old, atime=NOW - 120 * DAY)
    # Written long ago but read yesterday: a job still uses it.
    put(built["sif"], root / "hpc" / "read:1", mtime=old, atime=NOW - DAY)
    # Modified 89 days ago: just inside the threshold.
    put(built["sif"], root / "hpc" / "recent:1", mtime=NOW - 89 * DAY)
    (root / "notes.txt").write_text("no image")
    os.utime(root / "notes.txt", (old, old))
    found = judge(root)
    assert reasons(found[f"{REPO}:{DEFAULT_TAG}"]) == {}
    assert reasons(found[f"{REPO}:cuda-10.2-pytorch-1.7-gpu-0.17.0"]) == {
        "superseded": "a default image of the same repository has another tag"
    }
    assert reasons(found["hpc/old:1"]) == {
        "stale": "neither modified nor read for 4 months (threshold 90 days)"
    }
    assert reasons(found["hpc/read:1"]) == {}
    assert reasons(found["hpc/recent:1"]) == {}
    assert "stale" not in found["notes.txt"].codes
