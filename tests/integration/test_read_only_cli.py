"""Read-only holds everywhere: every command that writes refuses, and every file stays as it was.

`--read-only` (before or after the command) and `[ui] read_only = true` in the
config each make pull, add, compress, rm, gc, fix-perms and `trash --restore` /
`--empty` refuse with one line and exit status 2, before anything is opened for
writing. The caches are made by the real tools; "as it was" is checked on every
file and directory under them and under the job-log directory: path, type,
mode, size, mtime and content.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_squashfs, truncated_copy

pytestmark = pytest.mark.tools

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
OLD = 1_500_000_000


@pytest.fixture(autouse=True)
def jobs_env() -> None:
    """Shadow the job tests' autouse fixture of this name: no registry is needed here."""


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    if not have("mksquashfs"):
        pytest.skip("needs mksquashfs")
    rootfs = make_rootfs(tmp_path / "rootfs")
    lzo = make_squashfs(tmp_path / "lzo.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs)
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    for name in ("ubuntu+22.04.sqsh", "old+1.sqsh", "gone+1.sqsh"):
        shutil.copy(lzo, enroot / name)
    truncated_copy(lzo, enroot / "cut+1.sqsh", 4096)
    for name in ("old+1.sqsh", "cut+1.sqsh"):
        os.utime(enroot / name, (OLD, OLD))
    (enroot / "ubuntu+22.04.sqsh").chmod(0o600)
    state = tmp_path / "state"
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    # A trash batch to restore and to purge, made by imgcache itself.
    made = subprocess.run(
        [IMGCACHE, "rm", "--yes", str(enroot / "gone+1.sqsh"), "--cache", f"enroot:{enroot}"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = tmp_path / "config.toml"
    config.write_text(f'[[cache]]\nkind = "enroot"\npath = "{enroot}"\n\n[ui]\nread_only = true\n')
    return {"enroot": enroot, "lzo": lzo, "state": state, "config": config, "base": tmp_path}


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under `roots`: type, mode, size, mtime, and a digest of regular files."""
    seen: dict[str, tuple] = {}
    for root in roots:
        if not root.exists():
            seen[str(root)] = ("absent",)
            continue
        for directory, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = os.path.join(directory, name)
                st = os.lstat(path)
                digest = ""
                if stat.S_ISREG(st.st_mode):
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                seen[path] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return seen


def batch_of(enroot: Path) -> str:
    [batch] = os.listdir(enroot / ".imgcache-trash")
    return batch


WRITERS = [
    ("pull", ["pull", "library/alpine:3", "--to", "enroot"]),
    ("add", ["add", "{lzo}", "mine/tool:1", "--to", "enroot"]),
    ("compress", ["compress", "--yes", "{enroot}/ubuntu+22.04.sqsh"]),
    ("rm", ["rm", "--yes", "{enroot}/old+1.sqsh"]),
    ("rm", ["rm", "--yes", "--purge", "{enroot}/old+1.sqsh"]),
    ("gc", ["gc", "--yes", "--days", "0"]),
    ("fix-perms", ["fix-perms", "--yes"]),
    ("trash --restore", ["trash", "--restore", "{batch}", "--yes"]),
    ("trash --empty", ["trash", "--empty", "--yes"]),
]


def run(world: dict[str, Path], argv: list[str], *extra: str) -> subprocess.CompletedProcess:
    values = {"lzo": world["lzo"], "enroot": world["enroot"], "batch": batch_of(world["enroot"])}
    argv = [a.format(**values) for a in argv]
    return subprocess.run(
        [IMGCACHE, *argv, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "XDG_STATE_HOME": str(world["state"])},
    )


@pytest.mark.parametrize(("name", "argv"), WRITERS, ids=[" ".join(w[1][:2]) for w in WRITERS])
@pytest.mark.parametrize("how", ["flag-before", "flag-after", "config"])
def test_every_command_that_writes_refuses_and_changes_nothing(world, name, argv, how):
    enroot = world["enroot"]
    before = snapshot(world["base"], world["state"])
    if how == "flag-before":
        done = run(world, ["--read-only", *argv], "--cache", f"enroot:{enroot}")
        why = "--read-only"
    elif how == "flag-after":
        done = run(world, argv, "--cache", f"enroot:{enroot}", "--read-only")
        why = "--read-only"
    else:
        done = run(world, argv, "--config", str(world["config"]))
        why = f"[ui] read_only = true in {world['config']}"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"imgcache: read-only ({why}): {name} would write; nothing was changed\n"
    assert done.stdout == ""
    assert snapshot(world["base"], world["state"]) == before


def test_without_read_only_the_same_commands_do_write(world):
    """The refusals above are read-only's doing: the same command lines change the cache."""
    enroot = world["enroot"]
    before = snapshot(enroot)
    done = run(world, ["rm", "--yes", "{enroot}/old+1.sqsh"], "--cache", f"enroot:{enroot}")
    assert done.returncode == 0, done.stderr
    assert snapshot(enroot) != before and not (enroot / "old+1.sqsh").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["defaults"],
        ["gc", "--dry-run"],
        ["fix-perms", "--dry-run"],
        ["trash"],
        ["trash", "--json"],
    ],
)
def test_commands_that_only_read_still_work_read_only(world, argv):
    before = snapshot(world["base"])
    done = run(world, ["--read-only", *argv], "--config", str(world["config"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout
    assert snapshot(world["base"]) == before


def test_read_only_from_the_site_file_names_that_file(world):
    # A site file sets read-only, the user's file sets something else: the refusal
    # names the file read-only came from, not the last one read.
    base = world["base"]
    site, user = base / "site" / "imgcache", base / "user" / "imgcache"
    site.mkdir(parents=True)
    user.mkdir(parents=True)
    (site / "config.toml").write_text("[ui]\nread_only = true\n")
    (user / "config.toml").write_text("[findings]\nstale_days = 30\n")
    env = {
        **os.environ,
        "XDG_CONFIG_DIRS": str(base / "site"),
        "XDG_CONFIG_HOME": str(base / "user"),
        "XDG_STATE_HOME": str(world["state"]),
    }
    env.pop("IMGCACHE_CONFIG", None)
    target = world["enroot"] / "old+1.sqsh"
    before = target.read_bytes()
    done = subprocess.run(
        [IMGCACHE, "rm", "--yes", str(target), "--cache", f"enroot:{world['enroot']}"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"[ui] read_only = true in {site / 'config.toml'}" in done.stderr
    assert target.read_bytes() == before
