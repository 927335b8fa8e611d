"""What rescans changed: the `Change` of one rescan, and the record of them kept for readers.

`Change` says which paths a rescan added, changed and removed. `ChangeTracker`
keeps, for one cache, every image sorted by path and a journal of the records
made or dropped since its reader last asked, both in step with each rescan, so
a snapshot after a watch event costs what changed, not the whole cache.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imgcache.backends.inventory.model import Image


@dataclass(frozen=True, slots=True)
class Change:
    """Which paths a rescan added, changed and removed."""

    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @classmethod
    def between(cls, before: dict[str, Image], after: dict[str, Image]) -> Change:
        """The change from the records `before` to those `after`, both by path.

        A path is changed when its file's version (`FileStat.key`) is not the
        same; a record made again for the same version is not a change.
        """
        added = frozenset(p for p in after if p not in before)
        removed = frozenset(p for p in before if p not in after)
        changed = frozenset(
            p for p in after if p in before and before[p].stat.key != after[p].stat.key
        )
        return cls(added, changed, removed)


def _path_of(image: Image) -> str:
    return image.path


class ChangeTracker:
    """One cache's images sorted by path, and the journal of their changes, kept up to date."""

    def __init__(self, images: Callable[[], Iterable[Image]]) -> None:
        """`images` gives every image of the cache, for when they must be sorted afresh."""
        self._images = images
        # Every image sorted by path, and the paths alone (for bisect), kept up to
        # date by each rescan; None when they must be sorted again. A snapshot
        # wants them sorted after every watch event, and sorting 50,000 paths
        # costs more than the whole rescan of a directory.
        self._sorted: list[Image] | None = None
        self._sorted_paths: list[str] = []
        # Records made or dropped since `take_changes` last ran (see there).
        self._journal: dict[str, Image | None] | None = None

    def sorted_images(self) -> list[Image]:
        """Every image found, sorted by path (a new list each time)."""
        if self._sorted is None:
            self._sorted = sorted(self._images(), key=_path_of)
            self._sorted_paths = [image.path for image in self._sorted]
        return list(self._sorted)

    def take_changes(self) -> dict[str, Image | None] | None:
        """The records made or dropped since the last call: path -> record, or None if gone.

        A record is made for every new or changed file (and for one whose
        directory was opened or closed to others); every other image is the
        same object as before. None when that is not known - before the first
        call, or when so much changed that listing it is not worth it: then
        everything may have changed. Meant for one consumer (the catalog's
        snapshots); each call starts a new list.
        """
        journal = self._journal
        self._journal = {}
        return journal

    def note(self, gone: list[str], new: list[tuple[str, Image]]) -> None:
        """Keep the sorted list and the journal in step with what a rescan found."""
        journal = self._journal
        if journal is not None:
            journal.update(dict.fromkeys(gone))
            journal.update(new)
            if len(journal) > max(1024, len(self._sorted_paths) // 4):
                self._journal = None  # the consumer does better starting afresh
        images, paths = self._sorted, self._sorted_paths
        if images is None:
            return
        if len(gone) + len(new) > max(64, len(images) // 16):
            # Cheaper to sort again, when (and if) someone asks.
            self._sorted = None
            return
        for path in gone:
            i = bisect.bisect_left(paths, path)
            if i == len(paths) or paths[i] != path:
                self._sorted = None  # cannot happen; sort again rather than guess
                return
            del paths[i], images[i]
        for path, image in new:
            i = bisect.bisect_left(paths, path)
            if i < len(paths) and paths[i] == path:
                images[i] = image
            else:
                paths.insert(i, path)
                images.insert(i, image)
