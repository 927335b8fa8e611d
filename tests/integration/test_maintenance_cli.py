"""`imgcache compress|rm|gc|fix-perms` run as an admin would, on caches built by real tools."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgcache.backends.inventory.probe import probe_path
from imgcache.tui.format import human_size
from tests.builders import have, make_rootfs, make_sif, make_squashfs, truncated_copy

pytestmark = pytest.mark.tools

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
OLD = 1_500_000_000


@pytest.fixture(autouse=True)
def jobs_env() -> None:
    """Shadow the job tests' autouse fixture of this name: no registry is needed here."""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    if not have("mksquashfs", "siftool", "sqfs2tar", "tar2sqfs"):
        pytest.skip("needs mksquashfs, siftool and squashfs-tools-ng")
    base = tmp_path_factory.mktemp("cli-images")
    rootfs = make_rootfs(base / "rootfs")
    raw = make_squashfs(base / "raw.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs)
    zstd = make_squashfs(base / "zstd.sqsh", rootfs=rootfs)
    signed = make_sif(base / "signed.sif", squashfs=raw, signature=True)
    return {"raw": raw, "zstd": zstd, "signed": signed}


@pytest.fixture
def caches(tmp_path: Path, built: dict[str, Path]) -> tuple[Path, Path]:
    enroot, sif = tmp_path / "enroot", tmp_path / "sif"
    (sif / "lib").mkdir(parents=True)
    enroot.mkdir()
    for source, dest in [
        ("raw", enroot / "nvidia+pytorch+25.09-py3.sqsh"),
        ("zstd", enroot / "ubuntu+22.04.sqsh"),
        ("zstd", enroot / "old+1.sqsh"),
        ("zstd", enroot / ".imgcache-gone+1.sqsh.h-1-1.tmp"),
        ("signed", sif / "lib" / "app:1.sif"),
        ("zstd", sif / "ubuntu:22.04"),
    ]:
        shutil.copy(built[source], dest)
    truncated_copy(built["zstd"], enroot / "cut+1.sqsh", 8192)
    for old in (enroot / "old+1.sqsh", enroot / ".imgcache-gone+1.sqsh.h-1-1.tmp"):
        os.utime(old, (OLD, OLD))
    os.utime(enroot / "cut+1.sqsh", (OLD, OLD))
    (enroot / "ubuntu+22.04.sqsh").chmod(0o600)
    return enroot, sif


def imgcache(caches: tuple[Path, Path], *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    enroot, sif = caches
    where = ["--cache", f"enroot:{enroot}", "--cache", f"singularity:{sif}"]
    return subprocess.run(
        [IMGCACHE, *args, *where],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def test_rm_without_a_terminal_refuses_and_says_to_pass_yes(caches):
    target = caches[0] / "ubuntu+22.04.sqsh"
    done = imgcache(caches, "rm", str(target))
    assert done.returncode == 2
    assert done.stderr.strip() == "imgcache rm: not a terminal; pass --yes to delete without asking"
    assert (
        str(target) in done.stdout and "to move to the trash (purged after 7 days)" in done.stdout
    )
    assert target.exists()


def test_rm_yes_moves_to_the_trash_and_purge_deletes(caches):
    enroot = caches[0]
    done = imgcache(caches, "rm", "--yes", str(enroot / "ubuntu+22.04.sqsh"))
    assert done.returncode == 0, done.stderr
    assert "moved to " + str(enroot / ".imgcache-trash") in done.stdout
    done = imgcache(caches, "rm", "--yes", "--purge", str(enroot / "old+1.sqsh"))
    assert done.returncode == 0, done.stderr
    assert f"{enroot / 'old+1.sqsh'}: deleted" in done.stdout
    assert not (enroot / "old+1.sqsh").exists()


def test_rm_asks_on_a_terminal(caches):
    target = caches[0] / "ubuntu+22.04.sqsh"
    for answer, code in ((b"n\n", 1), (b"y\n", 0)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [IMGCACHE, "rm", str(target), "--cache", f"enroot:{caches[0]}"],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        os.write(leader, answer)
        out, _ = proc.communicate(timeout=60)
        os.close(leader)
        assert proc.returncode == code
        assert b"Delete 1 file," in out
    assert not target.exists()


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("ubuntu:22.04", "ubuntu:22.04 matches 2 files; name one"),
        ("nope/nothing:1", "no cached image is nope/nothing:1"),
        ("/etc/passwd", "/etc/passwd is outside every configured cache"),
        ("{enroot}/link.sqsh", "link.sqsh is a symbolic link"),
        ("{enroot}/../outside.sqsh", "outside every configured cache"),
    ],
)
def test_rm_refusals_are_one_clear_line(caches, target, words):
    enroot = caches[0]
    (enroot / "link.sqsh").symlink_to(enroot / "old+1.sqsh")
    (enroot.parent / "outside.sqsh").write_text("x")
    done = imgcache(caches, "rm", "--yes", target.format(enroot=enroot))
    assert done.returncode == 1
    assert words in done.stderr
    assert (enroot / "old+1.sqsh").exists() and (enroot.parent / "outside.sqsh").exists()


def test_gc_dry_run_lists_exactly_what_gc_then_removes(caches):
    # The default selection, stale included: the scan of the dry run must not make
    # an old image look recently read (the probe opens files O_NOATIME).
    select = ["--days", "365"]
    plan = imgcache(caches, "gc", "--dry-run", "--json", *select)
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    planned = {item["path"] for item in data["items"]}
    enroot = caches[0]
    assert planned == {
        str(enroot / "cut+1.sqsh"),
        str(enroot / ".imgcache-gone+1.sqsh.h-1-1.tmp"),
        str(enroot / "old+1.sqsh"),
    }
    assert data["total_bytes"] == sum(item["size"] for item in data["items"])
    refused = imgcache(caches, "gc", *select)
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    done = imgcache(caches, "gc", "--yes", *select)
    assert done.returncode == 0, done.stderr
    moved = [
        line.split(": moved to ")[0] for line in done.stdout.splitlines() if ": moved to " in line
    ]
    assert sorted(moved) == sorted(planned)
    assert not any(Path(p).exists() for p in planned)


def test_fix_perms_shows_asks_and_reports(caches):
    target = caches[0] / "ubuntu+22.04.sqsh"
    plan = imgcache(caches, "fix-perms", "--dry-run", "--json")
    assert json.loads(plan.stdout)["changes"] == [
        {"path": str(target), "directory": False, "old_mode": "0600", "new_mode": "0644"}
    ]
    refused = imgcache(caches, "fix-perms")
    assert refused.returncode == 2
    assert "not a terminal; pass --yes to change permissions without asking" in refused.stderr
    done = imgcache(caches, "fix-perms", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"changed 0600 -> 0644 {target}" in done.stdout
    assert target.stat().st_mode & 0o777 == 0o644


def test_compress_shows_a_signed_sif_in_its_plan_and_asks(caches):
    sif = caches[1] / "lib" / "app:1.sif"
    before = sif.read_bytes()
    refused = imgcache(caches, "compress", str(sif))
    assert refused.returncode == 2
    assert "! signed: its signature will no longer verify after compression" in refused.stdout
    assert refused.stderr == (
        "imgcache compress: not a terminal; pass --yes to compress without asking\n"
    )
    assert sif.read_bytes() == before
    done = imgcache(caches, "compress", "--yes", "--json", "lib/app:1", cwd=caches[1])
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["replaced"] and result["after"] < result["before"]
    assert result["note"] == "its signature no longer verifies"


def test_compress_shows_its_plan_and_rewrites_nothing_without_a_yes(caches):
    raw = caches[0] / "nvidia+pytorch+25.09-py3.sqsh"
    zstd = caches[0] / "ubuntu+22.04.sqsh"
    before = raw.read_bytes()
    refused = imgcache(caches, "compress", str(raw), str(zstd))
    assert refused.returncode == 2
    assert "not a terminal; pass --yes to compress without asking" in refused.stderr
    plan = refused.stdout.splitlines()
    size = human_size(len(before))
    assert plan[0].split() == [size.split()[0], size.split()[1], "lzo", "-noD", "->", "zstd",
                               "level", "3,", "1", "MiB", "blocks", str(raw)]  # fmt: skip
    assert plan[1] == (
        f"  left alone {zstd}: is already zstd with compressed data; pass --force to rebuild it"
        " anyway"
    )
    assert plan[2] == f"1 file, {size} to recompress with zstd level 3, 1 MiB blocks"
    assert raw.read_bytes() == before  # nothing rewritten


def test_compress_asks_on_a_terminal(caches):
    raw = caches[0] / "nvidia+pytorch+25.09-py3.sqsh"
    before = raw.read_bytes()
    for answer, code in ((b"n\n", 1), (b"y\n", 0)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [IMGCACHE, "compress", str(raw), "--cache", f"enroot:{caches[0]}"],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        os.write(leader, answer)
        out, err = proc.communicate(timeout=120)
        os.close(leader)
        assert proc.returncode == code, err
        assert b"Compress 1 file? [y/N]" in out
        if code == 1:
            assert raw.read_bytes() == before
    assert raw.read_bytes() != before
    assert probe_path(str(raw)).compression == "zstd"


def test_compress_prints_sizes_and_leaves_compressed_images_alone(caches):
    raw = caches[0] / "nvidia+pytorch+25.09-py3.sqsh"
    done = imgcache(caches, "compress", "--yes", str(raw), str(caches[0] / "ubuntu+22.04.sqsh"))
    assert done.returncode == 0, done.stderr
    *_plan, result = done.stdout.splitlines()
    assert result.startswith(f"{raw}: ") and " -> " in result
    assert "already zstd with compressed data; pass --force" in done.stdout


def test_compress_bad_options_are_a_usage_error(caches):
    done = imgcache(caches, "compress", "--level", "99", "ubuntu:22.04")
    assert done.returncode == 2
    assert "compression level 99 is not between 1 and 22" in done.stderr


def test_rm_of_a_default_image_says_so_in_the_plan(caches, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[defaults]\ncpu = "ubuntu:22.04"\n')
    default = caches[1] / "ubuntu:22.04"
    refused = imgcache(caches, "rm", str(default), "--config", str(config))
    assert refused.returncode == 2 and default.exists()
    note = "! ubuntu:22.04 is the CPU default image: jobs that use the default will pull it again"
    lines = refused.stdout.splitlines()
    assert str(default) in lines[0] and lines[1].strip() == note
    done = imgcache(caches, "rm", "--yes", "--json", str(default), "--config", str(config))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["default_images"] == [{"path": str(default), "note": note[2:]}]
    assert [r["path"] for r in doc["removed"]] == [str(default)]
    assert note in done.stderr  # with --json the plan is on stderr
    # gc never takes it; its plan says whose default it is.
    shutil.move(doc["removed"][0]["trashed_to"], default)
    truncated_copy(caches[0] / "ubuntu+22.04.sqsh", caches[1] / "ubuntu:22.04", 8192)
    os.utime(default, (OLD, OLD))
    plan = imgcache(caches, "gc", "--dry-run", "--config", str(config))
    assert f"  kept {default}: ubuntu:22.04 is the CPU default image" in plan.stdout.splitlines()


def test_gc_never_selects_a_file_written_58_seconds_ago(caches):
    enroot = caches[0]
    young, older = enroot / "young+1.sqsh", enroot / "older+1.sqsh"
    for path, seconds in ((young, 58), (older, 2 * 3600)):
        truncated_copy(enroot / "ubuntu+22.04.sqsh", path, 8192)  # corrupt, by a real mksquashfs
        when = time.time() - seconds
        os.utime(path, (when, when))
    content = young.read_bytes()
    plan = json.loads(imgcache(caches, "gc", "--days", "0", "--dry-run", "--json").stdout)
    planned = {item["path"] for item in plan["items"]}
    assert str(older) in planned and str(young) not in planned
    [kept] = [item for item in plan["skipped"] if item["path"] == str(young)]
    assert re.fullmatch(r"written 5\d seconds ago, within the last hour: .*", kept["reason"])
    done = imgcache(caches, "gc", "--days", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert not older.exists() and young.read_bytes() == content


def test_rm_json_is_one_document_and_a_refusal_prints_none(caches):
    enroot = caches[0]
    (enroot / "link.sqsh").symlink_to("old+1.sqsh")
    refused = imgcache(caches, "rm", "--yes", "--json", str(enroot / "link.sqsh"))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "link.sqsh is a symbolic link" in refused.stderr
    done = imgcache(caches, "rm", "--yes", "--purge", "--json", str(enroot / "old+1.sqsh"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    size = doc["bytes"]
    assert doc["removed"] == [
        {"path": str(enroot / "old+1.sqsh"), "size": size, "trashed_to": None}
    ]
    assert doc["failed"] == [] and doc["default_images"] == []
