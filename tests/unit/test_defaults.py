"""Default images: shipped profiles, overrides, and presence in caches built by real tools."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from imgcache.backends.config import ConfigError, Settings, parse_cache_arg
from imgcache.backends.inventory import refs
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.defaults import load_profiles, resolve_defaults
from imgcache.backends.tools.run import run
from tests.builders import have, make_oci_archive, make_sif, make_squashfs, truncated_copy

pytestmark = pytest.mark.tools

NGC = "determinedai/pytorch-ngc:0.35.1"
ROCM = "determinedai/environments:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512"


def test_profiles_are_the_three_generations_newest_first():
    profiles = load_profiles()
    assert list(profiles) == [
        "pytorch-ngc-0.35.1",
        "environments-096d730",
        "environments-69f397f",
    ]
    assert profiles["environments-69f397f"].images["rocm"] == (
        "determinedai/environments:rocm-4.2-pytorch-1.9-tf-2.5-rocm-9119094"
    )
    for profile in profiles.values():
        for image in profile.images.values():
            refs.parse(image)  # every shipped default is a valid reference


def test_newest_profile_unless_the_config_chooses():
    profile, defaults = resolve_defaults(Settings())
    assert profile.name == "pytorch-ngc-0.35.1"
    assert {d.env: d.value for d in defaults} == {"cpu": NGC, "cuda": NGC, "rocm": ROCM}
    profile, defaults = resolve_defaults(Settings(profile="environments-096d730"))
    # That generation's pages name no ROCm image: the environment is left out.
    assert [d.env for d in defaults] == ["cpu", "cuda"]


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"known: pytorch-ngc-0\.35\.1, environments-096d730"):
        resolve_defaults(Settings(profile="newest"))


def test_overrides_and_path_defaults():
    settings = Settings(
        default_images={"cuda": "oci-archive:/shared/containers/cuda", "rocm": "Not A Ref"},
        default_origins={"cuda": "master.yaml", "rocm": "config"},
    )
    _, defaults = resolve_defaults(settings)
    by_env = {d.env: d for d in defaults}
    assert by_env["cpu"].origin == "profile pytorch-ngc-0.35.1"
    assert by_env["cuda"].file == "/shared/containers/cuda"
    assert by_env["cuda"].ref is None
    assert by_env["rocm"].error and "lowercase" in by_env["rocm"].error


@pytest.fixture(scope="module")
def squashfs(tmp_path_factory) -> Path:
    if not have("mksquashfs", "siftool"):
        pytest.skip("needs mksquashfs and siftool")
    return make_squashfs(tmp_path_factory.mktemp("sq") / "fs.sqsh")


def _presence(settings: Settings) -> dict[tuple[str, str], tuple[str, str | None, str]]:
    inventory = Catalog(settings).scan()
    return {
        (p.default.env, p.cache_kind.value): (p.state, p.path, p.detail) for p in inventory.presence
    }


def test_presence_in_each_kind_of_cache(tmp_path, squashfs):
    sif_root, enroot_root, podman_root = (tmp_path / n for n in ("sif", "enroot", "podman"))
    (sif_root / "determinedai").mkdir(parents=True)
    enroot_root.mkdir()
    podman_root.mkdir()
    make_sif(sif_root / f"{NGC}.sif", squashfs=squashfs)
    shutil.copy(squashfs, enroot_root / "determinedai+pytorch-ngc+0.35.1.sqsh")
    if not have("skopeo", "umoci"):
        pytest.skip("needs skopeo and umoci")
    make_oci_archive(podman_root / "rocm.tar", ROCM)
    settings = Settings(
        caches=tuple(
            parse_cache_arg(f"{kind}:{root}")
            for kind, root in (
                ("singularity", sif_root),
                ("enroot", enroot_root),
                ("podman", podman_root),
            )
        )
    )
    found = _presence(settings)
    assert found[("cpu", "singularity")][:2] == ("present", f"{sif_root}/{NGC}.sif")
    assert found[("cuda", "enroot")][:2] == (
        "present",
        f"{enroot_root}/determinedai+pytorch-ngc+0.35.1.sqsh",
    )
    assert found[("rocm", "podman")][:2] == ("present", f"{podman_root}/rocm.tar")
    # Missing ones say where the runtime would look.
    assert found[("rocm", "singularity")][:2] == ("missing", f"{sif_root}/{ROCM}")
    assert found[("rocm", "enroot")][:2] == (
        "missing",
        f"{enroot_root}/determinedai+environments+rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512.sqsh",
    )
    assert found[("cpu", "podman")][0] == "missing"


def test_presence_broken_and_elsewhere(tmp_path, squashfs):
    root = tmp_path / "sif"
    (root / "docker.io" / "determinedai").mkdir(parents=True)
    (root / "determinedai").mkdir()
    good = make_sif(tmp_path / "good.sif", squashfs=squashfs)
    # The CPU default stored under its fully qualified name: Determined looks up the
    # name as written in the config, so the launcher will not find it.
    shutil.copy(good, root / "docker.io" / NGC)
    truncated_copy(good, root / ROCM, os.path.getsize(good) // 2)
    settings = Settings(caches=(parse_cache_arg(f"singularity:{root}"),))
    found = _presence(settings)
    state, path, detail = found[("cpu", "singularity")]
    assert state == "elsewhere"
    assert path == f"{root}/docker.io/{NGC}"
    assert f"the runtime looks for {NGC}" in detail
    state, path, detail = found[("rocm", "singularity")]
    assert (state, path) == ("broken", f"{root}/{ROCM}")
    assert "truncated" in detail


def test_path_default_inside_a_cache(tmp_path, squashfs):
    root = tmp_path / "podman"
    root.mkdir()
    if not have("skopeo", "umoci"):
        pytest.skip("needs skopeo and umoci")
    make_oci_archive(root / "cuda-11.3", "determinedai/environments:cuda-11.3")
    settings = Settings(
        caches=(parse_cache_arg(f"podman:{root}"), parse_cache_arg(f"enroot:{tmp_path}/e")),
        default_images={"cuda": f"oci-archive:{root}/cuda-11.3", "cpu": f"{root}/missing.tar"},
    )
    (tmp_path / "e").mkdir()
    found = _presence(replace(settings))
    assert found[("cuda", "podman")][0] == "present"
    assert found[("cpu", "podman")][0] == "missing"
    # A file default lies in one cache only; the others cannot hold it.
    assert found[("cuda", "enroot")][0] == "n/a"


def test_a_default_path_holding_no_image_is_broken_and_says_what_is_there(tmp_path, squashfs):
    # What Determined's launcher would hand the runtime: an empty file left by a
    # copy that failed, a SIF with nothing to run, a FIFO it would block on.
    root = tmp_path / "sif"
    (root / "determinedai").mkdir(parents=True)
    (root / NGC).touch()
    run(["siftool", "new", str(root / ROCM)], capture=True)
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    os.mkfifo(enroot / "determinedai+pytorch-ngc+0.35.1.sqsh")
    settings = Settings(
        caches=(parse_cache_arg(f"singularity:{root}"), parse_cache_arg(f"enroot:{enroot}"))
    )
    found = _presence(settings)
    assert found[("cpu", "singularity")] == ("broken", f"{root}/{NGC}", "empty file")
    state, _, detail = found[("rocm", "singularity")]
    assert (state, detail) == ("broken", "no root filesystem: the SIF holds nothing")
    state, path, detail = found[("cpu", "enroot")]
    assert (state, path) == ("broken", f"{enroot}/determinedai+pytorch-ngc+0.35.1.sqsh")
    assert detail.startswith("a FIFO (named pipe), not a regular file")
