"""`imgcache list` and `imgcache defaults` as text, run as an admin runs them.

On a pipe nothing is folded; on a terminal (a real pseudo-terminal of a set width)
a reference or path is whole on its line, or folded only after a `/` when it is
longer than the terminal. `--only` lists the caches named with `--cache` alone,
and the CACHE column tells apart two caches of one kind. The caches are made by
mksquashfs and siftool.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_sif, make_squashfs, truncated_copy

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The name the issue saw cut as `determinedai/enviro` / `nments` at 100 columns.
LONG = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"
#: Longer than a 100-column terminal: it may only be folded after a `/`.
HUGE = "/".join(["registry.example.com:5000", *(f"team{i}-department" for i in range(6))])
HUGE_REF = f"{HUGE}/some-very-long-application-name:2024.10.1-cuda12.4-cudnn9-py3.11"
CPU_DEFAULT, CPU_DEFAULT_SQSH = (
    "determinedai/pytorch-ngc:0.35.1",
    "determinedai+pytorch-ngc+0.35.1.sqsh",
)

pytestmark = pytest.mark.tools


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(IMGCACHE_CONFIG="", IMGCACHE_SYSTEM_CONFIG="", IMGCACHE_DETERMINED_CONFIG="")
    env.update(TERM="xterm-256color", **extra)
    return env


def imgcache(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """The command with stdout a pipe."""
    return subprocess.run(
        [IMGCACHE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env=_env(),
        **kwargs,
    )


def on_terminal(*args: str, columns: int) -> tuple[int, list[str]]:
    """The command on a pseudo-terminal `columns` wide: exit status, lines shown (no colour)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [IMGCACHE, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=_env()
    )
    os.close(slave)
    shown = bytearray()
    while select.select([master], [], [], 30)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    status = proc.wait(30)
    return status, ANSI.sub("", shown.decode()).replace("\r\n", "\n").splitlines()


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, Path]:
    """A singularity cache with the issue's long names and two enroot caches; the CPU
    default image (of the newest profile) is in the singularity and the first enroot one."""
    if not have("mksquashfs", "siftool"):
        pytest.skip("needs mksquashfs and siftool")
    base = tmp_path_factory.mktemp("listing")
    rootfs = make_rootfs(base / "rootfs")
    sqsh = make_squashfs(base / "x.sqsh", rootfs=rootfs)
    lzo = make_squashfs(base / "lzo.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs)
    sif = make_sif(base / "x.sif", squashfs=sqsh)
    sing = base / "singularity"
    names = (LONG, HUGE_REF, "ubuntu:22.04", "nvcr.io/nvidia/pytorch:25.09-py3", CPU_DEFAULT)
    for name in names:
        (sing / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sif, sing / name)
    first, second = base / "shared" / "enroot", base / "scratch" / "enroot-b"
    for root, source in ((first, lzo), (second, sqsh)):
        root.mkdir(parents=True)
        shutil.copy(source, root / "nvidia+pytorch+25.09-py3.sqsh")
    shutil.copy(sqsh, first / CPU_DEFAULT_SQSH)
    return {"singularity": sing, "enroot": first, "enroot-b": second}


def where(caches: dict[str, Path], *names: str) -> list[str]:
    return [arg for name in names for arg in ("--cache", f"{name.split('-')[0]}:{caches[name]}")]


def test_on_a_pipe_nothing_is_folded_or_padded(caches):
    listed = imgcache("list", *where(caches, "singularity", "enroot"))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + 7  # the titles, then one line per file
    assert lines[0].split() == ["IMAGE", "CACHE", "FORMAT", "COMP", "SIZE", "AGE", "FINDINGS"]
    assert all(line == line.rstrip() for line in lines)
    assert any(line.startswith(f"{LONG}  ") for line in lines)
    assert any(line.startswith(f"{HUGE_REF}  ") for line in lines)
    nvidia = next(line for line in lines if line.startswith("nvidia/pytorch"))
    assert nvidia.endswith("uncompressed legacy-codec")


@pytest.mark.parametrize("columns", [100, 80, 60])
def test_on_a_terminal_a_reference_is_never_cut_inside_a_name(caches, columns):
    status, lines = on_terminal("list", *where(caches, "singularity", "enroot"), columns=columns)
    assert status == 0, lines
    if columns >= 80:  # at 60 the columns other than IMAGE alone are wider than that
        assert all(len(line) <= columns for line in lines), lines
    # Each name is whole on a line (the issue's, at 100 columns and 80), or, longer than
    # the terminal, folded only right after a `/`: never `determinedai/enviro` + `nments`.
    for name in (LONG, HUGE_REF, "nvcr.io/nvidia/pytorch:25.09-py3", "nvidia/pytorch:25.09-py3"):
        assert whole_or_folded_at_slashes(name, lines, columns), (name, lines)
    assert (LONG in "\n".join(lines)) is (columns >= len(LONG))
    assert "\n".join(lines).count("registry.example.com") == 1
    assert any(line.startswith("7 files, ") for line in lines)  # the summary, in words


def test_on_a_wide_terminal_each_file_is_one_line(caches):
    status, lines = on_terminal("list", *where(caches, "singularity"), columns=250)
    assert status == 0
    rows = [line for line in lines if "singularity" in line]
    assert len(rows) == 5 and any(line.startswith(f"{HUGE_REF}  ") for line in rows)
    assert lines[-1].startswith("5 files, ") and lines[-1].endswith(
        "in 1 cache; findings: 1 superseded"
    )


def test_one_file_is_one_file(caches):
    status, lines = on_terminal("list", *where(caches, "enroot-b"), columns=120)
    assert status == 0
    assert re.fullmatch(r"1 file, [0-9.]+ [KM]iB, in 1 cache", lines[-1]), lines


def test_two_caches_of_one_kind_are_told_apart(caches):
    listed = imgcache("list", *where(caches, "singularity", "enroot", "enroot-b"))
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    by_cache = {row[1] for row in rows if row[0] == "nvidia/pytorch:25.09-py3"}
    assert by_cache == {"enroot:enroot", "enroot:enroot-b"}
    # A kind with one cache is named by its kind alone.
    assert {row[1] for row in rows if row[0] == "ubuntu:22.04"} == {"singularity"}


def test_only_lists_the_named_cache_alone(caches, tmp_path):
    # The configured caches (a config file naming all three) are left out with --only,
    # as `manage-enroot-cache -l` listed its one directory.
    config = tmp_path / "config.toml"
    config.write_text(
        "".join(
            f'[[cache]]\nkind = "{name.split("-")[0]}"\npath = "{root}"\n\n'
            for name, root in caches.items()
        )
    )
    every = imgcache("list", "--json", "--config", str(config))
    assert len(json.loads(every.stdout)) == 8
    only = imgcache(
        "list", "--config", str(config), "--only", "--cache", f"enroot:{caches['enroot-b']}"
    )
    assert only.returncode == 0, only.stderr
    lines = only.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == ["nvidia/pytorch:25.09-py3", "enroot"]
    doc = json.loads(imgcache("list", "--json", "--only", *where(caches, "enroot")).stdout)
    assert {Path(i["root"]) for i in doc} == {caches["enroot"]} and len(doc) == 2
    # `defaults --only` too: the named cache is the one column of presence.
    shown = imgcache("defaults", "--config", str(config), "--only", *where(caches, "enroot"))
    rows = [line.split() for line in shown.stdout.splitlines()[2:]]
    assert {row[-3] for row in rows if row[-2] in ("present", "missing")} == {"enroot"}
    refused = imgcache("list", "--config", str(config), "--only")
    assert refused.returncode == 2
    assert refused.stderr == "imgcache: list --only: name the caches with --cache KIND:PATH\n"


def whole_or_folded_at_slashes(path: str, lines: list[str], columns: int) -> bool:
    """Whether `path` is shown whole on a line, or (longer than the terminal) on lines
    of its own, each ending with a `/`."""
    if len(path) <= columns:
        alone = re.compile(rf"(^|\s){re.escape(path)}(\s|$)")
        return any(alone.search(line) for line in lines)
    for start, line in enumerate(lines):
        if not path.startswith(line.strip()):
            continue
        folded = ""
        for piece in lines[start:]:
            folded += piece.strip()
            if folded == path:
                return True
            if not (piece.endswith("/") and path.startswith(folded)):
                break
    return False


def test_defaults_keep_each_path_whole(caches):
    args = ["defaults", *where(caches, "singularity", "enroot", "enroot-b")]
    present = [str(caches["singularity"] / CPU_DEFAULT), str(caches["enroot"] / CPU_DEFAULT_SQSH)]
    piped = imgcache(*args)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[1].split() == ["ENVIRONMENT", "DEFAULT", "IMAGE", "CACHE", "STATE", "WHERE"]
    assert all(line == line.rstrip() for line in lines)
    cpu = [line.split()[-3:] for line in lines[2:5]]
    assert cpu == [
        ["singularity", "present", present[0]],
        ["enroot:enroot", "present", present[1]],
        ["enroot:enroot-b", "missing", "pytorch-ngc-0.35.1"][:2] + cpu[2][2:],
    ]
    for columns in (70, 100, 200):
        status, shown = on_terminal(*args, columns=columns)
        assert status == 0
        assert all(len(line) <= columns for line in shown), shown
        for path in [*present, "determinedai/pytorch-ngc:0.35.1"]:
            assert whole_or_folded_at_slashes(path, shown, columns), (path, shown)
        text = "\n".join(shown)
        assert "enroot:enroot-b" in text and "singularity" in text


def test_add_of_a_file_that_is_no_image_says_so_first(caches, tmp_path):
    junk = tmp_path / "notes.sqsh"
    junk.write_text("just some notes\n")
    # Two caches could take a squashfs: without --to, the file's problem still comes first.
    added = imgcache("add", str(junk), "hpc/tool:1", *where(caches, "enroot", "enroot-b"))
    assert added.returncode == 2
    assert (
        added.stderr
        == f"imgcache: {junk} is not an image: a text file (no SIF, squashfs or tar header)\n"
    )
    broken = truncated_copy(caches["enroot-b"] / "nvidia+pytorch+25.09-py3.sqsh",
                            tmp_path / "cut.sqsh", 3000)  # fmt: skip
    added = imgcache("add", str(broken), "hpc/tool:1", *where(caches, "enroot", "enroot-b"))
    assert added.returncode == 2
    assert added.stderr.startswith(f"imgcache: {broken} is a broken squashfs: truncated")
    empty = tmp_path / "empty.sif"
    empty.touch()
    added = imgcache(
        "add", str(empty), "hpc/tool:1", "--to", f"singularity:{caches['singularity']}"
    )
    assert (
        added.returncode == 2
        and added.stderr == f"imgcache: {empty} is not an image: an empty file\n"
    )
