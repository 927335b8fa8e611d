"""Fixtures for the job tests: one real registry per session, seeded with small images.

The registry (Debian's `docker-registry`) listens on 127.0.0.1 only. A
registries.conf, handed to every tool through CONTAINERS_REGISTRIES_CONF, makes
it a mirror of docker.io, so default images pull by their real names
(`determinedai/...`); docker.io's own location is pointed at a closed local
port, so nothing ever leaves the machine even when the mirror fails. Podman
gets a private vfs storage through CONTAINERS_STORAGE_CONF.

Every test module here is in the xdist group "registry", so one worker runs
them all against one registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.defaults import load_profiles
from imgcache.backends.inventory.model import CacheKind
from tests.builders import have
from tests.integration.images import build_image, small_files
from tests.integration.registry import Registry, free_port

TOOLS = ("docker-registry", "skopeo", "umoci", "mksquashfs", "unsquashfs", "siftool")
#: A name with entrypoint, env, labels, volume, workdir and a whiteout, via the mirror.
META_REF = "imgcache-test/meta:1"
#: A few MB of random data in one layer, for pulls that must take a while.
BIG_REF = "imgcache-test/big:1"
BIG_BYTES = 3 * 1024 * 1024


@dataclass(frozen=True)
class Seeded:
    """The session's registry and what was pushed into it."""

    registry: Registry
    registries_conf: Path
    storage_conf: Path
    defaults: dict[str, str]
    """Environment -> default image name of the newest profile, all pushed."""
    direct_ref: str
    """An image addressed at the registry itself (127.0.0.1:port/...)."""


def need_tools() -> None:
    """Skip (with the reason) when a tool the job tests drive is missing."""
    missing = [tool for tool in TOOLS if not have(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/test installs them)")


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Start the registry and push the test images (once per session)."""
    need_tools()
    base = tmp_path_factory.mktemp("registry")
    registry = Registry(base / "reg")
    build = base / "build"
    build.mkdir()
    newest = next(iter(load_profiles().values()))
    defaults = dict(newest.images)
    for env, name in sorted(set((e, n) for e, n in defaults.items())):
        layout = build_image(build / f"default-{env}", [small_files(env)], cmd=("/bin/hello",))
        registry.push(layout, "latest", name)
    meta = build_image(
        build / "meta",
        [small_files("meta"), {"etc/remove-me": b"gone\n", "opt/app/run": b"#!/bin/sh\n"}],
        whiteouts=["/etc/remove-me"],
        env=("PATH=/opt/app:/usr/bin:/bin", "GREETING=hello world", 'QUOTE=a"b$c'),
        entrypoint=("/opt/app/run", "--flag"),
        cmd=("serve", "it's"),
        labels={"org.example.team": "hpc", "maintainer": "admins"},
        volumes=("/data",),
        workdir="/work",
    )
    registry.push(meta, "latest", META_REF)
    big = build_image(
        build / "big", [{"data/random.bin": os.urandom(BIG_BYTES)}, small_files("big")]
    )
    registry.push(big, "latest", BIG_REF)
    direct = registry.push(meta, "latest", "direct/meta:1")
    conf = base / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = ["docker.io"]\n\n'
        "[[registry]]\n"
        'prefix = "docker.io"\n'
        f'location = "127.0.0.1:{free_port()}"\n'
        "insecure = true\n\n"
        "[[registry.mirror]]\n"
        f'location = "{registry.address}"\n'
        "insecure = true\n\n"
        "[[registry]]\n"
        f'location = "{registry.address}"\n'
        "insecure = true\n"
    )
    storage = base / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{base}/podman/graph"\n'
        f'runroot = "{base}/podman/run"\n'
    )
    yield Seeded(registry, conf, storage, defaults, direct)
    registry.stop()


@pytest.fixture(autouse=True)
def jobs_env(seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every tool at the test registry, and keep logs and scratch space per test."""
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(seeded.registries_conf))
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(seeded.storage_conf))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("IMGCACHE_TMPDIR", str(work))
    monkeypatch.delenv("IMGCACHE_NO_LOCKS", raising=False)
    monkeypatch.delenv("IMGCACHE_PASSWORD", raising=False)
    return tmp_path


@pytest.fixture
def caches(tmp_path: Path) -> Settings:
    """Settings with one empty cache of each kind under the test's directory."""
    specs = []
    for kind in CacheKind:
        root = tmp_path / kind.value
        root.mkdir()
        specs.append(CacheSpec(kind, str(root)))
    return Settings(caches=tuple(specs))
