"""The demo cache: real tools accept its headers, it costs no disk, it shows every finding."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from imgcache.backends.config import load_settings
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.findings import ORDER
from imgcache.backends.tools.run import run
from tests.builders import have

NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from imgcache.backends.demo import create_demo

    return create_demo(tmp_path_factory.mktemp("demo"), NOW)


@pytest.fixture(scope="module")
def inventory(demo):
    return Catalog(load_settings(config=str(demo))).scan(now=NOW)


def test_demo_shows_every_finding_and_format(inventory):
    # Every finding and format but the two for files from other tools, which the
    # demo's writers cannot make (tests/unit/test_classify.py has them).
    codes = {code for image in inventory.images for code in image.codes}
    assert codes == set(ORDER) - {"not-an-image"}
    formats = {image.probe.format.value for image in inventory.images}
    assert formats == {"sif", "squashfs", "oci-archive", "docker-archive", "unknown"}
    kinds = {image.cache.value for image in inventory.images}
    assert kinds == {"singularity", "enroot", "podman"}


def test_demo_files_are_sparse(demo):
    apparent = used = 0
    for dirpath, _, files in os.walk(demo.parent):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            used += st.st_blocks * 512
    assert apparent > 200 * (1 << 30)
    assert used < 10 * (1 << 20)


def test_demo_defaults_cover_missing_and_present(inventory):
    states = {(p.default.env, p.cache_kind.value): p.state for p in inventory.presence}
    assert states[("cpu", "singularity")] == "present"
    assert states[("rocm", "singularity")] == "missing"
    assert states[("rocm", "podman")] == "present"


def test_demo_ages_follow_now(inventory):
    ages = {image.rel: (NOW - image.stat.mtime) / 86400 for image in inventory.images}
    assert round(ages["determinedai/pytorch-ngc:0.35.1"]) == 20


@pytest.mark.tools
@pytest.mark.skipif(not have("siftool"), reason="needs siftool")
def test_siftool_accepts_demo_sifs(inventory):
    sifs = [i for i in inventory.images if i.probe.format.value == "sif" and not i.probe.corrupt]
    assert sifs
    for image in sifs:
        out = run(["siftool", "list", image.path], capture=True).stdout.decode()
        assert "FS (Squashfs/*System/amd64)" in out


@pytest.mark.tools
@pytest.mark.skipif(not have("unsquashfs"), reason="needs unsquashfs")
def test_unsquashfs_reads_demo_superblocks(inventory):
    squashfs = [
        i for i in inventory.images if i.probe.format.value == "squashfs" and not i.probe.corrupt
    ]
    assert squashfs
    for image in squashfs:
        out = run(["unsquashfs", "-s", image.path], capture=True, check=False).stdout.decode()
        assert "Found a valid SQUASHFS 4:0 superblock" in out
        assert f"Compression {image.probe.compression}" in out


@pytest.mark.tools
@pytest.mark.skipif(not have("tar"), reason="needs GNU tar")
def test_tar_reads_demo_archives(inventory):
    # GNU tar seeks over the sparse layers, as imgcache's probe does; skopeo would
    # copy every (zero) byte of them first.
    archives = [i for i in inventory.images if i.probe.format.value == "oci-archive"]
    assert archives
    for image in archives:
        names = run(["tar", "-tf", image.path], capture=True).stdout.decode().split()
        assert "index.json" in names
        index = run(["tar", "-xOf", image.path, "index.json"], capture=True).stdout
        assert json.loads(index)["manifests"][0]["annotations"]


def test_demo_create_is_repeatable(tmp_path):
    from imgcache.backends.demo import create_demo

    first = create_demo(tmp_path, time.time())
    second = create_demo(tmp_path, time.time())
    assert first == second
    assert (tmp_path / "enroot" / "ubuntu.sqsh").stat().st_size == 30 << 20
