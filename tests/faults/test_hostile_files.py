"""Hostile files planted in a shared cache: FIFOs, sockets and device nodes.

Each is made for real (`os.mkfifo`, a bound AF_UNIX socket, `os.mknod` as root)
under names an image would have and under other names. The scan lists every one
with `not-an-image` saying what it is, never opens any of them (a FIFO blocks
whoever opens it for reading, a device read reads the device), and nothing that
acts on findings touches them. A FIFO at a default image's path makes `defaults`
say the default is there but broken: the runtime would block on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.catalog import Catalog, Inventory
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.maintenance import gc
from imgcache.backends.maintenance.perms import plan_permissions

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
FIFO_REASON = (
    "a FIFO (named pipe), not a regular file: imgcache never opens it "
    "(a runtime opening it would block)"
)


@contextlib.contextmanager
def bound_socket(path: Path) -> Iterator[None]:
    """A live AF_UNIX socket at `path`, as an agent or a daemon leaves one."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        yield
    finally:
        sock.close()


def mknod(path: Path, kind: int, major: int, minor: int) -> None:
    try:
        os.mknod(path, kind | 0o600, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("making device nodes needs CAP_MKNOD (run as root)")


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A singularity and an enroot cache with special files: rel path -> what it is."""
    sing, enroot = tmp_path / "sif", tmp_path / "enroot"
    (sing / "library").mkdir(parents=True)
    enroot.mkdir()
    (sing / "README").write_text("a regular file: the scan opens it\n")
    os.mkfifo(enroot / "ubuntu+22.04.sqsh")
    os.mkfifo(enroot / "pipe")
    os.mkfifo(sing / "library" / "ubuntu:22.04")
    mknod(sing / "library" / "null:1.sif", stat.S_IFCHR, 1, 3)
    mknod(sing / "loop0", stat.S_IFBLK, 7, 0)
    expected = {
        "enroot/ubuntu+22.04.sqsh": "a FIFO (named pipe)",
        "enroot/pipe": "a FIFO (named pipe)",
        "sif/library/ubuntu:22.04": "a FIFO (named pipe)",
        "sif/library/null:1.sif": "a character device",
        "sif/loop0": "a block device",
        "sif/library/agent:1": "a socket",
    }
    with bound_socket(sing / "library" / "agent:1"):
        yield sing, enroot, expected


def scan_in_thread(settings: Settings) -> tuple[Inventory, list[str]]:
    """Scan on a thread (a blocking open would hang it) and record every path opened."""
    opened: list[str] = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        opened.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    result: list[Inventory] = []
    os.open = recording_open  # type: ignore[assignment]
    try:
        worker = threading.Thread(
            target=lambda: result.append(Catalog(settings).scan()), daemon=True
        )
        worker.start()
        worker.join(timeout=30)
    finally:
        os.open = real_open
    assert not worker.is_alive(), "the scan blocked on a special file"
    return result[0], opened


def settings_for(sing: Path, enroot: Path) -> Settings:
    specs = (CacheSpec(CacheKind.SINGULARITY, str(sing)), CacheSpec(CacheKind.ENROOT, str(enroot)))
    return Settings(caches=specs, default_images={"cpu": "ubuntu:22.04"})


def test_special_files_are_listed_with_a_finding_and_never_opened(planted):
    sing, enroot, expected = planted
    inventory, opened = scan_in_thread(settings_for(sing, enroot))
    base = sing.parent
    images = {os.path.relpath(i.path, base): i for i in inventory.images}
    assert set(images) == {*expected, "sif/README"}
    for rel, what in expected.items():
        image = images[rel]
        assert image.probe.format is Format.UNKNOWN
        assert image.probe.not_image == what
        assert image.codes == ("not-an-image",), rel
        assert image.findings[0].reason.startswith(f"{what}, not a regular file"), rel
        assert image.ref is None and image.probe.bytes_read == 0
    assert images["enroot/pipe"].findings[0].reason == FIFO_REASON
    assert str(sing / "README") in opened  # the recorder sees the scan's opens
    assert not set(opened) & {str(base / rel) for rel in expected}
    # Nothing that acts on findings touches them.
    plan = gc.plan(inventory, codes=gc.GC_CODES, days=0)
    assert plan.items == ()
    assert {os.path.relpath(i.path, base) for i in plan.skipped} == set(expected)
    assert images["sif/README"].codes == ()
    assert all(
        i.reason == "not a regular file; imgcache removes only regular files"
        or "default image" in i.reason
        for i in plan.skipped
    )
    perms = plan_permissions(inventory)
    assert perms.changes == ()


def imgcache(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fifo_at_a_default_path_is_broken_not_missing(planted, tmp_path):
    sing, enroot, _ = planted
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[cache]]\nkind = "singularity"\npath = "{sing / "library"}"\n\n'
        f'[[cache]]\nkind = "enroot"\npath = "{enroot}"\n\n'
        '[defaults]\ncpu = "ubuntu:22.04"\n'
    )
    result = imgcache("defaults", "--json", config=config)
    assert result.returncode == 0, result.stderr
    (cpu,) = [d for d in json.loads(result.stdout)["defaults"] if d["env"] == "cpu"]
    states = {c["path"]: (c["state"], c["detail"]) for c in cpu["caches"]}
    assert states == {
        str(sing / "library" / "ubuntu:22.04"): ("broken", FIFO_REASON),
        str(enroot / "ubuntu+22.04.sqsh"): ("broken", FIFO_REASON),
    }
    listed = imgcache("list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    fifo = next(r for r in json.loads(listed.stdout) if r["path"].endswith("ubuntu+22.04.sqsh"))
    assert (fifo["format"], fifo["findings"]) == ("unknown", ["not-an-image"])
