"""The catalog's incremental snapshots end where a fresh catalog starts.

After each change made to a cache on disk (a pull, a rewrite, a delete, a
directory renamed or closed, time passing), the inventory from a watch-hinted
rescan must be the one a new catalog's full scan produces: the same images
with the same findings, the same presence of the defaults, the same totals.
Also: a scan reports progress when asked, and only then.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.demo import GiB, MiB, write_sif, write_squashfs
from imgcache.backends.inventory import scan
from imgcache.backends.inventory.catalog import Catalog, Inventory
from imgcache.backends.inventory.model import CacheKind

DAY = 86400
NOW = 1_750_000_000.0
DEFAULT = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"


def _put_sif(path: Path, age_days: float, *, size: int = 2 * GiB, comp: str = "zstd") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sif(path, size, comp=comp, when=int(NOW - age_days * DAY))
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def _put_sqsh(path: Path, age_days: float, *, flags: int = 0x00C0, comp: str = "zstd") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_squashfs(path, 300 * MiB, comp=comp, flags=flags, when=int(NOW - age_days * DAY))
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


@pytest.fixture
def caches(tmp_path: Path) -> tuple[Settings, Path, Path]:
    sif = tmp_path / "sif"
    enroot = tmp_path / "enroot"
    for d in (tmp_path, sif, enroot):
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
    _put_sif(sif / DEFAULT, 400)
    _put_sif(sif / "determinedai" / "environments:old-1", 10)
    _put_sif(sif / "hpc" / "lammps:2024", 200)
    _put_sif(sif / "hpc" / "lammps:2024.sif", 300)
    _put_sif(sif / "hpc" / "gromacs:1", 95, comp="gzip")
    _put_sqsh(enroot / "nvidia+pytorch+25.09-py3.sqsh", 30, flags=0x00C2, comp="lzo")
    _put_sqsh(enroot / "hpc+namd+3.sqsh", 120)
    settings = Settings(
        caches=(
            CacheSpec(CacheKind.SINGULARITY, str(sif)),
            CacheSpec(CacheKind.ENROOT, str(enroot)),
        )
    )
    return settings, sif, enroot


def _same(inventory: Inventory, settings: Settings, now: float) -> None:
    fresh = Catalog(settings).scan(now=now)
    assert inventory.images == fresh.images
    assert inventory.presence == fresh.presence
    assert [(c.images, c.bytes, c.error) for c in inventory.caches] == [
        (c.images, c.bytes, c.error) for c in fresh.caches
    ]


def test_rescans_end_where_a_fresh_scan_starts(caches):
    settings, sif, enroot = caches
    catalog = Catalog(settings)
    now = NOW
    inventory = catalog.scan(now=now)
    _same(inventory, settings, now)
    assert {i.rel: i.codes for i in inventory.images}["hpc/lammps:2024.sif"] == (
        "duplicate",
        "stale",
    )

    def step(dirs: list[Path], advance: float = 60.0) -> Inventory:
        nonlocal now
        now += advance
        result = catalog.rescan([str(d) for d in dirs], now=now)
        _same(result, settings, now)
        return result

    # A pull lands; the other copy of lammps goes; gromacs is rewritten.
    _put_sif(sif / "hpc" / "namd:3", 0)
    step([sif / "hpc"])
    (sif / "hpc" / "lammps:2024").unlink()
    step([sif / "hpc"])
    _put_sif(sif / "hpc" / "gromacs:1", 0, comp="gzip", size=3 * GiB)
    step([sif / "hpc"])
    # The default goes missing, then comes back as an extra copy elsewhere.
    os.rename(sif / DEFAULT, sif / "determinedai" / "backup")
    step([sif / "determinedai"])
    # Closed to others, then opened again (the files in it are unchanged; a hint
    # names the directory itself, whose own listing says it is closed).
    (sif / "hpc").chmod(0o700)
    inventory = step([sif / "hpc"])
    assert all(i.blocked_by for i in inventory.images if "/hpc/" in i.path)
    (sif / "hpc").chmod(0o755)
    step([sif / "hpc"])
    # An enroot import, a temporary file, a directory removed whole.
    _put_sqsh(enroot / "hpc+lammps+2024.sqsh", 0)
    (enroot / ".imgcache-x.1.tmp").write_bytes(b"partial")
    step([enroot])
    shutil.rmtree(sif / "determinedai")
    step([sif])
    # Time passes: images cross the stale threshold and their idle time is reworded.
    for advance in (DAY, 30 * DAY, DAY - 1, 365 * DAY):
        step([], advance)
    # A full periodic scan after all that.
    now += 5
    _same(catalog.scan(now=now), settings, now)


def test_a_clock_that_goes_back_still_gives_the_right_findings(caches):
    settings, sif, _ = caches
    catalog = Catalog(settings)
    catalog.scan(now=NOW)
    earlier = NOW - 200 * DAY
    _same(catalog.rescan([str(sif)], now=earlier), settings, earlier)


def test_a_rescan_that_changes_nothing_hands_out_the_same_images(caches):
    settings, sif, _ = caches
    catalog = Catalog(settings)
    first = catalog.scan(now=NOW)
    again = catalog.rescan([str(sif / "hpc")], now=NOW + 1)
    assert all(a is b for a, b in zip(first.images, again.images, strict=True))


def test_a_full_scan_reports_its_progress_when_asked(caches, monkeypatch):
    settings, _, _ = caches
    monkeypatch.setattr(scan.progress, "PROGRESS_INTERVAL", 0.0)
    calls: list[tuple[int, int]] = []
    inventory = Catalog(settings).scan(
        now=NOW, progress=lambda done, found: calls.append((done, found))
    )
    total = len(inventory.images)
    assert calls[-1] == (total, total)
    assert all(0 <= done <= found <= total for done, found in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert [f for _, f in calls] == sorted(f for _, f in calls)
    # Rate-limited by default: a small scan reports little more than its end.
    monkeypatch.setattr(scan.progress, "PROGRESS_INTERVAL", 3600.0)
    calls.clear()
    Catalog(settings).scan(now=NOW, progress=lambda done, found: calls.append((done, found)))
    assert len(calls) <= 2 and calls[-1] == (total, total)


def test_a_directory_closed_to_others_is_seen_by_the_next_full_scan(caches):
    settings, sif, _ = caches
    scanner = scan.Scanner(settings.caches)
    scanner.scan()
    (sif / "hpc").chmod(0o700)
    scanner.scan()
    blocked = {i.path: i.blocked_by for i in scanner.images() if "/hpc/" in i.path}
    assert blocked and set(blocked.values()) == {str(sif / "hpc")}
