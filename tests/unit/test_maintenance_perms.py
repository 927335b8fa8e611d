"""fix-permissions: only read/traverse bits are added, only inside the root, never through links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.demo import write_squashfs
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.maintenance import perms


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def scan(root: Path, **settings):
    spec = CacheSpec(CacheKind.ENROOT, str(root))
    return Catalog(Settings(caches=(spec,), **settings)).scan()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    root = tmp_path / "enroot"
    (root / "team" / "deep").mkdir(parents=True)
    write_squashfs(root / "team" / "deep" / "a+1.sqsh", 4096)
    write_squashfs(root / "b+1.sqsh", 4096)
    write_squashfs(root / "ok+1.sqsh", 4096)
    write_squashfs(root / ".imgcache-c+1.sqsh.h-1-1.tmp", 4096)
    outside = tmp_path / "outside.sqsh"
    write_squashfs(outside, 4096)
    (root / "link+1.sqsh").symlink_to(outside)
    for path, m in [
        (root / "team", 0o700),
        (root / "team" / "deep", 0o750),
        (root / "team" / "deep" / "a+1.sqsh", 0o600),
        (root / "b+1.sqsh", 0o640),
        (root / "ok+1.sqsh", 0o644),
        (root / ".imgcache-c+1.sqsh.h-1-1.tmp", 0o600),
        (outside, 0o600),
    ]:
        path.chmod(m)
    return root


def test_plan_adds_only_the_missing_read_and_traverse_bits(cache: Path):
    plan = perms.plan_permissions(scan(cache))
    assert [c.line for c in plan.changes] == [
        f"0700 -> 0755 {cache}/team/",
        f"0750 -> 0755 {cache}/team/deep/",
        f"0640 -> 0644 {cache}/b+1.sqsh",
        f"0600 -> 0644 {cache}/team/deep/a+1.sqsh",
    ]
    skipped = dict(plan.skipped)
    assert "symbolic link" in skipped[str(cache / "link+1.sqsh")]
    assert "unfinished write" in skipped[str(cache / ".imgcache-c+1.sqsh.h-1-1.tmp")]


def test_apply_changes_modes_and_reports_them(cache: Path, tmp_path: Path):
    plan = perms.plan_permissions(scan(cache))
    result = perms.apply_permissions(plan)
    assert [c.line for c in result.changed] == [c.line for c in plan.changes]
    assert not result.failed
    assert mode(cache / "team") == 0o755 and mode(cache / "team" / "deep") == 0o755
    assert mode(cache / "team" / "deep" / "a+1.sqsh") == 0o644
    assert mode(cache / "b+1.sqsh") == 0o644
    # Nothing behind the link and nothing being written was touched.
    assert mode(tmp_path / "outside.sqsh") == 0o600
    assert mode(cache / ".imgcache-c+1.sqsh.h-1-1.tmp") == 0o600
    # Applying again finds nothing left to do.
    assert perms.plan_permissions(scan(cache)).changes == ()


def test_a_narrower_configured_mode_adds_only_its_bits(cache: Path):
    plan = perms.plan_permissions(scan(cache, file_mode=0o640, dir_mode=0o750))
    lines = [c.line for c in plan.changes]
    assert f"0600 -> 0640 {cache}/team/deep/a+1.sqsh" in lines
    assert f"0700 -> 0750 {cache}/team/" in lines
    assert not any("b+1.sqsh" in line for line in lines)


def test_bits_are_never_taken_away(cache: Path):
    (cache / "ok+1.sqsh").chmod(0o4777)
    plan = perms.plan_permissions(scan(cache))
    assert not any(c.path.endswith("ok+1.sqsh") for c in plan.changes)


def test_a_directory_swapped_for_a_link_after_the_plan_is_refused(cache: Path, tmp_path: Path):
    plan = perms.plan_permissions(scan(cache))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    write_squashfs(elsewhere / "deep" / "a+1.sqsh", 4096)
    elsewhere.chmod(0o700)
    (elsewhere / "deep" / "a+1.sqsh").chmod(0o600)
    (cache / "team").rename(cache / "team.old")
    (cache / "team").symlink_to(elsewhere)
    result = perms.apply_permissions(plan)
    failed = dict(result.failed)
    assert "team is a symbolic link" in failed[str(cache / "team")]
    assert "team is a symbolic link" in failed[str(cache / "team" / "deep" / "a+1.sqsh")]
    assert mode(elsewhere) == 0o700 and mode(elsewhere / "deep" / "a+1.sqsh") == 0o600
    assert [c.path for c in result.changed] == [str(cache / "b+1.sqsh")]


def test_a_file_replaced_after_the_plan_is_refused(cache: Path):
    plan = perms.plan_permissions(scan(cache))
    target = cache / "b+1.sqsh"
    target.unlink()
    write_squashfs(target, 4096)
    target.chmod(0o600)
    os.utime(target, (1, 1))  # the inode number may well be reused; the rest differs
    result = perms.apply_permissions(plan)
    assert "changed since it was scanned" in dict(result.failed)[str(target)]
    assert mode(target) == 0o600
