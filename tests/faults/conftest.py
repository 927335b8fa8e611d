"""Fixtures for the fault suite: a fresh scratch, log and system temp directory per test,
and, for the tests that pull, the session's loopback registry of tests/integration.

The registry fixture (`seeded`) is imported from tests/integration/conftest.py, not
copied: it starts Debian's docker-registry on 127.0.0.1 and pushes the test images.
Tests that pull ask for `registry_env` (tools pointed at it) and, to be caught in the
middle of a pull, `slow` (a throttled proxy in front of it) or `fault_image` (an
image whose squashing takes seconds). Nothing here reaches beyond loopback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.builders import have
from tests.integration.conftest import Seeded, seeded  # noqa: F401 - the session's registry
from tests.integration.images import build_image, small_files
from tests.integration.registry import ThrottledProxy, throttled_mirror

#: An image of 12 MiB of random data: squashing it with xz on one core takes seconds.
FAULT_REF = "imgcache-test/fault-big:1"
FAULT_BYTES = 12 * 1024 * 1024
#: mksquashfs options that make squashing slow enough to be caught in the act.
SLOW_SQUASH = "-comp xz -processors 1"
#: Bytes a second through `slow`: a 3 MiB layer takes about three seconds.
RATE = 1024 * 1024


@pytest.fixture(autouse=True)
def fault_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Per test: job logs, imgcache's scratch and the system temp directory of its own.

    TMPDIR is a directory of its own too, so that a test can tell whether a tool
    staged anything in the system's temp directory instead of imgcache's scratch.
    """
    for name, env in (("state", "XDG_STATE_HOME"), ("work", "IMGCACHE_TMPDIR")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(env, str(tmp_path / name))
    (tmp_path / "systmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "systmp"))
    monkeypatch.delenv("IMGCACHE_NO_LOCKS", raising=False)
    monkeypatch.delenv("IMGCACHE_PASSWORD", raising=False)
    return tmp_path


@pytest.fixture
def registry_env(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Seeded:  # noqa: F811
    """Point every tool at the session's loopback registry (and a private podman store)."""
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(seeded.registries_conf))
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(seeded.storage_conf))
    return seeded


@pytest.fixture(scope="session")
def fault_image(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    """Push `FAULT_REF` into the session's registry once; returns the reference."""
    build = tmp_path_factory.mktemp("fault-image")
    files = {"data/random.bin": os.urandom(FAULT_BYTES), **small_files("fault")}
    seeded.registry.push(build_image(build / "layout", [files]), "latest", FAULT_REF)
    return FAULT_REF


@pytest.fixture
def slow(registry_env: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ThrottledProxy:
    """A throttled mirror of docker.io for this test (a proxy the test may also cut off)."""
    conf = tmp_path / "slow-registries.conf"
    proxy = throttled_mirror(registry_env.registry.port, RATE, conf)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    yield proxy
    proxy.kill()


def need(*tools: str) -> None:
    """Skip (saying which) when a program a fault test drives is missing."""
    missing = [tool for tool in tools if not have(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/test installs them)")
