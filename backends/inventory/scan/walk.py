"""The directory walk: what the scanner saw of every directory of one cache.

`DirTree` lists directories with one `lstat` per entry and keeps, per
directory, its stat, its subdirectories and the record of each of its files, so
a watch hint re-lists only the directories that changed and an unchanged file
keeps its record. Files that are new or changed come out of a walk as `Pending`,
for `probing.probe_pending`; `DirTree.add_records` files their records once
their headers are read.

Every entry but a directory is listed: regular files, symbolic links, and FIFOs,
sockets and devices (which are never opened). imgcache's own directories
(`caches.RESERVED_DIRS`: the trash, the locks) are never listed, whether met in a
listing or named by a watch hint, and a recursive walk forgets every directory
below its start that it did not reach, so a full rescan ends where a fresh scan
would.
"""

from __future__ import annotations

import contextlib
import os
import stat as statmod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.model import (
    CacheKind,
    FileStat,
    Image,
    ProbeResult,
    image_with,
    new_image,
)
from imgcache.backends.inventory.scan import filestat
from imgcache.backends.inventory.scan.filestat import file_stat, same_stat
from imgcache.backends.inventory.scan.progress import ScanStats

_SKIP_DIRS = caches.RESERVED_DIRS
_S_ISDIR, _S_ISLNK = statmod.S_ISDIR, statmod.S_ISLNK

#: A file whose record must be (re)built: directory, name, path, lstat, link target.
Pending = tuple[str, str, str, FileStat, str | None]


@dataclass(slots=True)
class _Dir:
    """What the scanner saw of one directory."""

    stat: FileStat
    blocked_by: str | None
    """The closest directory at or above this one (inside the root) that other
    users cannot traverse, if any."""
    files: dict[str, Image] = field(default_factory=dict)
    subdirs: set[str] = field(default_factory=set)


def _remember(before: dict[str, Image], d: _Dir) -> None:
    """Add the files of `d` to `before`, by path (`_Dir.files` is by name)."""
    for image in d.files.values():
        before[image.path] = image


class DirTree:
    """The directories of one cache as last listed, with the record of every file."""

    def __init__(self, root: str, kind: CacheKind, dir_mode: int) -> None:
        self.root = root
        self.kind = kind
        # Others need the execute bit on every directory to reach an image.
        self._traverse_bits = dir_mode & 0o011
        self._dirs: dict[str, _Dir] = {}
        self.problems: dict[str, str] = {}
        """Directory -> why it could not be read."""

    def images(self) -> Iterator[Image]:
        """Every image found, in no particular order."""
        for d in self._dirs.values():
            yield from d.files.values()

    def walk(
        self,
        dirs: Iterable[str],
        stats: ScanStats,
        *,
        recursive: bool = False,
        report: Callable[[int, int], None] | None = None,
    ) -> tuple[dict[str, Image], dict[str, Image], list[Pending]]:
        """Re-list `dirs`, and new subdirectories whole (everything below, with `recursive`).

        A directory in imgcache's own trash or lock directory is not listed (and
        forgotten if it ever was); with `recursive`, a directory below one of
        `dirs` that the walk did not reach is forgotten.

        Returns the records of the files under the re-listed directories before
        and after, by path, and the files whose record must be made again (not in
        `after` yet: see `add_records`). `report`, if given, gets `(done, found)`
        after each directory (see `progress.ProgressCallback`).
        """
        before: dict[str, Image] = {}
        after: dict[str, Image] = {}
        pending: list[Pending] = []
        starts = {os.path.normpath(d) for d in dirs}
        queue = []
        for path in starts:
            if not self._inside(path):
                continue
            if self._reserved(path):
                # imgcache's own trash and locks: never listed, whatever a
                # watch event says; forget them if anything ever was.
                self._forget(path, before)
                continue
            queue.append(path)
        starts = set(queue)
        # Parents first (pop takes from the end), so a vanished subtree is dropped
        # whole before any of its directories would be listed on its own.
        queue.sort(key=len, reverse=True)
        visited: set[str] = set()
        # lstat results of subdirectories from their parent's listing: listing a
        # directory needs its own stat, and a second lstat would break "one lstat
        # per entry" (only the dirs asked for by name are lstat'ed themselves).
        known: dict[str, os.stat_result] = {}
        while queue:
            path = queue.pop()
            if path in visited:
                continue
            visited.add(path)
            old = self._dirs.get(path)
            if old is not None:
                _remember(before, old)
            new_subdirs = self._list(path, old, pending, after, stats, known)
            if report is not None:
                report(stats.files - len(pending), stats.files)
            if new_subdirs is None:
                # Gone or unreadable: forget it and everything below it.
                self._forget(path, before)
                continue
            d = self._dirs[path]
            for sub in d.subdirs:
                child = os.path.join(path, sub)
                if recursive or sub in new_subdirs or child not in self._dirs:
                    queue.append(child)
            # Subdirectories that disappeared take their subtree with them.
            for gone in (old.subdirs - d.subdirs) if old else ():
                self._forget(os.path.join(path, gone), before)
        if recursive:
            # Everything below a start was just walked: a directory kept from
            # before that the walk did not reach is no longer there to list.
            for start in starts:
                for sub in self._subtree(start):
                    if sub not in visited:
                        _remember(before, self._dirs.pop(sub))
        return before, after, pending

    def _forget(self, path: str, before: dict[str, Image]) -> None:
        """Drop `path` and everything below it, its files going into `before`."""
        for sub in self._subtree(path):
            _remember(before, self._dirs.pop(sub))

    def _reserved(self, path: str) -> bool:
        """True for a directory in (or of) imgcache's own directories in the cache."""
        return caches.reserved(path[len(self.root) :].strip("/"))

    def add_records(
        self,
        pending: Sequence[Pending],
        results: Sequence[ProbeResult | None],
        after: dict[str, Image],
    ) -> None:
        """Make the record of each pending file from its probe result and file it.

        Each goes to its directory and to `after`, by path; a file whose
        directory is gone by now, or that has no result, gets none.
        """
        dirs = self._dirs
        kind, root = self.kind, self.root
        skip = len(root)
        # Looked up on the module, once: a test may pin the owner names there.
        user_name, group_name = filestat.user_name, filestat.group_name
        for (dirpath, name, full, fst, _), result in zip(pending, results, strict=True):
            d = dirs.get(dirpath)
            if d is None or result is None:
                continue
            ref, ref_error = caches.ref_for(kind, full[skip:].lstrip("/"), result)
            # The fast constructor, positional in Image's field order: one per new
            # or changed file (see imgcache.backends.inventory.model.fast_constructor).
            image = new_image(
                kind,
                root,
                full,
                ref,
                ref_error,
                fst,
                result,
                user_name(fst.uid),
                group_name(fst.gid),
                d.blocked_by,
            )
            d.files[name] = image
            after[full] = image

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root.rstrip("/") + "/")

    def _subtree(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self._dirs if p == path or p.startswith(prefix)]

    def _blocked(self, path: str, st: FileStat) -> str | None:
        if path != self.root:
            parent = self._dirs.get(os.path.dirname(path))
            if parent is not None and parent.blocked_by:
                return parent.blocked_by
        if st.mode & self._traverse_bits != self._traverse_bits:
            return path
        return None

    def _list(
        self,
        path: str,
        old: _Dir | None,
        pending: list[Pending],
        after: dict[str, Image],
        stats: ScanStats,
        known: dict[str, os.stat_result],
    ) -> set[str] | None:
        """List one directory; returns its subdirectories that are new, or None if gone.

        Its own stat comes from `known` when its parent was just listed; the
        stats of its subdirectories go there for when they are listed.
        """
        try:
            raw = known.pop(path, None)
            if raw is None:
                raw = os.lstat(path)
                stats.lstats += 1
            st = file_stat(raw)
            if not statmod.S_ISDIR(st.mode):
                return None
            entries = list(os.scandir(path))
        except FileNotFoundError:
            self.problems.pop(path, None)
            return None
        except OSError as exc:
            self.problems[path] = f"cannot list {path}: {exc.strerror or exc}"
            return None
        self.problems.pop(path, None)
        stats.dirs += 1
        d = _Dir(st, self._blocked(path, st))
        self._dirs[path] = d
        new_subdirs: set[str] = set()
        files = d.files
        old_files = old.files if old is not None else {}
        old_subdirs = old.subdirs if old is not None else set()
        blocked_by = d.blocked_by
        # Counted in locals and added once: this loop runs for every entry.
        lstats = found = unchanged = 0
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and lstat
            lstats += 1
            mode = est.st_mode
            if _S_ISDIR(mode):
                name = entry.name
                if name in _SKIP_DIRS:
                    continue
                d.subdirs.add(name)
                known[entry.path] = est
                if name not in old_subdirs:
                    new_subdirs.add(name)
                continue
            # Regular files, links, and FIFOs, sockets and devices, which are
            # listed (a runtime would block on a FIFO named like an image) and
            # never opened (see probing.probe_pending).
            found += 1
            name = entry.name
            full = entry.path
            previous = old_files.get(name)
            if previous is not None and same_stat(previous.stat, est):
                # Unchanged: keep the record as it is (findings are recomputed
                # later) - unless its directory was opened or closed to others.
                if previous.blocked_by != blocked_by:
                    previous = image_with(previous, blocked_by, previous.findings)
                files[name] = previous
                after[full] = previous
                unchanged += 1
                continue
            fst = file_stat(est)
            link = None
            if _S_ISLNK(mode):
                with contextlib.suppress(OSError):
                    link = os.readlink(full)
            pending.append((path, name, full, fst, link))
        stats.lstats += lstats
        stats.files += found
        stats.memo_hits += unchanged
        return new_subdirs
