"""Scratch stays where it is configured, and podman's store is left as it was found.

skopeo stages a whole image in `$TMPDIR` (else /var/tmp) before it writes an
oci-archive; podman keeps layers in `$TMPDIR/storageNNN` while it pulls and the
image in its store after. imgcache hands both tools a `TMPDIR` inside the job's
scratch directory (`$IMGCACHE_TMPDIR/imgcache-work-...`), which goes with the job
or, after a kill, with the next job. In these tests the system's `TMPDIR` is a
directory of its own, so anything staged outside the scratch shows up there.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.builders import make_docker_archive
from tests.faults.conftest import FAULT_REF, need
from tests.faults.helpers import all_gone, children, cli, du, kill9, start, temps, wait_for
from tests.integration.conftest import META_REF
from tests.integration.images import build_image

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]


def _systmp() -> list[str]:
    return os.listdir(os.environ["TMPDIR"])


def _scratch() -> Path:
    return Path(os.environ["IMGCACHE_TMPDIR"])


def _staged_by(pid: int) -> set[str]:
    """The directories the files process `pid` has open are in."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/"):
            found.add(os.path.dirname(target))
    return found


def _skopeo_staging(proc: subprocess.Popen[str], source: Path) -> tuple[int, set[str]] | None:
    """skopeo's pid and the directories it writes in, once it has a file open to write."""
    for pid, name in children(proc.pid).items():
        if name == "skopeo":
            dirs = {d for d in _staged_by(pid) if d != str(source.parent) and d != "/dev"}
            if dirs:
                return pid, dirs
    return None


def test_a_killed_builtin_save_stages_only_in_the_scratch(slow, fault_image, tmp_path) -> None:
    need("skopeo")
    root = tmp_path / "podman"
    root.mkdir()
    proc = start("pull", FAULT_REF, "--to", f"podman:{root}", "--backend", "builtin")
    wait_for(lambda: slow.bytes > 2 * 1024 * 1024, 60, "the copy", proc)
    staged = du(_scratch())
    systmp = _systmp()
    tools = list(children(proc.pid))
    kill9(proc)
    assert systmp == [] and _systmp() == [], "skopeo staged the image outside the scratch"
    assert staged > 1024 * 1024  # the layers were arriving in the job's scratch directory
    assert all_gone(tools)
    slow.rate *= 100
    code, out = cli("pull", META_REF, "--to", f"podman:{root}", "--backend", "builtin")
    assert code == 0, out
    assert os.listdir(_scratch()) == [] and temps(root) == [] and _systmp() == []


def test_a_killed_add_that_rewrites_an_archive_stages_only_in_the_scratch(tmp_path) -> None:
    need("skopeo", "umoci")
    layout = build_image(tmp_path / "layout", [{"data/random.bin": os.urandom(48 << 20)}])
    archive = make_docker_archive(tmp_path / "big.tar", "other/name:1", layout=layout)
    assert _systmp() == []
    root = tmp_path / "podman"
    root.mkdir()
    proc = start("add", str(archive), "hpc/app:3", "--to", f"podman:{root}")
    found: list[tuple[int, set[str]] | None] = []
    wait_for(lambda: found.append(_skopeo_staging(proc, archive)) or found[-1], 60, "skopeo", proc)
    time.sleep(0.2)
    kill9(proc)
    skopeo, dirs = found[-1]
    assert all(d.startswith((str(_scratch()), str(root))) for d in dirs), dirs
    assert all_gone([skopeo]), "skopeo outlived imgcache"
    assert _systmp() == [], "skopeo staged the archive outside the scratch"
    assert os.listdir(_scratch()) != []  # the dead job's scratch, until the next job starts
    code, out = cli("add", str(archive), "hpc/app:3", "--to", f"podman:{root}")
    assert code == 0, out
    assert os.listdir(_scratch()) == [] and temps(root) == [] and _systmp() == []


def _in_store(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


@pytest.mark.parametrize("there_before", [False, True])
def test_podman_save_leaves_podmans_store_as_it_found_it(
    there_before, registry_env, tmp_path
) -> None:
    need("podman")
    ref = "docker.io/imgcache-test/meta:1"
    subprocess.run(["podman", "rmi", "-f", ref], check=False, capture_output=True)
    if there_before:
        subprocess.run(["podman", "pull", "-q", ref], check=True, capture_output=True)
    root = tmp_path / "podman"
    root.mkdir()
    code, out = cli("pull", META_REF, "--to", f"podman:{root}", "--backend", "runtime")
    assert code == 0, out
    assert _in_store(ref) == there_before
    assert _systmp() == [] and os.listdir(_scratch()) == []
    subprocess.run(["podman", "rmi", "-f", ref], check=False, capture_output=True)


def test_a_cancelled_podman_save_leaves_no_storage_behind(slow, fault_image, tmp_path) -> None:
    need("podman")
    ref = f"docker.io/{FAULT_REF}"
    subprocess.run(["podman", "rmi", "-f", ref], check=False, capture_output=True)
    root = tmp_path / "podman"
    root.mkdir()
    proc = start("pull", FAULT_REF, "--to", f"podman:{root}", "--backend", "runtime")
    wait_for(lambda: slow.bytes > 2 * 1024 * 1024, 60, "podman pull", proc)
    tools = list(children(proc.pid))
    assert _systmp() == [], "podman stages outside the scratch"
    proc.terminate()  # as a cancel: imgcache cleans up
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert all_gone(tools)
    assert _systmp() == [] and os.listdir(_scratch()) == [] and temps(root) == []
    assert not _in_store(ref)
