"""The resource pools' default images, run as an admin runs imgcache on a real master.yaml.

Two caches made by mksquashfs and siftool; a master.yaml with two pools, one
setting its own CUDA image. `imgcache defaults` (text and `--json`) shows the
pool's image and where it is; `list` and `gc` treat it as the default it is
(neither superseded nor stale); the pull of the missing defaults includes it; and an
`image` entry imgcache cannot read is a note on the output, not silence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgcache.backends.config import load_settings
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.jobs.queue import missing_default_requests
from tests.builders import have, make_rootfs, make_sif, make_squashfs

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
NGC = "determinedai/pytorch-ngc:0.35.1"
NEXT = "determinedai/pytorch-ngc:0.36.0"
OLD = "determinedai/pytorch-ngc:0.34.0"
#: A year ago: stale for any image that is not a default.
YEAR_AGO = 365 * 86400

pytestmark = pytest.mark.tools


def imgcache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """sif/ holds the cluster's default, the a100 pool's and an older one; enroot/ the
    cluster's only. master.yaml names both caches' images and two pools."""
    if not have("mksquashfs", "siftool"):
        pytest.skip("needs mksquashfs and siftool")
    base = tmp_path_factory.mktemp("pools")
    squashfs = make_squashfs(base / "fs.sqsh", rootfs=make_rootfs(base / "rootfs"))
    sif, enroot = base / "sif", base / "enroot"
    enroot.mkdir()
    for ref in (NGC, NEXT, OLD):
        made = make_sif(sif / ref, squashfs=squashfs)
        old = made.stat().st_mtime - YEAR_AGO
        os.utime(made, (old, old))
    (enroot / "determinedai+pytorch-ngc+0.35.1.sqsh").write_bytes(squashfs.read_bytes())
    (base / "master.yaml").write_text(
        f"""
resource_manager:
  type: slurm
  singularity_image_root: {sif}
task_container_defaults:
  image: {NGC}
resource_pools:
  - pool_name: cpu-only
    task_container_defaults:
      environment_variables: [OMP_NUM_THREADS=4]
      force_pull_image: true
  - pool_name: a100
    task_container_defaults:
      image:
        cuda: {NEXT}
"""
    )
    return base


def where(site: Path) -> list[str]:
    return ["--determined-config", str(site / "master.yaml"), "--cache", f"enroot:{site}/enroot"]


def test_defaults_json_lists_each_pool_and_its_own_image(site):
    result = imgcache("defaults", "--json", *where(site))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    # The cluster's defaults keep their shape: one per environment.
    assert [(d["env"], d["image"], d["pool"]) for d in doc["defaults"]] == [
        ("cpu", NGC, None),
        ("cuda", NGC, None),
        ("rocm", NGC, None),
    ]
    assert {c["state"] for d in doc["defaults"] for c in d["caches"]} == {"present"}
    cpu_only, a100 = doc["pools"]
    assert (cpu_only["name"], cpu_only["images"], cpu_only["defaults"]) == ("cpu-only", {}, [])
    assert (a100["name"], a100["images"]) == ("a100", {"cuda": NEXT})
    [cuda] = a100["defaults"]
    assert (cuda["env"], cuda["image"], cuda["pool"]) == ("cuda", NEXT, "a100")
    assert cuda["ref"] == f"docker.io/{NEXT}"
    assert cuda["origin"].endswith("resource_pools[1] (pool a100) task_container_defaults.image")
    sif, enroot = cuda["caches"]
    assert (sif["state"], sif["path"]) == ("present", str(site / "sif" / NEXT))
    assert (enroot["state"], enroot["path"]) == (
        "missing",
        str(site / "enroot" / "determinedai+pytorch-ngc+0.36.0.sqsh"),
    )
    assert doc["notes"] == []


def test_defaults_text_labels_the_pools_row(site):
    result = imgcache("defaults", *where(site))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The cluster's three environments first, two caches each, then the pool's row.
    start = next(i for i, line in enumerate(lines) if NEXT in line)
    here = str(site / "sif" / NEXT)
    assert lines[start].split() == ["NVIDIA", "(CUDA)", NEXT, "singularity", "present", here]
    assert lines[start + 1].split()[:2] == ["pool", "a100"]
    assert lines[start + 1].split()[-2:] == ["enroot", "missing"]
    assert sum("pool" in line.split()[:1] for line in lines) == 1
    assert not any(line.startswith("note:") for line in lines)


def test_a_pools_image_is_a_default_for_findings_and_gc(site):
    listed = imgcache("list", "--json", *where(site))
    assert listed.returncode == 0, listed.stderr
    findings = {Path(i["path"]).name: i["findings"] for i in json.loads(listed.stdout)}
    # A year untouched, of the defaults' repository: the pool's image stays a default,
    # the older one is superseded and stale.
    assert findings["pytorch-ngc:0.36.0"] == []
    assert findings["pytorch-ngc:0.34.0"] == ["superseded", "stale"]
    plan = imgcache("gc", "--dry-run", "--json", *where(site))
    assert plan.returncode == 0, plan.stderr
    assert [Path(i["path"]).name for i in json.loads(plan.stdout)["items"]] == [
        "pytorch-ngc:0.34.0"
    ]


def test_the_missing_defaults_to_pull_include_the_pools(site):
    settings = load_settings(
        determined_config=str(site / "master.yaml"), cache_args=[f"enroot:{site}/enroot"]
    )
    inventory = Catalog(settings).scan()
    requests = missing_default_requests(inventory.presence)
    assert [(r.kind, r.ref, r.cache.path, r.label) for r in requests] == [
        ("import", NEXT, str(site / "enroot"), "pool a100 cuda default")
    ]


def test_pull_pool_needs_a_known_pool_and_an_environment(site):
    unknown = imgcache("pull", "--cuda", "--pool", "h100", "--to", "enroot", *where(site))
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "imgcache: --pool h100: no such resource pool in master.yaml (known: cpu-only, a100)\n"
    )
    alone = imgcache("pull", "--pool", "a100", *where(site))
    assert alone.returncode == 2
    assert "--pool picks whose defaults" in alone.stderr


def test_an_unreadable_image_entry_is_a_note_in_the_output(site, tmp_path):
    master = tmp_path / "master.yaml"
    master.write_text(
        (site / "master.yaml").read_text().replace(f"cuda: {NEXT}", f"cuda: {{tag: {NEXT}}}")
    )
    args = ["--determined-config", str(master), "--cache", f"enroot:{site}/enroot"]
    result = imgcache("defaults", *args)
    assert result.returncode == 0, result.stderr
    note = (
        f"note: {master}: resource_pools[1] (pool a100) task_container_defaults.image.cuda: "
        "a map, not an image reference; not read, so the defaults shown may not be the ones "
        "jobs get"
    )
    assert result.stdout.splitlines()[-1] == note
    assert NEXT not in result.stdout  # the pool's image could not be read: no row for it
    doc = json.loads(imgcache("defaults", "--json", *args).stdout)
    assert doc["notes"] == [note.removeprefix("note: ")]
    assert doc["pools"][1]["defaults"] == []
