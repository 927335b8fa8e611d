"""Files from other tools, and files that only look like images, are classified right.

An OCI-SIF (SingularityCE 4's `pull --oci`) is a format of its own with the
reference its index carries; a SIF with no partition is not corrupt; an empty,
text, zero-filled or foreign file named like an image, a SIF with no root
filesystem and an old or big-endian squashfs get `not-an-image` with what they
are; a README or notes file is `unknown` and nothing else. gc selects
`not-an-image` files only when asked for that finding by name. Files are made
by the tools that make them (siftool, skopeo, umoci, tar, gzip, cp of a real
executable), except the old squashfs, which no installed tool writes.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.catalog import Catalog, Inventory
from imgcache.backends.inventory.model import CacheKind, Format, Image
from imgcache.backends.maintenance import gc
from imgcache.backends.tools.run import run
from tests.builders import (
    DATATYPE_DEFFILE,
    DATATYPE_LABELS,
    DATATYPE_OCI_ROOT_INDEX,
    DEFFILE,
    LABELS,
    have,
    make_sif_objects,
)
from tests.unit.conftest import OCI_SIF_REF

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not have("siftool", "skopeo", "umoci", "tar", "gzip"),
        reason="needs siftool, skopeo, umoci, tar and gzip",
    ),
]

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
DAY = 86400.0
#: Everything but the OCI-SIF is this old: stale if anything were to make it so.
OLD_DAYS = 400


def old_superblock(order: str, major: int, minor: int) -> bytes:
    """The start of a squashfs 1.x-3.x or big-endian file: magic and version (28-31).
    squashfs-tools 4 writes neither, so the bytes are typed here."""
    block = bytearray(96)
    block[:4] = b"hsqs" if order == "<" else b"sqsh"
    struct.pack_into(order + "HH", block, 28, major, minor)
    return bytes(block)


class Others:
    """A singularity, an enroot and a podman cache of files other tools left there."""

    def __init__(self, base: Path, oci_sif: Path, oci_archive: Path) -> None:
        self.sing, self.enroot, self.podman = base / "sif", base / "enroot", base / "podman"
        sing, enroot, podman = self.sing, self.enroot, self.podman
        for d in (sing / "library", sing / "tools", sing / "old", enroot, podman):
            d.mkdir(parents=True, exist_ok=True)
        # Named like images: Determined's path with a tag, or an image suffix.
        (sing / "library" / "empty:1").touch()
        shutil.copyfile("/bin/true", sing / "tools" / "helper.sif")
        (sing / "library" / "notes:1.sif").write_text("pulled by hand, see the wiki\n")
        with open(sing / "library" / "zeros:1", "wb") as f:
            f.truncate(1 << 20)  # what a writer that has not reached its header leaves
        make_sif_objects(
            sing / "library" / "sigs:1.sif",
            [(DATATYPE_DEFFILE, DEFFILE), (DATATYPE_LABELS, LABELS)],
        )
        make_sif_objects(sing / "library" / "nothing:1.sif", [])
        (sing / "old" / "squash3:1").write_bytes(old_superblock(">", 3, 1) + bytes(4000))
        (enroot / "empty+1.sqsh").touch()
        (enroot / ".ubuntu.sqsh.tmp123").write_bytes(b"")
        readme = base / "README.md"
        readme.write_text("# images\n")
        run(["tar", "-cf", str(podman / "docs.tar"), "-C", str(base), "README.md"])
        # Not named like images: listed, and nothing more.
        shutil.copyfile(readme, sing / "README.md")
        (sing / "notes").write_text("ask before deleting\n")
        shutil.copyfile(readme, enroot / "NOTES.txt")
        # A compressed archive may be an image podman can load: no finding.
        packed = podman / "packed.tar"
        shutil.copyfile(oci_archive, packed)
        run(["gzip", "-f", str(packed)])
        os.rename(podman / "packed.tar.gz", packed)
        # An OCI-SIF, and one whose index names a manifest it does not hold.
        shutil.copyfile(oci_sif, sing / "library" / "alpine:3.19")
        index = json.dumps({"schemaVersion": 2, "manifests": [_missing_manifest()]}).encode()
        make_sif_objects(sing / "library" / "broken:1", [(DATATYPE_OCI_ROOT_INDEX, index)])
        for path in base.rglob("*"):
            if path.is_file() and path.name != "alpine:3.19":
                when = time.time() - OLD_DAYS * DAY
                os.utime(path, (when, when))
        self.specs = (
            CacheSpec(CacheKind.SINGULARITY, str(sing)),
            CacheSpec(CacheKind.ENROOT, str(enroot)),
            CacheSpec(CacheKind.PODMAN, str(podman)),
        )

    def inventory(self) -> Inventory:
        return Catalog(Settings(caches=self.specs, stale_days=90)).scan()

    def cache_args(self) -> list[str]:
        return [f"--cache={s.kind.value}:{s.path}" for s in self.specs]


def _missing_manifest() -> dict[str, object]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "ab" * 32,
        "size": 400,
    }


@pytest.fixture(scope="module")
def others(tmp_path_factory, probe_oci_sif, probe_oci_archive) -> Others:
    return Others(tmp_path_factory.mktemp("others"), probe_oci_sif, probe_oci_archive)


@pytest.fixture(scope="module")
def images(others) -> dict[str, Image]:
    inventory = others.inventory()
    base = os.path.dirname(str(others.sing))
    return {os.path.relpath(i.path, base): i for i in inventory.images}


def reason(image: Image, code: str) -> str:
    return next(f.reason for f in image.findings if f.code == code)


NOT_IMAGES = {
    "sif/library/empty:1": "an empty file, though named like an image",
    "sif/tools/helper.sif": "an ELF executable, though named like an image",
    "sif/library/notes:1.sif": "a text file, though named like an image",
    "sif/library/zeros:1": (
        "no header: its first 512 bytes are all zero (cut short, or still being written), "
        "though named like an image"
    ),
    "sif/library/sigs:1.sif": "no root filesystem: the SIF holds deffile, labels",
    "sif/library/nothing:1.sif": "no root filesystem: the SIF holds nothing",
    "sif/old/squash3:1": (
        "squashfs 3.1, big-endian: the kernel and squashfuse mount squashfs 4.0 "
        "(little-endian) only; rebuild the image with mksquashfs 4"
    ),
    "enroot/empty+1.sqsh": "an empty file, though named like an image",
    "podman/docs.tar": (
        "a tar archive with no image index (index.json or manifest.json), "
        "though named like an image"
    ),
}


def test_files_named_like_images_that_are_none_say_what_they_are(images):
    flagged = {
        rel: reason(i, "not-an-image") for rel, i in images.items() if "not-an-image" in i.codes
    }
    assert flagged == NOT_IMAGES
    for rel in NOT_IMAGES:
        image = images[rel]
        # Nothing else: not corrupt, not stale (400 days old), no reference.
        assert image.codes == ("not-an-image",), (rel, image.codes)
        assert image.probe.error is None
        assert image.ref is None
    assert images["sif/library/sigs:1.sif"].probe.format is Format.SIF
    assert images["sif/old/squash3:1"].probe.format is Format.SQUASHFS
    assert images["sif/library/notes:1.sif"].ref_error == "not an image: a text file"


def test_a_readme_or_notes_file_is_unknown_and_nothing_else(images):
    for rel in ("sif/README.md", "sif/notes", "enroot/NOTES.txt"):
        image = images[rel]
        assert (image.probe.format, image.codes, image.ref) == (Format.UNKNOWN, (), None), rel
    # A compressed archive is not read, and not judged.
    packed = images["podman/packed.tar"]
    assert (packed.probe.format, packed.codes) == (Format.UNKNOWN, ())
    assert packed.probe.note.startswith("compressed data")


def test_a_hidden_temp_of_another_tool_is_incomplete(images):
    temp = images["enroot/.ubuntu.sqsh.tmp123"]
    assert temp.codes == ("incomplete",)
    assert reason(temp, "incomplete") == ".ubuntu.sqsh.tmp123 is named like an unfinished write"


def test_an_oci_sif_is_a_format_of_its_own_with_the_ref_its_index_carries(images, probe_oci_sif):
    image = images["sif/library/alpine:3.19"]
    assert image.probe.format is Format.OCI_SIF
    assert image.probe.error is None and image.codes == ()
    assert image.ref == OCI_SIF_REF
    archive = image.probe.archive
    assert archive is not None and archive.refs == (OCI_SIF_REF,)
    assert (archive.manifests, len(archive.layers)) == (1, 2)
    kinds = [d.datatype_name for d in image.probe.sif.descriptors]
    assert kinds == ["oci-blob"] * 4 + ["oci-root-index"]
    assert image.probe.bytes_read <= 64 * 1024
    # An OCI-SIF whose index names a manifest it does not hold is broken.
    broken = images["sif/library/broken:1"]
    assert broken.probe.format is Format.OCI_SIF
    assert reason(broken, "corrupt") == (
        f"the OCI root index names sha256:{'ab' * 32}, which the SIF does not hold"
    )


def test_gc_takes_not_an_image_files_only_when_asked_by_name(others):
    inventory = others.inventory()
    base = os.path.dirname(str(others.sing))
    now = time.time()

    def planned(codes: tuple[str, ...] | None) -> set[str]:
        plan = gc.plan(inventory, codes=codes, now=now)
        return {os.path.relpath(p, base) for p in plan.paths}

    # The default plan: the broken OCI-SIF and the temp; no OCI-SIF as corrupt,
    # nothing that is merely not an image, no README.
    assert planned(None) == {"sif/library/broken:1", "enroot/.ubuntu.sqsh.tmp123"}
    assert planned(("not-an-image",)) == set(NOT_IMAGES)
    everything = planned(gc.GC_CODES)
    assert not {"sif/README.md", "sif/notes", "enroot/NOTES.txt", "podman/packed.tar"} & everything
    assert "sif/library/alpine:3.19" not in everything


def imgcache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_command_line_lists_and_explains_them(others):
    listed = imgcache("list", "--json", "--finding", "not-an-image", *others.cache_args())
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    base = os.path.dirname(str(others.sing))
    assert {os.path.relpath(r["path"], base) for r in rows} == set(NOT_IMAGES)
    assert all(r["reasons"]["not-an-image"] for r in rows)
    everything = json.loads(imgcache("list", "--json", *others.cache_args()).stdout)
    oci_sif = next(r for r in everything if r["path"].endswith("alpine:3.19"))
    assert (oci_sif["format"], oci_sif["ref"], oci_sif["findings"]) == ("oci-sif", OCI_SIF_REF, [])
    assert oci_sif["archive"]["refs"] == [OCI_SIF_REF]
    explained = imgcache("findings")
    assert explained.returncode == 0 and "not-an-image" in explained.stdout
    plan = imgcache("gc", "--dry-run", "--json", "--finding", "not-an-image", *others.cache_args())
    assert plan.returncode == 0, plan.stderr
    assert {os.path.relpath(i["path"], base) for i in json.loads(plan.stdout)["items"]} == set(
        NOT_IMAGES
    )


def test_add_refuses_a_file_that_is_no_image(others, tmp_path):
    target = tmp_path / "enroot"
    target.mkdir()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    for source, what in (
        (others.sing / "old" / "squash3:1", "squashfs 3.1, big-endian: the kernel"),
        (others.sing / "library" / "sigs:1.sif", "a SIF with no root filesystem"),
    ):
        result = subprocess.run(
            [IMGCACHE, "add", str(source), "ubuntu:3", "--to", f"enroot:{target}"],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        # A file that is no image is bad input: a usage error, saying what it is first.
        assert result.returncode == 2, result.stderr
        assert f"{source} is not an image: {what}" in result.stderr
        assert result.stderr.count("big-endian") <= 1
    assert list(target.iterdir()) == []
