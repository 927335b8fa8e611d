"""The incremental findings evaluator: `evaluate` for successive inventories of one catalog.

After a rescan, `Evaluator` redoes only what can have changed: the rules of the
images whose records are new, the `duplicate` groups they joined or left (kept
by `duplicates.DuplicateGroups`), and `stale`, which moves with the clock (a
compare per image; its wording only every day). An image whose findings did not
change is handed back as the same object, so a snapshot after a one-file rescan
of a 50,000-image cache makes a handful of records instead of 50,000.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence

from imgcache.backends.inventory.defaults import DefaultImage
from imgcache.backends.inventory.findings.duplicates import DuplicateGroups
from imgcache.backends.inventory.findings.rules import Rules, assemble, evaluate, with_findings
from imgcache.backends.inventory.findings.vocabulary import stale_finding
from imgcache.backends.inventory.model import Finding, Image

#: Margin kept from a day's edges when remembering which day a `stale` reason
#: is worded for: well above the microsecond rounding of `timedelta(seconds=...)`.
_DAY_EDGE = 1e-3
_NEVER = math.inf


class _Entry:
    """What an `Evaluator` remembers of one image between runs."""

    __slots__ = (
        "dup",
        "group",
        "head",
        "index",
        "last",
        "may_be_stale",
        "out",
        "raw",
        "seen",
        "stale",
        "stale_hi",
        "stale_lo",
        "stale_text",
        "superseded",
        "until",
    )

    def __init__(self, image: Image, rules: Rules) -> None:
        self.raw = image
        """The image as the scanner gave it; a new object means a new record."""
        self.head, self.superseded, self.may_be_stale, incomplete = rules.fixed(image)
        self.group = (image.root, image.ref) if image.ref is not None and not incomplete else None
        """The `duplicate` group it belongs to, if any: (root, ref)."""
        stat = image.stat
        self.last = max(stat.mtime, stat.atime)
        self.out: Image | None = None
        """The image with its findings, as last handed out."""
        self.dup: str | None = None
        """The kept copy `out` names in its `duplicate` finding, if any."""
        self.stale: Finding | None = None
        """`out`'s `stale` finding, if any."""
        # The `stale` finding for idle times in [stale_lo, stale_hi): one day's wording.
        self.stale_text: Finding | None = None
        self.stale_lo = self.stale_hi = 0.0
        self.until = _NEVER
        """A `now` from which `stale` must be looked at again (a little early)."""
        self.seen = 0
        self.index = 0


class Evaluator:
    """`evaluate` for the successive inventories of one catalog, redoing only what changed.

    `run(images, now)` returns what ``evaluate(images, defaults, now=now, ...)``
    would, and is meant for lists that mostly hold the same `Image` objects as
    the previous run (the scanner keeps the record of an unchanged file). Per
    image it remembers the findings that depend on the image alone; it redoes
    them only for an image that is a new object, regroups `duplicate` only for
    the references whose copies came, went or changed, and checks `stale`
    against `now` for every image, which is a compare (the reason's wording is
    remembered per day of idleness). An image whose findings are what they were
    is handed back as the object handed out last time.

    `apply(changes, now)` goes further when the caller knows which records
    changed (`imgcache.backends.inventory.scan.CacheScanner.take_changes`): it looks only at those,
    their `duplicate` groups, and the images whose `stale` is due to change by
    `now` (kept in a heap by when that is), and returns what changed.

    Not thread-safe: one call at a time (the catalog holds a lock).
    """

    def __init__(
        self, defaults: Sequence[DefaultImage], *, stale_days: int, file_mode: int = 0o644
    ) -> None:
        self._defaults = tuple(defaults)
        self._rules = Rules(self._defaults, stale_days, file_mode)
        self._stale_days = stale_days
        self._threshold = stale_days * 86400
        self._entries: dict[str, _Entry] = {}
        """By path."""
        self._dups = DuplicateGroups()
        self._extra = self._dups.extra
        """The groups' extra copies (the same dict), read for every image worked out."""
        self._due: list[tuple[float, int, _Entry]] = []
        """A heap of (until, tie-breaker, entry): whose `stale` to look at, by when."""
        self._tie = itertools.count()
        self._runs = 0
        self._now = -_NEVER
        self._whole = False
        """True when the entries describe the last list run (no path seen twice)."""

    def run(self, images: Iterable[Image], now: float) -> list[Image]:
        """`images` with their findings at `now`, in the same order (see the class)."""
        images = images if isinstance(images, list) else list(images)
        self._runs += 1
        run = self._runs
        entries = self._entries
        dups = self._dups
        touched: set[tuple[str, str]] = set()
        threshold = self._threshold
        result: list[Image] = []
        append = result.append
        for index, image in enumerate(images):
            path = image.path
            entry = entries.get(path)
            if entry is not None and entry.raw is image and entry.seen != run:
                entry.seen = run
                entry.index = index
                # The usual case, inline: the same record as last time. Its
                # `duplicate` can only have changed if its group was touched,
                # and those are redone below; so only `stale` needs a look.
                out = entry.out
                if entry.may_be_stale:
                    idle = now - entry.last
                    if idle < threshold:
                        if entry.stale is not None:
                            out = self._output(entry, now)
                    elif (
                        entry.stale is not entry.stale_text
                        or not entry.stale_lo <= idle < entry.stale_hi
                    ):
                        out = self._output(entry, now)
                append(out)
                continue
            if entry is not None:
                if entry.seen == run:
                    # The same path twice (caches inside one another): no shortcut is sound.
                    return self._start_over(images, now)
                dups.leave(path, entry.group, touched)
            entry = entries[path] = self._enter(image)
            if entry.group is not None:
                touched.add(entry.group)
            entry.seen = run
            entry.index = index
            append(self._output(entry, now))
        if len(entries) > len(result):
            # Files gone since the last run.
            for path, entry in list(entries.items()):
                if entry.seen != run:
                    del entries[path]
                    dups.leave(path, entry.group, touched)
        for key in touched:
            # The copies of these references changed: which one is extra may too.
            for path in dups.regroup(key):
                entry = entries[path]
                if entry.seen == run:
                    result[entry.index] = self._output(entry, now)
        tie = self._tie
        self._due = [(e.until, next(tie), e) for e in entries.values() if e.until != _NEVER]
        heapq.heapify(self._due)
        self._now = now
        self._whole = True
        return result

    def apply(self, changes: dict[str, Image | None], now: float) -> dict[str, Image | None] | None:
        """Take in changed records; returns path -> image with findings for what changed.

        `changes` maps the path of each record made or dropped since the last
        call (or `run`) to the new record, or to None for a file that is gone;
        every other image is assumed the same object as before. The answer maps
        every path whose image with findings is not the one handed out before to
        the new one (None: gone). None when this cannot be done - no complete
        `run` yet, or `now` earlier than last time - and a `run` is needed.
        """
        if not self._whole or now < self._now:
            return None
        self._now = now
        entries = self._entries
        dups = self._dups
        touched: set[tuple[str, str]] = set()
        changed: dict[str, Image | None] = {}
        redo: list[_Entry] = []
        for path, image in changes.items():
            entry = entries.get(path)
            if image is None:
                if entry is not None:
                    del entries[path]
                    dups.leave(path, entry.group, touched)
                    changed[path] = None
                continue
            if entry is not None:
                if entry.raw is image:
                    continue
                dups.leave(path, entry.group, touched)
            entry = entries[path] = self._enter(image)
            if entry.group is not None:
                touched.add(entry.group)
            redo.append(entry)
        for key in touched:
            redo.extend(entries[path] for path in dups.regroup(key))
        due = self._due
        while due and due[0][0] <= now:
            until, _, entry = heapq.heappop(due)
            if entry.until == until and entries.get(entry.raw.path) is entry:
                redo.append(entry)
        for entry in redo:
            before = entry.out
            out = self._output(entry, now)
            if out is not before:
                changed[entry.raw.path] = out
            if entry.until != _NEVER:
                heapq.heappush(due, (entry.until, next(self._tie), entry))
        return changed

    def image(self, path: str) -> Image | None:
        """The image at `path` with its findings, as last handed out."""
        entry = self._entries.get(path)
        return None if entry is None else entry.out

    def copies(self, root: str, ref: str) -> list[Image]:
        """The images of `ref` under `root` (names of unfinished writes aside), by path."""
        return [self._entries[path].out for path in self._dups.paths((root, ref))]  # type: ignore[misc]

    def _enter(self, image: Image) -> _Entry:
        entry = _Entry(image, self._rules)
        if entry.group is not None:
            self._dups.join(entry.group, image.path, image)
        return entry

    def _output(self, entry: _Entry, now: float) -> Image:
        """The entry's image with its findings at `now`; the last one if they are the same."""
        stale = None
        until = _NEVER
        if entry.may_be_stale:
            idle = now - entry.last
            if idle < self._threshold:
                # Stale from then on; a little early, as float sums round.
                until = entry.last + self._threshold - _DAY_EDGE
            else:
                if entry.stale_lo <= idle < entry.stale_hi:
                    stale = entry.stale_text
                else:
                    stale = self._stale(entry, idle)
                until = entry.last + entry.stale_hi - _DAY_EDGE if entry.stale_hi else now
        entry.until = until
        dup = self._extra.get(entry.raw.path) if self._extra else None
        out = entry.out
        if out is not None and stale is entry.stale and dup == entry.dup:
            return out
        found = assemble(entry.head, dup, entry.superseded, stale)
        out = entry.out = with_findings(entry.raw, found)
        entry.dup, entry.stale = dup, stale
        return out

    def _stale(self, entry: _Entry, idle: float) -> Finding:
        """The `stale` finding for `idle` seconds, remembered for the rest of that day."""
        stale = entry.stale_text = stale_finding(idle, self._stale_days)
        entry.stale_lo = entry.stale_hi = 0.0
        if math.isfinite(idle) and 86400 <= idle < 1e12:
            # The wording depends on the whole days only (see `stale_finding`); inside
            # the same day, away from its edges, it stays the same.
            day = dt.timedelta(seconds=idle).days
            entry.stale_lo = day * 86400 + _DAY_EDGE
            entry.stale_hi = (day + 1) * 86400 - _DAY_EDGE
        return stale

    def _start_over(self, images: list[Image], now: float) -> list[Image]:
        """Forget everything and evaluate `images` as `evaluate` does."""
        self._entries.clear()
        self._dups.clear()
        self._due.clear()
        self._whole = False
        return evaluate(
            images,
            self._defaults,
            now=now,
            stale_days=self._stale_days,
            file_mode=self._rules.file_mode,
        )
