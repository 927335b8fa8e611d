"""kill -9 in the middle of a real pull or compress: no image damaged, no tool left
running, and the leftovers gone after the next job in that directory.

kill -9 cannot be cleaned up after by the process it hits: its hidden temp stays
(shown as `incomplete`) and so does its scratch directory. What must hold is that
no file under a real name is ever half-written, that the tools die with imgcache
(the parent-death signal, for the compress pipeline too), and that the next job
that writes into the directory (a pull with `--to KIND:PATH`, which no config
names), the next compress of the image, or gc removes what the dead job left.

Each pull is the builtin backend against the session's loopback registry; each
compress runs sqfs2tar | tar2sqfs on an image mksquashfs made.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.builders import make_sif, make_squashfs
from tests.faults.conftest import FAULT_REF, SLOW_SQUASH, need
from tests.faults.helpers import all_gone, children, cli, kill9, sha256, start, temps, wait_for
from tests.integration.conftest import META_REF

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]

TARGETS = {
    "enroot": "imgcache-test+fault-big+1.sqsh",
    "singularity": "imgcache-test/fault-big:1",
}


def _slow_config(tmp_path: Path) -> str:
    config = tmp_path / "slow.toml"
    config.write_text(f'[jobs]\nsquash_options = "{SLOW_SQUASH}"\n')
    return str(config)


def _scratch() -> list[str]:
    return os.listdir(os.environ["IMGCACHE_TMPDIR"])


def _kill_mid_pull(kind: str, point: str, root: Path, tmp_path: Path, slow) -> tuple[list, list]:
    """Start a pull of FAULT_REF into `root`, kill -9 it at `point`; (its tools, its temps)."""
    env = {}
    if point == "squashing":
        env["IMGCACHE_CONFIG"] = _slow_config(tmp_path)
    # --force over the old image when there is one: it must come out intact.
    proc = start(
        "pull", FAULT_REF, "--to", f"{kind}:{root}", "--backend", "builtin", "--force", env=env
    )
    try:
        if point == "fetching":
            wait_for(lambda: temps(root) and slow.bytes > 512 * 1024, 60, "the fetch", proc)
        else:
            wait_for(lambda: "mksquashfs" in children(proc.pid).values(), 90, "mksquashfs", proc)
            time.sleep(0.3)  # well into it
        tools = list(children(proc.pid))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; imgcache said: {kill9(proc)}") from None
    out = kill9(proc)
    assert tools, f"no tool was running at the kill: {out}"
    return tools, temps(root)


@pytest.mark.parametrize("point", ["fetching", "squashing"])
@pytest.mark.parametrize("kind", ["enroot", "singularity"])
def test_kill9_mid_pull(kind, point, registry_env, fault_image, tmp_path, request) -> None:
    need("skopeo", "umoci", "mksquashfs", "siftool")
    slow = request.getfixturevalue("slow") if point == "fetching" else None
    root = tmp_path / kind
    root.mkdir()
    target = root / TARGETS[kind]
    old = None
    if point == "squashing":  # an image is already there: the kill must not touch it
        make_squashfs(target, comp="gzip")
        old = sha256(target)
    tools, left = _kill_mid_pull(kind, point, root, tmp_path, slow)
    # The tools died with imgcache, and no half-written file is under the real name.
    assert all_gone(tools), f"tools still running after kill -9: {children(1)}"
    if old is None:
        assert not target.exists()
    else:
        assert sha256(target) == old
    assert len(left) == 1 and os.path.basename(left[0]).startswith(".imgcache-")
    assert len(_scratch()) == 1
    if slow is not None:
        slow.rate *= 100
    # The next pull into that directory, of another image, cleans up after the dead one.
    code, out = cli("pull", META_REF, "--to", f"{kind}:{root}", "--backend", "builtin")
    assert code == 0, out
    assert temps(root) == [], "the dead pull's temp is still there"
    assert _scratch() == [], "the dead pull's scratch directory is still there"
    assert os.listdir(os.environ["TMPDIR"]) == []  # nothing staged outside the scratch


def _start_compress(root: Path, image: Path, kind: str) -> tuple[object, list[int]]:
    proc = start("compress", str(image), "--cache", f"{kind}:{root}", "--comp", "xz", "--yes")
    try:
        wait_for(
            lambda: {"sqfs2tar", "tar2sqfs"} <= set(children(proc.pid).values()),
            60,
            "the pipeline",
            proc,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; imgcache said: {kill9(proc)}") from None
    time.sleep(0.3)
    return proc, [
        pid for pid, name in children(proc.pid).items() if name in ("sqfs2tar", "tar2sqfs")
    ]


def _random_rootfs(path: Path) -> Path:
    (path / "data").mkdir(parents=True)
    (path / "data" / "random.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    (path / "etc").mkdir()
    (path / "etc" / "os-release").write_text("ID=fault\n")
    return path


def test_kill9_mid_compress_of_a_squashfs(tmp_path) -> None:
    need("mksquashfs", "sqfs2tar", "tar2sqfs")
    root = tmp_path / "enroot"
    image = make_squashfs(root / "app.sqsh", comp="gzip", rootfs=_random_rootfs(tmp_path / "tree"))
    before = sha256(image)
    proc, pipeline = _start_compress(root, image, "enroot")
    assert len(pipeline) == 2
    kill9(proc)
    # Both ends of the pipeline die with imgcache, not later, writing for nobody.
    assert all_gone(pipeline, 5), "sqfs2tar | tar2sqfs outlived imgcache"
    assert sha256(image) == before
    assert len(temps(root)) == 1
    # The next compress of the image first removes the dead one's temp.
    code, out = cli("compress", str(image), "--cache", f"enroot:{root}", "--yes", "--force")
    assert code == 0, out
    assert temps(root) == []


def test_kill9_mid_compress_of_a_sif_then_gc(tmp_path) -> None:
    need("mksquashfs", "sqfs2tar", "tar2sqfs", "siftool")
    root = tmp_path / "sif"
    squash = make_squashfs(
        tmp_path / "part.sqsh", comp="gzip", rootfs=_random_rootfs(tmp_path / "t")
    )
    image = make_sif(root / "app:1", squashfs=squash)
    before = sha256(image)
    proc, pipeline = _start_compress(root, image, "singularity")
    kill9(proc)
    assert all_gone(pipeline, 5), "sqfs2tar | tar2sqfs outlived imgcache"
    assert sha256(image) == before
    assert len(temps(root)) == 3  # the new SIF, the old partition, the new partition
    # gc removes what dead jobs left, however recent, even with nothing else to do.
    code, out = cli("gc", "--cache", f"singularity:{root}", "--yes")
    assert code == 0, out
    assert temps(root) == [] and sha256(image) == before
