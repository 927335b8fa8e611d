"""A full disk, for real: a small tmpfs mounted for the test (we run as root).

compress on a filesystem without room for the new image says so as a pull does,
"no space left on MOUNT (...)", and leaves the image and the directory as they
were; a job-log directory that is full or read-only (an over-quota home) does not
stop a job: it runs without its log and the command says so in one line.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import make_sif, make_squashfs
from tests.faults.conftest import need
from tests.faults.helpers import cli, sha256, temps

pytestmark = pytest.mark.tools


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    argv = ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(path)]
    try:
        subprocess.run(argv, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): {exc}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _random_tree(path: Path, mib: int) -> Path:
    (path / "data").mkdir(parents=True)
    (path / "data" / "random.bin").write_bytes(os.urandom(mib * 1024 * 1024))
    return path


def _fill(mount: Path, leave: int) -> None:
    """Fill `mount` until about `leave` bytes are free."""
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    (mount / "ballast").write_bytes(b"\0" * max(0, free - leave))


@pytest.mark.parametrize("kind", ["squashfs", "sif"])
def test_compress_on_a_full_filesystem_says_so_and_leaves_the_image(kind, tmp_path) -> None:
    need("mksquashfs", "sqfs2tar", "tar2sqfs", *(["siftool"] if kind == "sif" else []))
    squash = make_squashfs(
        tmp_path / "src.sqsh", comp="gzip", rootfs=_random_tree(tmp_path / "t", 6)
    )
    with tmpfs(tmp_path / "full", "16m") as mount:
        if kind == "sif":
            image = make_sif(mount / "app:1", squashfs=squash)
            cache = f"singularity:{mount}"
        else:
            image = mount / "app.sqsh"
            image.write_bytes(squash.read_bytes())
            cache = f"enroot:{mount}"
        _fill(mount, 2 * 1024 * 1024)
        before = sha256(image)
        code, out = cli("compress", str(image), "--cache", cache, "--yes", "--comp", "zstd")
        assert code == 1, out
        lines = [line for line in out.splitlines() if "no space left" in line]
        assert len(lines) == 1, out
        assert f"no space left on {mount} (the filesystem of {image};" in lines[0], out
        assert "need about" in lines[0] and f"{image} was left as it was" in lines[0]
        assert "I/O error" not in out and "Traceback" not in out, out
        assert sha256(image) == before
        assert temps(mount) == []


@pytest.mark.parametrize(
    ("options", "why"),
    [((), "No space left on device"), (("ro",), "Read-only file system")],
)
def test_a_full_or_read_only_log_directory_does_not_stop_a_job(
    options, why, tmp_path, monkeypatch
) -> None:
    need("mksquashfs")
    image = make_squashfs(tmp_path / "src" / "img.sqsh", comp="gzip")
    root = tmp_path / "enroot"
    root.mkdir()
    with tmpfs(tmp_path / "home", "64k", *options) as state:
        if not options:
            (state / "imgcache" / "jobs").mkdir(parents=True)
            _fill(state, 0)
        monkeypatch.setenv("XDG_STATE_HOME", str(state))
        code, out = cli("add", str(image), "x/y:1", "--to", f"enroot:{root}")
    assert code == 0, out
    assert "Traceback" not in out and "internal error" not in out, out
    lines = [line for line in out.splitlines() if "job log" in line]
    assert len(lines) == 1 and why in lines[0] and "the jobs ran all the same" in lines[0], out
    assert (root / "x+y+1.sqsh").is_file() and temps(root) == []
