"""gc: what the plan selects, what it never selects, and that applying it removes exactly that."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.demo import write_squashfs
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.maintenance import MaintenanceError, gc

DAY = 86400.0


def age(path: Path, days: float) -> None:
    when = os.stat(path).st_mtime - days * DAY
    os.utime(path, (when, when))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A singularity cache with one file per case."""
    root = tmp_path / "sif"
    (root / "library").mkdir(parents=True)
    write_squashfs(root / "library" / "fresh:1", 4096)
    write_squashfs(root / "library" / "old:1", 8192)
    age(root / "library" / "old:1", 400)
    # The default (cpu) image: old, but never collected.
    write_squashfs(root / "ubuntu:22.04", 4096)
    age(root / "ubuntu:22.04", 400)
    # Another tag of the default's repository: superseded.
    write_squashfs(root / "ubuntu:20.04", 4096)
    # The same reference twice: the older copy is the duplicate.
    write_squashfs(root / "library" / "dup:1", 4096)
    write_squashfs(root / "library" / "dup:1.sif", 4096)
    age(root / "library" / "dup:1.sif", 3)
    # Truncated: bytes_used beyond the end of the file.
    write_squashfs(root / "library" / "cut:1", 4096, bytes_used=1 << 20)
    age(root / "library" / "cut:1", 2)
    # Left over by a crashed pull two days ago, and one being written right now.
    write_squashfs(root / "library" / ".imgcache-gone:1.host-1-1.tmp", 4096)
    age(root / "library" / ".imgcache-gone:1.host-1-1.tmp", 2)
    write_squashfs(root / "library" / ".imgcache-live:1.host-2-1.tmp", 4096)
    # A link named like a partial download, old.
    (root / "library" / "link:1.part").symlink_to("old:1")
    os.utime(root / "library" / "link:1.part", (0, 0), follow_symlinks=False)
    return root


def scan(root: Path, **settings):
    spec = CacheSpec(CacheKind.SINGULARITY, str(root))
    base = Settings(caches=(spec,), default_images={"cpu": "ubuntu:22.04"}, stale_days=90)
    from dataclasses import replace

    return Catalog(replace(base, **settings)).scan()


def names(items) -> set[str]:
    return {os.path.basename(i.path) for i in items}


def test_default_plan_selects_broken_leftover_duplicate_and_stale(cache: Path):
    plan = gc.plan(scan(cache))
    assert plan.codes == gc.DEFAULT_CODES
    assert names(plan.items) == {"old:1", "cut:1", ".imgcache-gone:1.host-1-1.tmp", "dup:1.sif"}
    assert plan.total_bytes == sum(i.size for i in plan.items)
    reasons = {os.path.basename(i.path): i.reason for i in plan.items}
    assert reasons["old:1"].startswith("stale: neither modified nor read for")
    assert reasons["dup:1.sif"].startswith("duplicate: the same image is also stored as")
    assert reasons["cut:1"].startswith("corrupt: truncated")
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert skipped[".imgcache-live:1.host-2-1.tmp"].endswith("it may still be being written")


def test_a_default_image_is_never_selected_and_the_plan_names_its_environment(cache: Path):
    age(cache / "ubuntu:20.04", 2 / 24)  # past gc's hour
    plan = gc.plan(scan(cache), codes=gc.GC_CODES, days=0)
    assert "ubuntu:22.04" not in names(plan.items)
    # Even broken, the default stays, and the plan says whose default it is.
    write_squashfs(cache / "ubuntu:22.04", 4096, bytes_used=1 << 20)
    age(cache / "ubuntu:22.04", 400)
    plan = gc.plan(scan(cache), codes=gc.GC_CODES, days=0)
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert skipped["ubuntu:22.04"] == "ubuntu:22.04 is the CPU default image"
    # ... and a stale default would not even be stale; superseded tags are, on request.
    assert "ubuntu:20.04" in names(plan.items)
    assert "ubuntu:20.04" not in names(gc.plan(scan(cache), days=1).items)


def test_days_overrides_stale_days_for_this_plan(cache: Path):
    age(cache / "library" / "fresh:1", 2 / 24)
    inventory = scan(cache)
    assert "fresh:1" not in names(gc.plan(inventory, codes=["stale"]).items)
    assert "fresh:1" in names(gc.plan(inventory, codes=["stale"], days=0).items)
    assert "old:1" not in names(gc.plan(inventory, codes=["stale"], days=500).items)


@pytest.mark.parametrize("seconds", [58, gc.MIN_AGE_SECONDS - 60])
def test_a_file_written_within_the_hour_is_never_selected_whatever_days_says(
    cache: Path, seconds: float
):
    assert gc.MIN_AGE_SECONDS == 3600
    young = cache / "library" / "fresh:1"
    age(young, seconds / DAY)
    plan = gc.plan(scan(cache), codes=gc.GC_CODES, days=0)
    assert "fresh:1" not in names(plan.items)
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert "within the last hour" in skipped["fresh:1"]
    # An hour and a minute later it goes like any other.
    age(young, 2 * 60 / DAY + (gc.MIN_AGE_SECONDS - seconds) / DAY)
    assert "fresh:1" in names(gc.plan(scan(cache), codes=gc.GC_CODES, days=0).items)


def test_symlinks_and_live_files_are_skipped_with_a_reason(cache: Path):
    plan = gc.plan(scan(cache), codes=["incomplete", "corrupt"], now=None)
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert skipped["link:1.part"] == "a symbolic link; imgcache never removes links"
    assert ".imgcache-live:1.host-2-1.tmp" in skipped
    assert "link:1.part" not in names(plan.items)
    # Past the hour, the liveness rule is one function, easy to swap.
    age(cache / "library" / ".imgcache-live:1.host-2-1.tmp", 2 / 24)
    plan = gc.plan(scan(cache), codes=["incomplete"], is_live=lambda image, now: True)
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert skipped[".imgcache-live:1.host-2-1.tmp"].endswith("its writer still runs: it may "
                                                              "still be being written")  # fmt: skip
    # By default: another host's temp is left alone until untouched for 6 hours.
    plan = gc.plan(scan(cache), codes=["incomplete"])
    assert ".imgcache-live:1.host-2-1.tmp" not in names(plan.items)
    age(cache / "library" / ".imgcache-live:1.host-2-1.tmp", 5 / 24)
    plan = gc.plan(scan(cache), codes=["incomplete"])
    assert ".imgcache-live:1.host-2-1.tmp" in names(plan.items)


def test_no_finding_chosen_selects_no_image(cache: Path):
    inventory = scan(cache)
    assert gc.plan(inventory).items  # the defaults select something in this cache
    assert gc.plan(inventory, codes=()).items == ()


def test_unknown_codes_are_a_usage_error(cache: Path):
    with pytest.raises(MaintenanceError, match="cannot select by unshared") as caught:
        gc.plan(scan(cache), codes=["unshared"])
    assert caught.value.reason == "usage"


def test_apply_removes_exactly_what_the_plan_listed(cache: Path):
    inventory = scan(cache)
    plan = gc.plan(inventory)
    before = {i.path for i in inventory.images}
    result = gc.apply(plan, inventory.settings)
    assert sorted(r.path for r in result.removed) == sorted(plan.paths)
    assert not result.failed
    after = {i.path for i in scan(cache).images}
    assert before - after == set(plan.paths)


def test_apply_skips_a_file_that_changed_since_the_plan(cache: Path):
    inventory = scan(cache)
    plan = gc.plan(inventory)
    changed = cache / "library" / "old:1"
    with changed.open("ab") as f:
        f.write(b"appended by someone")
    result = gc.apply(plan, inventory.settings, purge=True)
    assert str(changed) in {p for p, _ in result.failed}
    assert changed.exists()
    assert {r.path for r in result.removed} == set(plan.paths) - {str(changed)}


def test_expired_trash_is_in_the_plan_and_apply_purges_only_that(cache: Path):
    import time

    from imgcache.backends.inventory.caches import TRASH_DIR
    from imgcache.backends.maintenance import purge

    now = time.time()
    box = cache / TRASH_DIR
    old = box / purge.batch_name(now - 30 * DAY)
    recent = box / purge.batch_name(now - DAY)
    for batch in (old, recent):
        (batch / "library").mkdir(parents=True)
        (batch / "library" / "gone:1").write_bytes(b"x" * 5000)
    inventory = scan(cache)
    plan = gc.plan(inventory, codes=["corrupt"])
    assert [b.path for b in plan.trash] == [str(old)]
    assert plan.trash_bytes == 5000 and "past the 7-day grace period" in plan.trash[0].reason
    assert plan.as_dict()["trash"] == [b.as_dict() for b in plan.trash]
    # A batch that expires only after the plan was shown is not purged by it.
    late = box / purge.batch_name(now - 20 * DAY)
    late.mkdir()
    result = gc.apply(plan, inventory.settings)
    assert result.purged_batches == (str(old),)
    assert not old.exists() and recent.exists() and late.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
def test_files_of_owners_not_allowed_are_kept_in_the_plan(cache: Path):
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.chown(cache / "library" / "old:1", nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    plan = gc.plan(scan(cache, allowed_owners=("root",)))
    assert "old:1" not in names(plan.items)
    skipped = {os.path.basename(i.path): i.reason for i in plan.skipped}
    assert skipped["old:1"] == "owned by nobody, who is not in delete.allowed_owners"
