"""The inventory: every image of every cache, with findings and the defaults' presence.

`Inventory` is a snapshot the UI and the command line render; `Catalog` owns the
scanner and produces a new snapshot after each full scan or watch-hinted rescan.

A snapshot costs little next to the scan that precedes it. The catalog keeps a
`findings.Evaluator`, the images with their findings in inventory order, and
each cache's totals; after a rescan it takes the records the scanner made or
dropped (`CacheScanner.take_changes`), has the evaluator judge those (and the
images whose `stale` is due to change), and patches its lists, handing the
very same `Image` objects out again for everything else. A watch event that
changed one file of 50,000 thus costs about what the rescan of its directory
costs. When that shortcut does not hold (the first scan, a large change, a
clock that went back, caches inside one another) every image is evaluated
again, reusing what did not change.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from imgcache.backends import config as config_mod
from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.defaults import (
    DefaultImage,
    Presence,
    PresencePlan,
    Profile,
    presence,
    resolve_defaults,
)
from imgcache.backends.inventory.findings import Evaluator
from imgcache.backends.inventory.model import Image
from imgcache.backends.inventory.scan import Change, ProgressCallback, Scanner, ScanStats, gc_pause


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


_ROOT = operator.attrgetter("root")
_SIZE = operator.attrgetter("stat.size")


def _totals(images: Iterable[Image]) -> dict[str, tuple[int, int]]:
    """Root -> (images, bytes).

    By runs of images with the same root, summed in C: a snapshot lists each
    cache's images together, so this is a few runs, not one step per image.
    """
    totals: dict[str, tuple[int, int]] = {}
    for root, run in itertools.groupby(images, _ROOT):
        members = list(run)
        count, size = totals.get(root, (0, 0))
        totals[root] = (count + len(members), size + sum(map(_SIZE, members)))
    return totals


def _status(
    spec: CacheSpec, totals: dict[str, tuple[int, int]], problems: dict[str, str]
) -> CacheStatus:
    count, size = totals.get(spec.path, (0, 0))
    free = capacity = None
    error = problems.get(spec.path)
    try:
        usage = shutil.disk_usage(spec.path)
        free, capacity = usage.free, usage.total
    except OSError as exc:
        error = error or f"cannot read {spec.path}: {exc.strerror or exc}"
    return CacheStatus(spec, count, size, free, capacity, error)


class Catalog:
    """Keeps a scanner over the configured caches and hands out inventories."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The pools' own defaults too: findings, presence and pulls treat them alike.
        self.profile, defaults = resolve_defaults(settings, pools=True)
        self.defaults = tuple(defaults)
        self.scanner = Scanner(
            settings.caches, workers=settings.scan_workers, dir_mode=settings.dir_mode
        )
        self._evaluator = Evaluator(
            self.defaults, stale_days=settings.stale_days, file_mode=settings.file_mode
        )
        # One snapshot at a time: the evaluator and the lists below carry over.
        self._snapshot_lock = threading.Lock()
        roots = [spec.path for spec in settings.caches]
        # Caches inside one another list the same files twice: no shortcuts then.
        self._incremental = not any(
            a == b or a.startswith(b.rstrip("/") + "/")
            for i, a in enumerate(roots)
            for b in roots[:i] + roots[i + 1 :]
        )
        # Per cache, in inventory order: the images with findings, their paths, bytes.
        self._lists: list[list[Image]] | None = None
        self._paths: list[list[str]] = []
        self._bytes: list[int] = []

    def scan(self, now: float | None = None, progress: ProgressCallback | None = None) -> Inventory:
        """Walk every cache (headers of unchanged files are not read again).

        `progress`, if given, is called as ``progress(done, found)`` from the
        scanning thread while the scan runs, at most ten times a second and once
        at the end (see `imgcache.backends.inventory.scan.ProgressCallback`); meant for a "reading
        headers 3,200/10,000" line during a long first scan.
        """
        change, stats = self.scanner.scan(progress)
        return self._snapshot(change, stats, now)

    def rescan(
        self,
        dirs: Iterable[str],
        now: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Inventory:
        """Re-list only the directories a watcher said changed (`progress` as for `scan`)."""
        change, stats = self.scanner.rescan(dirs, progress)
        return self._snapshot(change, stats, now)

    def _snapshot(self, change: Change, stats: ScanStats, now: float | None) -> Inventory:
        now = time.time() if now is None else now
        roots = [(spec.kind, spec.path) for spec in self.settings.caches]
        plan = PresencePlan(self.defaults, roots)
        with self._snapshot_lock, gc_pause:
            images = self._evaluate(now)
            if self._lists is not None:
                evaluator = self._evaluator
                present = plan.result(evaluator.image, evaluator.copies)
                totals: dict[str, tuple[int, int]] = {}
                for cache, members, size in zip(
                    self.scanner.caches, self._lists, self._bytes, strict=True
                ):
                    totals[cache.root] = (len(members), size)
            else:
                present = presence(self.defaults, roots, images)
                totals = _totals(images)
        problems: dict[str, str] = {}
        for cache in self.scanner.caches:
            problems.update(cache.problems)
        return Inventory(
            settings=self.settings,
            profile=self.profile,
            defaults=self.defaults,
            presence=tuple(present),
            images=tuple(images),
            caches=tuple(_status(spec, totals, problems) for spec in self.settings.caches),
            problems=tuple(problems.values()),
            stats=stats,
            scanned_at=now,
            change=change,
        )

    def _evaluate(self, now: float) -> list[Image]:
        """Every image with its findings at `now`, in inventory order (see the module)."""
        changes = [cache.take_changes() for cache in self.scanner.caches]
        lists = self._lists
        if self._incremental and lists is not None and None not in changes:
            merged: dict[str, Image | None] = {}
            for part in changes:
                merged.update(part)  # type: ignore[arg-type]
            if len(merged) <= max(64, sum(map(len, lists)) // 8):
                changed = self._evaluator.apply(merged, now)
                if changed is not None:
                    self._patch(changed)
                    return list(itertools.chain.from_iterable(lists))
        raw = [cache.sorted_images() for cache in self.scanner.caches]
        images = self._evaluator.run(list(itertools.chain.from_iterable(raw)), now)
        if not self._incremental:
            return images
        self._lists, start = [], 0
        for part in raw:
            self._lists.append(images[start : start + len(part)])
            start += len(part)
        self._paths = [[image.path for image in part] for part in self._lists]
        self._bytes = [sum(map(_SIZE, part)) for part in self._lists]
        return images

    def _patch(self, changed: dict[str, Image | None]) -> None:
        """Put the evaluator's changed images into the per-cache lists."""
        assert self._lists is not None
        roots = [cache.root.rstrip("/") + "/" for cache in self.scanner.caches]
        for path, image in changed.items():
            c = next((k for k, root in enumerate(roots) if path.startswith(root)), None)
            if c is None:
                continue  # not under any root: cannot be one of ours
            members, paths = self._lists[c], self._paths[c]
            i = bisect.bisect_left(paths, path)
            present = i < len(paths) and paths[i] == path
            if image is None:
                if present:
                    self._bytes[c] -= members[i].stat.size
                    del members[i], paths[i]
            elif present:
                self._bytes[c] += image.stat.size - members[i].stat.size
                members[i] = image
            else:
                self._bytes[c] += image.stat.size
                members.insert(i, image)
                paths.insert(i, path)


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
