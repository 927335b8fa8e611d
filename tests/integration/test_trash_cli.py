"""`imgcache trash`: the batches listed (what, when, by whom, size), put back, emptied;
and links planted in the trash refused, never followed.

Images are made by mksquashfs and deleted by `imgcache rm`, so each batch is
what a real delete leaves, manifest included.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_squashfs

pytestmark = pytest.mark.tools

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
TRASH = ".imgcache-trash"


@pytest.fixture(autouse=True)
def jobs_env() -> None:
    """Shadow the job tests' autouse fixture of this name: no registry is needed here."""


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    if not have("mksquashfs"):
        pytest.skip("needs mksquashfs")
    base = tmp_path_factory.mktemp("trash-image")
    return make_squashfs(base / "img.sqsh", rootfs=make_rootfs(base / "rootfs"))


@pytest.fixture
def cache(tmp_path: Path, image: Path) -> Path:
    root = tmp_path / "sif"
    (root / "library").mkdir(parents=True)
    for name in ("ubuntu:22.04", "library/alpine:3", "library/keep:1"):
        shutil.copy(image, root / name)
    return root


def imgcache(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, *args, "--cache", f"singularity:{root}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def rm(root: Path, *names: str) -> str:
    """Delete with `imgcache rm`; the batch's name."""
    done = imgcache(root, "rm", "--yes", *(str(root / n) for n in names))
    assert done.returncode == 0, done.stderr
    [batch] = {
        Path(line.split(": moved to ")[1]).relative_to(root / TRASH).parts[0]
        for line in done.stdout.splitlines()
        if ": moved to " in line
    }
    return batch


def test_trash_lists_what_when_by_whom_and_how_big(cache, image):
    batch = rm(cache, "ubuntu:22.04", "library/alpine:3")
    me = pwd.getpwuid(os.getuid()).pw_name
    listed = imgcache(cache, "trash")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == str(cache / TRASH / batch)
    assert f"by {me} (rm); 2 files" in lines[1] and "purged after" in lines[1]
    assert lines[2].split()[-1] == "library/alpine:3" and lines[3].split()[-1] == "ubuntu:22.04"
    [doc] = json.loads(imgcache(cache, "trash", "--json").stdout)
    assert doc["batch"] == batch and doc["root"] == str(cache)
    assert doc["by"]["user"] == me and doc["by"]["via"] == "rm"
    assert doc["size"] == 2 * image.stat().st_size
    assert [f["path"] for f in doc["files"]] == [
        str(cache / "library/alpine:3"),
        str(cache / "ubuntu:22.04"),
    ]
    # A batch whose delete was killed before its manifest: its directory's owner, said so.
    (cache / TRASH / batch / ".imgcache-batch.json").unlink()
    assert f"by {me} (no manifest); 2 files" in imgcache(cache, "trash").stdout
    [doc] = json.loads(imgcache(cache, "trash", "--json").stdout)
    assert doc["by"] is None and doc["dir_owner"] == me


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change owners")
def test_by_whom_survives_a_change_of_ownership(cache):
    batch = rm(cache, "ubuntu:22.04")
    nobody = pwd.getpwnam("nobody")
    for directory, dirs, files in os.walk(cache / TRASH):
        for name in [*dirs, *files]:
            os.chown(os.path.join(directory, name), nobody.pw_uid, nobody.pw_gid)
    [doc] = json.loads(imgcache(cache, "trash", "--json").stdout)
    assert doc["batch"] == batch
    assert doc["by"]["user"] == "root" and doc["dir_owner"] == "nobody"


def test_restore_puts_files_back_under_their_names(cache, image):
    inode = (cache / "ubuntu:22.04").stat().st_ino
    batch = rm(cache, "ubuntu:22.04", "library/alpine:3")
    refused = imgcache(cache, "trash", "--restore", batch)
    assert refused.returncode == 2 and "pass --yes to restore" in refused.stderr
    assert not (cache / "ubuntu:22.04").exists()
    done = imgcache(cache, "trash", "--restore", batch, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert sorted(r["path"] for r in doc["restored"]) == [
        str(cache / "library/alpine:3"),
        str(cache / "ubuntu:22.04"),
    ]
    assert (cache / "ubuntu:22.04").stat().st_ino == inode
    assert (cache / "ubuntu:22.04").read_bytes() == image.read_bytes()
    assert not (cache / TRASH / batch).exists()  # an emptied batch goes, manifest and all
    # By the old path: the newest batch that holds it.
    rm(cache, "library/alpine:3")
    newest = rm(cache, "ubuntu:22.04")
    done = imgcache(cache, "trash", "--restore", str(cache / "ubuntu:22.04"), "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"{cache / 'ubuntu:22.04'}: put back"
    assert not (cache / TRASH / newest).exists() and not (cache / "library/alpine:3").exists()


def test_restore_refuses_where_the_name_is_taken_and_puts_nothing_back(cache):
    batch = rm(cache, "ubuntu:22.04", "library/alpine:3")
    (cache / "ubuntu:22.04").write_text("published since\n")
    done = imgcache(cache, "trash", "--restore", batch, "--yes")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"imgcache trash: {cache / 'ubuntu:22.04'} is taken now; "
        f"{cache / TRASH / batch / 'ubuntu:22.04'} stays in the trash",
        "imgcache trash: nothing was put back",
    ]
    assert (cache / "ubuntu:22.04").read_text() == "published since\n"
    assert not (cache / "library/alpine:3").exists()
    assert (cache / TRASH / batch / "library/alpine:3").exists()


def test_empty_shows_asks_and_purges(cache, image):
    first = rm(cache, "ubuntu:22.04")
    second = rm(cache, "library/alpine:3")
    refused = imgcache(cache, "trash", "--empty")
    assert refused.returncode == 2 and "pass --yes to purge" in refused.stderr
    assert "2 batches, " in refused.stdout and (cache / TRASH / first).exists()
    done = imgcache(cache, "trash", "--empty", second, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    del doc["imgcache"]  # the writer's version, tested in tests/unit/test_version.py
    assert doc == {"purged": [str(cache / TRASH / second)], "failed": [],
                   "bytes": image.stat().st_size}  # fmt: skip
    assert (cache / TRASH / first).exists() and not (cache / TRASH / second).exists()
    done = imgcache(cache, "trash", "--empty", "--yes")
    assert done.returncode == 0 and not os.listdir(cache / TRASH)


# --- links planted in the trash: refused, never followed ------------------------------


def test_a_link_at_the_trash_itself_is_refused_not_followed(cache, tmp_path):
    outside = tmp_path / "outside"
    fake = outside / "20200101T000000Z-deadbeef"
    fake.mkdir(parents=True)
    (fake / "victim").write_text("keep me\n")
    (cache / TRASH).symlink_to(outside)
    listed = imgcache(cache, "trash")
    assert listed.returncode == 0
    assert f"{cache / TRASH} is a symbolic link; imgcache never follows links" in listed.stderr
    assert "victim" not in listed.stdout and "the trash is empty" in listed.stdout
    emptied = imgcache(cache, "trash", "--empty", "--yes")
    assert (fake / "victim").read_text() == "keep me\n"
    assert "0 batches" in emptied.stdout
    restored = imgcache(cache, "trash", "--restore", fake.name, "--yes")
    assert restored.returncode == 2 and not (cache / "victim").exists()
    deleted = imgcache(cache, "rm", "--yes", str(cache / "ubuntu:22.04"))
    assert deleted.returncode == 1 and "is a symbolic link" in deleted.stderr
    assert (cache / "ubuntu:22.04").exists() and os.listdir(fake) == ["victim"]
    gc = imgcache(cache, "gc", "--dry-run", "--json")
    assert json.loads(gc.stdout)["trash"] == []


def test_links_inside_a_batch_are_listed_and_never_followed(cache, tmp_path):
    batch = rm(cache, "ubuntu:22.04")
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (cache / TRASH / batch / "library").mkdir()
    (cache / TRASH / batch / "library" / "evil:1").symlink_to(victim)
    (cache / TRASH / batch / "etc").symlink_to(tmp_path)
    (cache / TRASH / "20200101T000000Z-deadbeef").symlink_to(tmp_path)
    listed = imgcache(cache, "trash")
    assert "20200101T000000Z-deadbeef is a symbolic link" in listed.stderr
    assert "library/evil:1  (link, never restored)" in listed.stdout
    assert "etc  (link, never restored)" in listed.stdout and "victim" not in listed.stdout
    one = imgcache(cache, "trash", "--restore", str(cache / TRASH / batch / "library/evil:1"))
    assert one.returncode == 2 and "holds no file that can be put back" in one.stderr
    done = imgcache(cache, "trash", "--restore", batch, "--yes")
    assert done.returncode == 0, done.stderr
    assert (cache / "ubuntu:22.04").is_file() and not (cache / "library/evil:1").exists()
    emptied = imgcache(cache, "trash", "--empty", "--yes")
    assert emptied.returncode == 0, emptied.stderr
    assert victim.read_text() == "keep me\n" and sorted(os.listdir(tmp_path)) == sorted(
        ["sif", "victim"]
    )
    assert os.listdir(cache / TRASH) == ["20200101T000000Z-deadbeef"]  # a link: left alone


def test_nothing_is_put_back_into_imgcache_own_directories(cache):
    batch = rm(cache, "ubuntu:22.04")
    planted = cache / TRASH / batch / ".imgcache-locks" / "x.lock"
    planted.parent.mkdir()
    planted.write_text("planted\n")
    done = imgcache(cache, "trash", "--restore", batch, "--yes")
    assert done.returncode == 1
    assert "x.lock is inside imgcache's own directory .imgcache-locks" in done.stderr
    assert not (cache / ".imgcache-locks").exists() and not (cache / "ubuntu:22.04").exists()
