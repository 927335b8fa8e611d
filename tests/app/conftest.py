"""Fixtures for the app tests: caches made by the real tools, the demo, a frozen clock.

`real_images` builds one SIF, squashfs files and archives per session with
mksquashfs, siftool, umoci and skopeo; `real_cache` copies them into three fresh
caches per test (so a test may add and delete files). Snapshot tests use the demo
cache at a fixed path with a frozen clock and fixed free space, so every run draws
the same screen; a lock keeps parallel workers from rewriting it under each other.

Every app opens a job queue: its logs and scratch space go to the test's own
directory. The job tests pull from the real registry of tests/integration
(`seeded`: a docker-registry on 127.0.0.1 seeded with small images under the
default images' real names, mirrored for docker.io by a registries.conf).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imgcache.backends.config import Settings, load_settings
from imgcache.backends.demo import create_demo
from tests.app.helpers import DEFAULT_REF, FIXED_NOW, ROCM_REF, SNAPSHOT_DIR, pinned_owner
from tests.builders import (
    have,
    make_docker_archive,
    make_oci_archive,
    make_oci_layout,
    make_rootfs,
    make_sif,
    make_squashfs,
    truncated_copy,
)

# The integration tests' registry, for the app's job tests (a session fixture).
from tests.integration.conftest import Seeded, seeded  # noqa: F401

TOOLS = ("mksquashfs", "siftool", "umoci", "skopeo")


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Times on screen are local; UTC makes them the same on every machine.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def _job_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Job logs and scratch directories of this test's app, not the user's.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("IMGCACHE_TMPDIR", str(work))
    monkeypatch.delenv("IMGCACHE_PASSWORD", raising=False)
    monkeypatch.delenv("IMGCACHE_NO_LOCKS", raising=False)


@pytest.fixture
def registry(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Seeded:  # noqa: F811
    """Every tool pointed at the test registry (docker.io mirrored to it)."""
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(seeded.registries_conf))
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(seeded.storage_conf))
    return seeded


@dataclass(frozen=True)
class RealImages:
    """Image files written by the real tools, once per session."""

    zstd: Path
    gzip: Path
    nod: Path
    lzo: Path
    sif: Path
    oci: Path
    docker: Path


@pytest.fixture(scope="session")
def real_images(tmp_path_factory: pytest.TempPathFactory) -> RealImages:
    """A zstd, a gzip, a -noD and an lzo squashfs, a SIF, an oci- and a docker-archive."""
    if not have(*TOOLS):
        pytest.skip(f"needs {', '.join(TOOLS)}")
    base = tmp_path_factory.mktemp("real-images")
    rootfs = make_rootfs(base / "rootfs")
    zstd = make_squashfs(base / "zstd.sqsh", rootfs=rootfs)
    layout = make_oci_layout(base / "layout", layers=2)
    return RealImages(
        zstd=zstd,
        gzip=make_squashfs(base / "gzip.sqsh", comp="gzip", rootfs=rootfs),
        nod=make_squashfs(base / "nod.sqsh", options=["-noD"], rootfs=rootfs),
        lzo=make_squashfs(base / "lzo.sqsh", comp="lzo", rootfs=rootfs),
        sif=make_sif(base / "image.sif", squashfs=zstd, signature=True, extra_partitions=1),
        oci=make_oci_archive(base / "image.oci.tar", f"docker.io/{DEFAULT_REF}", layout=layout),
        docker=make_docker_archive(
            base / "image.docker.tar", "quay.io/jupyter/scipy:1", layout=layout
        ),
    )


@dataclass(frozen=True)
class RealCache:
    """Three caches filled with copies of the real images, and their settings."""

    base: Path
    sif: Path
    enroot: Path
    podman: Path
    config: Path

    def settings(self, keys: dict[str, str] | None = None) -> Settings:
        """Settings from the cache's config file, with `[keys]` remaps if given."""
        if keys:
            extra = "\n[keys]\n" + "".join(f'{k} = "{v}"\n' for k, v in keys.items())
            path = self.base / "config-keys.toml"
            path.write_text(self.config.read_text() + extra)
            return load_settings(config=str(path))
        return load_settings(config=str(self.config))


def _place(source: Path, dest: Path, age_days: float) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    when = FIXED_NOW - age_days * 86400
    os.utime(dest, (when, when))
    return dest


@pytest.fixture
def real_cache(tmp_path: Path, real_images: RealImages) -> RealCache:
    """sif/, enroot/ and podman/ caches of real images, with defaults that match some."""
    sif, enroot, podman = tmp_path / "sif", tmp_path / "enroot", tmp_path / "podman"
    _place(real_images.sif, sif / DEFAULT_REF, 10)
    _place(real_images.sif, sif / "library/ubuntu:22.04", 200)
    truncated_copy(real_images.sif, sif / "broken/image:1", 6000)
    _place(real_images.zstd, enroot / "determinedai+pytorch-ngc+0.35.1.sqsh", 5)
    _place(real_images.nod, enroot / "nvidia+pytorch+25.09-py3.sqsh", 30)
    _place(real_images.lzo, enroot / "ubuntu+22.04.sqsh", 3)
    _place(real_images.gzip, enroot / "alpine+3.19.sqsh", 1)
    _place(real_images.oci, podman / "pytorch-ngc.tar", 2)
    _place(real_images.docker, podman / "scipy.tar", 400)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[cache]]\nkind = "apptainer"\npath = "{sif}"\n\n'
        f'[[cache]]\nkind = "enroot"\npath = "{enroot}"\n\n'
        f'[[cache]]\nkind = "podman"\npath = "{podman}"\n\n'
        f'[defaults]\ncpu = "{DEFAULT_REF}"\ncuda = "{DEFAULT_REF}"\nrocm = "{ROCM_REF}"\n'
    )
    return RealCache(tmp_path, sif, enroot, podman, config)


@pytest.fixture
def demo_settings() -> Iterator[Settings]:
    """The demo cache at its fixed path, rewritten for this test and held while it runs."""
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with open(SNAPSHOT_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            # Rewritten every time: reading headers moves atimes, which findings use.
            config = create_demo(SNAPSHOT_DIR / "demo", FIXED_NOW)
            with pinned_owner():
                yield load_settings(config=str(config))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
