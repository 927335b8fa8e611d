"""Deleting images: the trash, purging, and every refusal (links, outside paths, owners, swaps).

Images here are sparse files with real squashfs headers (`imgcache.backends.demo`), so
these tests need no tools and run in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import stat
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.demo import write_squashfs
from imgcache.backends.inventory.caches import TRASH_DIR
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.maintenance import MaintenanceError, PlanItem, purge, safety, trash

NOW = 1_800_000_000.0


def scan(root: Path, **settings):
    spec = CacheSpec(CacheKind.ENROOT, str(root))
    return Catalog(Settings(caches=(spec,), **settings)).scan()


def item_for(inventory, path: Path) -> PlanItem:
    image = next(i for i in inventory.images if i.path == str(path))
    return PlanItem(image.path, image.stat.size, "test", image.root, image.stat)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    root = tmp_path / "enroot"
    (root / "team").mkdir(parents=True)
    write_squashfs(root / "ubuntu+22.04.sqsh", 64 * 1024)
    write_squashfs(root / "team" / "alpine+3.19.sqsh", 32 * 1024)
    (root / "ubuntu+22.04.sqsh").write_bytes(os.urandom(8192) * 8)
    return root


def test_delete_moves_into_a_dated_batch_keeping_the_relative_path(cache: Path):
    inventory = scan(cache)
    target = cache / "team" / "alpine+3.19.sqsh"
    result = trash.delete(inventory.settings, [item_for(inventory, target)], now=NOW)
    assert not target.exists()
    [removed] = result.removed
    batch = Path(removed.trashed_to).parent.parent
    assert batch.parent == cache / TRASH_DIR
    assert re.fullmatch(r"20270115T080000Z-[0-9a-f]{8}", batch.name)
    assert Path(removed.trashed_to) == batch / "team" / "alpine+3.19.sqsh"
    assert result.bytes == 32 * 1024 and not result.failed
    # Other admins who can write the root can purge; other users cannot look inside.
    root_mode = stat.S_IMODE(cache.stat().st_mode)
    for d in (cache / TRASH_DIR, batch, batch / "team"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700 | (root_mode & 0o070)
    # The scanner never shows the trash.
    assert all(TRASH_DIR not in i.path for i in scan(cache).images)


@pytest.mark.parametrize("purge", [False, True])
def test_a_reader_with_the_file_open_reads_it_to_the_end(cache: Path, purge: bool):
    target = cache / "ubuntu+22.04.sqsh"
    whole = target.read_bytes()
    inventory = scan(cache)
    with target.open("rb") as reader:
        first = reader.read(1000)
        result = trash.delete(inventory.settings, [item_for(inventory, target)], purge=purge)
        rest = reader.read()
    assert hashlib.sha256(first + rest).digest() == hashlib.sha256(whole).digest()
    assert result.removed[0].trashed_to is None if purge else result.removed[0].trashed_to
    assert not target.exists()
    if purge:
        # --purge leaves no empty batch directories behind.
        assert list((cache / TRASH_DIR).iterdir()) == []


def test_a_symlink_swapped_in_after_the_scan_is_refused(cache: Path, tmp_path: Path):
    inventory = scan(cache)
    target = cache / "ubuntu+22.04.sqsh"
    elsewhere = tmp_path / "precious"
    elsewhere.write_text("keep me")
    target.unlink()
    target.symlink_to(elsewhere)
    with pytest.raises(MaintenanceError, match="symbolic link") as caught:
        trash.delete(inventory.settings, [item_for(inventory, target)])
    assert caught.value.reason == "symlink"
    assert target.is_symlink() and elsewhere.read_text() == "keep me"


def test_a_file_replaced_after_the_scan_is_refused(cache: Path):
    inventory = scan(cache)
    target = cache / "ubuntu+22.04.sqsh"
    item = item_for(inventory, target)
    target.unlink()
    write_squashfs(target, 64 * 1024)  # same name, another inode
    with pytest.raises(MaintenanceError, match="changed since it was scanned; rescan"):
        trash.delete(inventory.settings, [item])
    assert target.exists()


def test_a_swap_between_the_check_and_the_move_is_put_back(cache: Path, monkeypatch):
    inventory = scan(cache)
    target = cache / "ubuntu+22.04.sqsh"
    real_rename = os.rename

    def swap_then_rename(src, dst, **kwargs):
        # Another admin replaces the file in the instant between our check and our move.
        target.unlink()
        target.write_bytes(b"someone else's new image")
        return real_rename(src, dst, **kwargs)

    monkeypatch.setattr(trash.os, "rename", swap_then_rename)
    result = trash.delete(inventory.settings, [item_for(inventory, target)])
    assert not result.removed
    [(_path, why)] = result.failed
    assert "changed while it was being deleted; it was put back" in why
    assert target.read_bytes() == b"someone else's new image"


@pytest.mark.parametrize(
    ("rel", "words", "reason"),
    [
        ("../outside.sqsh", "outside the cache root", "outside"),
        ("/etc/passwd", "outside the cache root", "outside"),
        ("team/../../outside.sqsh", "outside the cache root", "outside"),
        (".", "the cache root itself", "root"),
        (f"{TRASH_DIR}/x/y.sqsh", "in imgcache's trash", "trash"),
        ("linked/alpine+3.19.sqsh", "linked is a symbolic link", "symlink"),
        ("team", "not a regular file", "notfile"),
        ("missing.sqsh", "no such file", "missing"),
    ],
)
def test_paths_that_must_not_be_touched_are_refused(cache: Path, rel, words, reason):
    (cache.parent / "outside.sqsh").write_text("not in the cache")
    (cache / "linked").symlink_to(cache / "team")
    path = rel if rel.startswith("/") else str(cache / rel)
    item = PlanItem(path, 0, "test", str(cache))
    with pytest.raises(MaintenanceError, match=words) as caught:
        trash.delete(Settings(), [item])
    assert caught.value.reason == reason
    assert (cache.parent / "outside.sqsh").exists() and (cache / "team").is_dir()


def test_a_symlinked_cache_root_is_configuration_and_is_followed(cache: Path, tmp_path: Path):
    link = tmp_path / "via-link"
    link.symlink_to(cache)
    found = safety.locate(str(link), str(link / "team" / "alpine+3.19.sqsh"))
    found.close()
    # A path written through the root's real location is inside it too.
    assert safety.rel_in_root(str(link), str(cache / "team" / "x")) == "team/x"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
def test_files_of_owners_not_allowed_are_refused(cache: Path):
    target = cache / "team" / "alpine+3.19.sqsh"
    nobody = pwd.getpwnam("nobody")
    os.chown(target, nobody.pw_uid, nobody.pw_gid)
    inventory = scan(cache, allowed_owners=("root", "hpcadmin"))
    with pytest.raises(MaintenanceError, match="owned by nobody, who is not in") as caught:
        trash.delete(inventory.settings, [item_for(inventory, target)])
    assert caught.value.reason == "owner"
    assert target.exists()


def test_one_refusal_means_nothing_is_deleted_unless_refusals_are_skipped(cache: Path):
    inventory = scan(cache)
    good = item_for(inventory, cache / "ubuntu+22.04.sqsh")
    bad = PlanItem(str(cache / "nope.sqsh"), 0, "test", str(cache))
    with pytest.raises(MaintenanceError, match=r"nothing was deleted: .*nope\.sqsh: no such file"):
        trash.delete(inventory.settings, [good, bad])
    assert Path(good.path).exists()
    result = trash.delete(inventory.settings, [good, bad], skip_refused=True)
    assert [r.path for r in result.removed] == [good.path]
    assert [p for p, _ in result.failed] == [bad.path]


def test_purge_removes_batches_older_than_the_grace_period_by_their_name(cache: Path, tmp_path):
    box = cache / TRASH_DIR
    old = box / purge.batch_name(NOW - 8 * 86400)
    recent = box / purge.batch_name(NOW - 6 * 86400)
    stranger = box / "not-a-batch"
    for d in (old, recent, stranger):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "img.sqsh").write_text("x")
    # A link planted in an old batch is removed, never followed.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep")
    (old / "sub" / "evil").symlink_to(victim)
    os.utime(recent, (0, 0))  # atime/mtime say nothing; the name does
    result = purge.purge_trash(str(cache), 7, now=NOW)
    assert result.purged == (str(old),) and result.kept == 1 and not result.failed
    assert recent.exists() and stranger.exists() and not old.exists()
    assert (victim / "keep").read_text() == "keep"


def test_delete_purges_old_trash_on_the_way(cache: Path):
    old = cache / TRASH_DIR / purge.batch_name(NOW - 30 * 86400)
    old.mkdir(parents=True)
    inventory = scan(cache)
    item = item_for(inventory, cache / "ubuntu+22.04.sqsh")
    result = trash.delete(inventory.settings, [item], now=NOW)
    assert result.purged_batches == (str(old),)


def test_batch_names_round_trip():
    assert purge.batch_time(purge.batch_name(NOW)) == NOW
    assert purge.batch_time("junk") is None


def test_each_batch_records_who_deleted_what(cache: Path):
    from imgcache.backends.maintenance import batches

    inventory = scan(cache)
    items = [item_for(inventory, cache / "team" / "alpine+3.19.sqsh")]
    result = trash.delete(inventory.settings, items, now=NOW, via="rm")
    batch_dir = Path(result.removed[0].trashed_to).parent.parent
    manifest = batch_dir / batches.MANIFEST
    doc = json.loads(manifest.read_text())
    assert doc["by"]["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert doc["by"]["via"] == "rm" and doc["created"] == "2027-01-15T08:00:00+00:00"
    assert doc["files"] == [{"path": "team/alpine+3.19.sqsh", "size": 32 * 1024}]
    # Readable by whoever may purge the trash (the root's group), never writable by them.
    assert stat.S_IMODE(manifest.stat().st_mode) & 0o022 == 0
    [listed], problems = batches.list_batches(str(cache))
    assert not problems and listed.name == batch_dir.name and listed.by.via == "rm"
    assert [(f.rel, f.size) for f in listed.files] == [("team/alpine+3.19.sqsh", 32 * 1024)]


def test_the_manifest_is_never_written_through_a_planted_link(tmp_path: Path):
    from imgcache.backends.maintenance import batches

    batch = tmp_path / "batch"
    batch.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (batch / batches.MANIFEST).symlink_to(victim)
    fd = os.open(batch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            batches.write_manifest(fd, batches.current_deleter("rm"), NOW, [], 0o640)
    finally:
        os.close(fd)
    assert victim.read_text() == "keep me\n"


def test_a_file_named_like_the_manifest_is_not_moved_over_it(cache: Path):
    from imgcache.backends.maintenance import batches

    odd = cache / batches.MANIFEST
    write_squashfs(odd, 4096)
    inventory = scan(cache)
    item = PlanItem(str(odd), 4096, "test", str(cache), None)
    result = trash.delete(inventory.settings, [item], now=NOW)
    assert odd.exists() and "name of imgcache's trash manifest" in result.failed[0][1]
