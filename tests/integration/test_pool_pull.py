"""`imgcache pull --pool NAME --cpu --cuda`: a resource pool's defaults, from the real registry.

master.yaml gives pool `gpu` a CUDA image of its own and says nothing of its CPU image,
which stays the cluster's (here the newest profile's, seeded in the registry).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcache.backends.inventory.model import Format
from tests.integration.conftest import META_REF, Seeded
from tests.integration.helpers import cli, probed

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]


def test_pull_pool_takes_the_pools_image_and_inherits_the_rest(tmp_path: Path, seeded: Seeded):
    root = tmp_path / "sif"
    root.mkdir()
    master = tmp_path / "master.yaml"
    master.write_text(
        f"resource_manager:\n  type: slurm\n  singularity_image_root: {root}\n"
        "resource_pools:\n  - pool_name: gpu\n    task_container_defaults:\n"
        f"      image:\n        cuda: {META_REF}\n"
    )
    args = ["--determined-config", str(master), "--backend", "builtin", "--json"]
    done = cli("pull", "--cpu", "--cuda", "--pool", "gpu", *args)
    assert done.returncode == 0, done.stderr
    cpu, cuda = json.loads(done.stdout)
    cpu_default = seeded.defaults["cpu"]
    assert (cpu["ref"], cpu["label"], cpu["state"]) == (cpu_default, "pool gpu cpu default", "done")
    wanted = (META_REF, "pool gpu cuda default", "done")
    assert (cuda["ref"], cuda["label"], cuda["state"]) == wanted
    assert cuda["path"] == str(root / META_REF)
    assert probed(root / META_REF).format is Format.SIF
    # `defaults` finds the pool's image where the pull put it; the cluster's is another.
    listed = json.loads(cli("defaults", "--json", "--determined-config", str(master)).stdout)
    [pool] = listed["pools"]
    assert [c["state"] for d in pool["defaults"] for c in d["caches"]] == ["present"]
    assert listed["defaults"][1]["image"] == seeded.defaults["cuda"] != META_REF
