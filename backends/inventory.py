"""The inventory: every image of every cache, with findings and the defaults' presence.

`Inventory` is a snapshot the UI and the command line render; `Catalog` owns the
scanner and produces a new snapshot after each full scan or watch-hinted rescan.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from backends import config as config_mod
from backends.config import CacheSpec, Settings
from backends.defaults import DefaultImage, Presence, Profile, presence, resolve_defaults
from backends.findings import evaluate
from backends.model import Image
from backends.scan import Change, Scanner, ScanStats


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """One cache's totals and the filesystem it lives on."""

    spec: CacheSpec
    images: int
    bytes: int
    free: int | None
    """Bytes free on the cache's filesystem for unprivileged users; None if unknown."""
    capacity: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything known about the caches at one moment."""

    settings: Settings
    profile: Profile
    defaults: tuple[DefaultImage, ...]
    presence: tuple[Presence, ...]
    images: tuple[Image, ...]
    caches: tuple[CacheStatus, ...]
    problems: tuple[str, ...]
    stats: ScanStats
    scanned_at: float
    change: Change = field(default_factory=Change)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of every file listed."""
        return sum(image.stat.size for image in self.images)


def _status(spec: CacheSpec, images: list[Image], problems: dict[str, str]) -> CacheStatus:
    mine = [image for image in images if image.root == spec.path]
    free = capacity = None
    error = problems.get(spec.path)
    try:
        usage = shutil.disk_usage(spec.path)
        free, capacity = usage.free, usage.total
    except OSError as exc:
        error = error or f"cannot read {spec.path}: {exc.strerror or exc}"
    return CacheStatus(spec, len(mine), sum(i.stat.size for i in mine), free, capacity, error)


class Catalog:
    """Keeps a scanner over the configured caches and hands out inventories."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.profile, defaults = resolve_defaults(settings)
        self.defaults = tuple(defaults)
        self.scanner = Scanner(
            settings.caches, workers=settings.scan_workers, dir_mode=settings.dir_mode
        )

    def scan(self, now: float | None = None) -> Inventory:
        """Walk every cache (headers of unchanged files are not read again)."""
        change, stats = self.scanner.scan()
        return self._snapshot(change, stats, now)

    def rescan(self, dirs: Iterable[str], now: float | None = None) -> Inventory:
        """Re-list only the directories a watcher said changed."""
        change, stats = self.scanner.rescan(dirs)
        return self._snapshot(change, stats, now)

    def _snapshot(self, change: Change, stats: ScanStats, now: float | None) -> Inventory:
        now = time.time() if now is None else now
        images = evaluate(
            self.scanner.images(),
            self.defaults,
            now=now,
            stale_days=self.settings.stale_days,
            file_mode=self.settings.file_mode,
        )
        roots = [(spec.kind, spec.path) for spec in self.settings.caches]
        problems: dict[str, str] = {}
        for cache in self.scanner.caches:
            problems.update(cache.problems)
        return Inventory(
            settings=self.settings,
            profile=self.profile,
            defaults=self.defaults,
            presence=tuple(presence(self.defaults, roots, images)),
            images=tuple(images),
            caches=tuple(_status(spec, images, problems) for spec in self.settings.caches),
            problems=tuple(problems.values()),
            stats=stats,
            scanned_at=now,
            change=change,
        )


def open_catalog(settings: Settings) -> Catalog:
    """A catalog over `settings`' caches, refusing caches whose roots cannot be read."""
    problems = config_mod.check_cache_paths(settings.caches)
    if problems:
        raise config_mod.ConfigError("\n".join(problems))
    if not settings.caches:
        raise config_mod.ConfigError(
            "no cache configured: pass --cache KIND:PATH (e.g. --cache singularity:/shared/sif), "
            f"write a config file ({config_mod.user_config_path()} or {config_mod.SYSTEM_CONFIG}), "
            f"or set resource_manager.singularity_image_root in {config_mod.DETERMINED_CONFIG}"
        )
    return Catalog(settings)


def cache_of(inventory: Inventory, path: str) -> CacheSpec | None:
    """The configured cache a path lies in, if any."""
    path = os.path.abspath(path)
    for spec in inventory.settings.caches:
        if path == spec.path or path.startswith(spec.path.rstrip("/") + "/"):
            return spec
    return None
