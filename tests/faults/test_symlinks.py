"""Links planted in a shared cache, or in the log directory, are refused, never followed.

Lock names are predictable (a readable prefix and a hash of the image's path), so
anyone who can write in a cache can put a link where imgcache will open a lock
file, or replace `.imgcache-locks` or a directory on a target's path with a link
to somewhere else. Each test plants the link, runs a real `imgcache add` of a
squashfs made by mksquashfs, and checks what an admin would: the file or
directory the link points to is exactly as it was, nothing was written outside
the cache, no temp is left, and the job failed with one line saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgcache.backends.inventory import caches, refs
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.locks import lock_path
from tests.builders import make_squashfs
from tests.faults.conftest import need
from tests.faults.helpers import cli, temps, tree

pytestmark = pytest.mark.tools

REF = "x/y:1"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    need("mksquashfs")
    return make_squashfs(tmp_path / "src" / "img.sqsh", comp="gzip")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every cache with a file an attacker would like overwritten."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "victim").write_text("precious\n")
    return path


def _refusal(out: str) -> str:
    lines = [line for line in out.splitlines() if "refusing" in line]
    assert len(lines) == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    return lines[0]


def test_a_link_at_a_lock_files_name_is_not_followed(tmp_path, image, outside) -> None:
    root = tmp_path / "enroot"
    (root / caches.LOCK_DIR).mkdir(parents=True)
    rel = caches.target_relpath(CacheKind.ENROOT, refs.parse(REF))
    Path(lock_path(str(root), rel)).symlink_to(outside / "victim")
    before = tree(outside)
    code, out = cli("add", str(image), REF, "--to", f"enroot:{root}")
    assert code == 1, out
    line = _refusal(out)
    assert "it is a symbolic link, not a file imgcache made" in line, line
    assert (outside / "victim").read_text() == "precious\n"
    assert tree(outside) == before
    assert not temps(root) and not (root / "x+y+1.sqsh").exists()


def test_a_lock_directory_replaced_by_a_link_is_refused(tmp_path, image, outside) -> None:
    root = tmp_path / "enroot"
    root.mkdir()
    (root / caches.LOCK_DIR).symlink_to(outside)
    before = tree(outside)
    code, out = cli("add", str(image), REF, "--to", f"enroot:{root}")
    assert code == 1, out
    line = _refusal(out)
    assert f"refusing {caches.LOCK_DIR} in {root}: it is a symbolic link, not a directory" in line
    assert tree(outside) == before  # no lock file was made there
    assert not temps(root) and not (root / "x+y+1.sqsh").exists()


def test_a_directory_on_the_targets_path_replaced_by_a_link_is_refused(
    tmp_path, image, outside
) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    (root / "x").symlink_to(outside)  # the image would go to ROOT/x/y:1
    before = tree(outside)
    code, out = cli("add", str(image), REF, "--to", f"singularity:{root}")
    # The reference's path is checked first (it would resolve outside the root: a
    # usage error); the job's own walk refuses the link too (tests/unit/test_publish.py).
    assert code == 2, out
    assert out.count("\n") == 1 and "would be outside the cache root" in out, out
    assert tree(outside) == before  # neither the temp nor the image landed there
    assert not temps(root)


def test_a_link_to_a_directory_inside_the_cache_is_refused_too(tmp_path, image) -> None:
    root = tmp_path / "sif"
    (root / "elsewhere").mkdir(parents=True)
    (root / "x").symlink_to(root / "elsewhere")
    code, out = cli("add", str(image), REF, "--to", f"singularity:{root}")
    assert code == 1, out
    line = _refusal(out)
    assert f"refusing x in {root}: it is a symbolic link, not a directory imgcache made" in line
    assert os.listdir(root / "elsewhere") == [] and not temps(root)


def test_a_job_log_directory_replaced_by_a_link_is_not_written_through(
    tmp_path, image, outside
) -> None:
    state = Path(os.environ["XDG_STATE_HOME"]) / "imgcache"
    state.mkdir(parents=True)
    (state / "jobs").symlink_to(outside)
    for i in range(3):  # old logs there would be "pruned" by a queue that followed the link
        (outside / f"old-{i}.log").write_text("not imgcache's\n")
    before = tree(outside)
    root = tmp_path / "enroot"
    root.mkdir()
    code, out = cli("add", str(image), REF, "--to", f"enroot:{root}")
    assert code == 0, out  # the job itself is fine: it runs without a log
    assert "Traceback" not in out and "internal error" not in out, out
    warnings = [line for line in out.splitlines() if "cannot write job logs" in line]
    assert len(warnings) == 1 and "it is a symbolic link" in warnings[0], out
    assert tree(outside) == before
    assert (root / "x+y+1.sqsh").is_file() and not temps(root)
