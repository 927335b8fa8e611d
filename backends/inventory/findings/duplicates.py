"""The `duplicate` groups the incremental evaluator keeps between runs.

A group is the images of one reference in one cache root, (root, ref), whose
names are not those of unfinished writes. When a copy comes, goes or changes,
only its group is decided again (`DuplicateGroups.regroup`), with the same
choice of the copy kept as `evaluate` makes (`rules.rank`).
"""

from __future__ import annotations

from imgcache.backends.inventory.findings.rules import rank
from imgcache.backends.inventory.model import Image


class DuplicateGroups:
    """The copies of each (root, ref), and which of them are extra.

    `extra` is read by the evaluator for every image whose findings it works out,
    so it is a plain dict, and the same object for the life of the groups.
    """

    __slots__ = ("_groups", "extra")

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], dict[str, Image]] = {}
        """(root, ref) -> path -> image, for images whose names are not temporary."""
        self.extra: dict[str, str] = {}
        """Path of each extra copy -> the relative path of the copy that is kept."""

    def join(self, key: tuple[str, str], path: str, image: Image) -> None:
        """Put `image`, at `path`, in the group `key`; `regroup` then decides who is extra."""
        self._groups.setdefault(key, {})[path] = image

    def leave(self, path: str, key: tuple[str, str] | None, touched: set[tuple[str, str]]) -> None:
        """Take a replaced or vanished image out of its group `key` (None: it had none).

        The group is added to `touched`: which copy is extra may have changed.
        """
        self.extra.pop(path, None)
        if key is not None:
            members = self._groups.get(key)
            if members is not None:
                members.pop(path, None)
                if not members:
                    del self._groups[key]
            touched.add(key)

    def regroup(self, key: tuple[str, str]) -> list[str]:
        """Decide again which copies of `key` are extra; returns the paths where that changed."""
        members = self._groups.get(key)
        if not members:
            return []
        extra = self.extra
        changed = []
        if len(members) == 1:
            for path in members:
                if extra.pop(path, None) is not None:
                    changed.append(path)
            return changed
        keep = min(members.values(), key=rank)
        for path, image in members.items():
            if image is keep:
                if extra.pop(path, None) is not None:
                    changed.append(path)
            elif extra.get(path) != keep.rel:
                extra[path] = keep.rel
                changed.append(path)
        return changed

    def paths(self, key: tuple[str, str]) -> list[str]:
        """The paths of the copies in the group `key`, sorted; [] for no group."""
        members = self._groups.get(key)
        if not members:
            return []
        return sorted(members)

    def clear(self) -> None:
        """Forget every group (`extra` stays the same, now empty, dict)."""
        self._groups.clear()
        self.extra.clear()
