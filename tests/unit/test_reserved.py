"""imgcache's own directories in a cache (trash, locks) are never rows.

Not after a rescan of a directory inside them (what a watch event there asks
for), not after a full rescan, and nothing that reads the inventory counts them:
the defaults' presence, the caches' totals, the gc and fix-perms plans. Deletes
go through the real trash (`trash.delete`), lock files through the real
per-reference lock (`RefLock`); the directories the rescans are told about are
the ones a watcher without a filter reported.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import caches
from imgcache.backends.inventory.catalog import Catalog, Inventory
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.locks import RefLock
from imgcache.backends.maintenance import gc, trash
from imgcache.backends.maintenance.common import PlanItem
from imgcache.backends.maintenance.perms import plan_permissions
from tests.builders import have, make_squashfs

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(not have("mksquashfs"), reason="needs mksquashfs"),
]

DEFAULT = "ubuntu:22.04"
DAY = 86400.0


@pytest.fixture(scope="module")
def squashfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("reserved")
    (base / "tree").mkdir()
    (base / "tree" / "hello.txt").write_text("hello\n")
    return make_squashfs(base / "tiny.sqsh", rootfs=base / "tree")


@pytest.fixture
def root(tmp_path: Path, squashfs: Path) -> Path:
    """A singularity cache: the CPU default, an old image in a subdirectory, a new one."""
    root = tmp_path / "sif"
    for rel, days in ((DEFAULT, 400), ("team/model:1", 400), ("alpine:3.19", 0)):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(squashfs, path)
        when = path.stat().st_mtime - days * DAY
        os.utime(path, (when, when))
    # A private file, so fix-perms has something to plan.
    (root / "alpine:3.19").chmod(0o600)
    return root


def settings_for(root: Path) -> Settings:
    spec = CacheSpec(CacheKind.SINGULARITY, str(root))
    return Settings(caches=(spec,), default_images={"cpu": DEFAULT}, stale_days=90)


def rm(settings: Settings, inventory: Inventory, rel: str) -> str:
    """Delete one image the way `imgcache rm` does; returns where the trash put it."""
    image = next(i for i in inventory.images if i.rel == rel)
    item = PlanItem(image.path, image.stat.size, "rm", image.root, image.stat)
    result = trash.delete(settings, [item])
    assert not result.failed, result.failed
    trashed = result.removed[0].trashed_to
    assert trashed is not None and os.path.exists(trashed)
    return trashed


def reserved_rows(inventory: Inventory) -> list[str]:
    return [i.path for i in inventory.images if caches.reserved(i.rel)]


def cpu_state(inventory: Inventory) -> str:
    return next(p.state for p in inventory.presence if p.default.env == "cpu")


def test_a_deleted_image_is_gone_after_the_rescans_a_watcher_asks_for(root):
    settings = settings_for(root)
    catalog = Catalog(settings)
    before = catalog.scan()
    assert cpu_state(before) == "present"
    trashed = rm(settings, before, "team/model:1")
    trashed_default = rm(settings, before, DEFAULT)
    # What inotify reports for a rename into the trash: the directory it left
    # and every directory it arrived in, up to the trash itself.
    hinted = {str(root), str(root / "team")}
    for path in (trashed, trashed_default):
        parent = os.path.dirname(path)
        while parent != str(root):
            hinted.add(parent)
            parent = os.path.dirname(parent)
    after = catalog.rescan(hinted)
    assert reserved_rows(after) == []
    assert {i.rel for i in after.images} == {"alpine:3.19"}
    # The deleted default is missing, not "elsewhere" (in the trash).
    assert cpu_state(after) == "missing"
    # Counts and bytes are those of the one image left.
    (status,) = after.caches
    assert (status.images, status.bytes) == (1, (root / "alpine:3.19").stat().st_size)
    assert after.total_bytes == status.bytes
    # A full rescan (the `r` key) agrees.
    again = catalog.scan()
    assert reserved_rows(again) == []
    assert {i.rel for i in again.images} == {"alpine:3.19"}


def test_lock_files_are_never_images(root):
    settings = settings_for(root)
    catalog = Catalog(settings)
    catalog.scan()
    with RefLock(str(root), "library/pulled:1", what="pull library/pulled:1") as lock:
        lock.acquire(timeout=5)
        assert lock.held and os.path.exists(lock.path)
        lock_dir = os.path.dirname(lock.path)
        assert os.path.basename(lock_dir) == caches.LOCK_DIR
        # The watcher would report the lock directory and the root (it was made).
        inventory = catalog.rescan({lock_dir, str(root)})
        assert reserved_rows(inventory) == []
        assert reserved_rows(catalog.scan()) == []


def test_a_full_rescan_drops_directories_it_did_not_reach(root, squashfs):
    # A hint for a new nested directory can come without one for its parent (the
    # events of a burst are split between two flushes); the directory is listed
    # on its own. Removed later, only a full rescan can tell: `r` must drop it.
    settings = settings_for(root)
    catalog = Catalog(settings)
    catalog.scan()
    nested = root / "project" / "env"
    nested.mkdir(parents=True)
    shutil.copyfile(squashfs, nested / "tool:2")
    listed = catalog.rescan({str(nested)})
    assert "project/env/tool:2" in {i.rel for i in listed.images}
    shutil.rmtree(root / "project")
    stale = catalog.rescan({str(root)})
    # A re-listing of the root alone cannot see it go (it never saw it come).
    assert "project/env/tool:2" in {i.rel for i in stale.images}
    full = catalog.scan()
    assert "project/env/tool:2" not in {i.rel for i in full.images}
    assert full.change.removed == {str(nested / "tool:2")}


def test_gc_and_fix_perms_never_plan_reserved_files(root, squashfs):
    settings = settings_for(root)
    catalog = Catalog(replace(settings, trash_grace_days=1000))
    inventory = catalog.scan()
    trashed = rm(settings, inventory, "team/model:1")
    # Make the trashed copy look like everything gc and fix-perms look for.
    os.chmod(trashed, 0o600)
    with RefLock(str(root), "x:1", what="pull x:1") as lock:
        lock.acquire(timeout=5)
        os.chmod(lock.path, 0o600)
        hinted = {os.path.dirname(trashed), os.path.dirname(lock.path), str(root / "team")}
        inventory = catalog.rescan(hinted)
        now = inventory.scanned_at + 10 * DAY
        plan = gc.plan(inventory, codes=gc.GC_CODES, days=0, now=now)
        perms = plan_permissions(inventory)
    planned = [
        *plan.paths,
        *(i.path for i in plan.skipped),
        *(c.path for c in perms.changes),
        *(p for p, _ in perms.skipped),
    ]
    assert planned, "nothing planned at all: the test would prove nothing"
    assert not [p for p in planned if caches.reserved(os.path.relpath(p, root))]
    assert str(root / "alpine:3.19") in {c.path for c in perms.changes}
