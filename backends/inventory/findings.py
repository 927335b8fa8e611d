"""Findings: the fixed vocabulary of what is wrong with an image, and the rules.

Each rule looks at one image and, for `duplicate` and `superseded`, at the whole
inventory and the default images. The vocabulary is part of the JSON interface:
scripts filter on these words, so they never change meaning.

`evaluate` judges a list of images at once. `Evaluator` does the same for the
successive inventories of one catalog, and after a rescan redoes only what can
have changed: the rules of the images whose records are new, the `duplicate`
groups they joined or left, and `stale`, which moves with the clock (a compare
per image; its wording only every day). An image whose findings did not change
is handed back as the same object, so a snapshot after a one-file rescan of a
50,000-image cache makes a handful of records instead of 50,000.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import humanize

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.defaults import DefaultImage
from imgcache.backends.inventory.model import (
    CacheKind,
    Finding,
    Format,
    Image,
    image_with,
    new_finding,
)


@dataclass(frozen=True, slots=True)
class Term:
    """One word of the vocabulary, with what it means and what to do."""

    code: str
    title: str
    meaning: str
    advice: str


#: The vocabulary, in the order findings are listed (most urgent first).
VOCABULARY: dict[str, Term] = {
    t.code: t
    for t in (
        Term(
            "corrupt",
            "Corrupt",
            "A recognised image format whose structure is broken or truncated.",
            "Delete it and pull the image again; jobs that use it will fail.",
        ),
        Term(
            "incomplete",
            "Incomplete",
            "A temporary or partial file left by a write that did not finish.",
            "Delete it once no pull is writing it (imgcache cleans its own on start).",
        ),
        Term(
            "unshared",
            "Unshared",
            "Other users cannot read the file or reach its directory, "
            "so their jobs cannot open it.",
            "Run imgcache fix-perms, or chmod o+r the file and o+x its directories.",
        ),
        Term(
            "uncompressed",
            "Uncompressed",
            "squashfs data blocks are stored uncompressed (-noD, enroot's default), "
            "so the image costs more disk and more I/O at every start.",
            "Recompress with zstd (imgcache compress): the pyxis docs measured 18G -> 7.1G.",
        ),
        Term(
            "legacy-codec",
            "Legacy codec",
            "Compressed with lzo: squashfuse cannot mount it and some distributions' "
            "mksquashfs lack lzo.",
            "Recompress with zstd (imgcache compress).",
        ),
        Term(
            "duplicate",
            "Duplicate",
            "The same image reference is stored twice in one cache "
            "(e.g. with and without .sif); this is the extra copy.",
            "Delete the extra copy; the other one stays.",
        ),
        Term(
            "superseded",
            "Superseded",
            "Same repository as a current default image, with another tag.",
            "Delete it when no job still names this tag.",
        ),
        Term(
            "stale",
            "Stale",
            "Not a default image, and neither modified nor read for the configured number of days.",
            "Delete it if nobody needs it (imgcache gc --days N shows the plan first).",
        ),
    )
}
ORDER = tuple(VOCABULARY)


def finding(code: str, reason: str) -> Finding:
    """A `Finding` of `code` with the vocabulary's advice."""
    return Finding(code, reason, VOCABULARY[code].advice)


@lru_cache(maxsize=4096)
def _shared(code: str, reason: str) -> Finding:
    """`finding(code, reason)`, one object per (code, reason) for the rules' own use.

    Findings are immutable, and most reasons repeat from image to image ("stores
    data blocks uncompressed", "for 4 months"); sharing them saves making one per
    image per evaluation, and lets an unchanged set of findings be recognised by
    identity.
    """
    return new_finding(code, reason, VOCABULARY[code].advice)


_SUPERSEDED = "a default image of the same repository has another tag"
_SIF, _UNKNOWN = Format.SIF, Format.UNKNOWN
_ALL_UNCOMPRESSED = "was built with everything uncompressed"
_DATA_UNCOMPRESSED = "stores data blocks uncompressed (-noD)"


@lru_cache(maxsize=64)
def _compression_of(
    sif: bool, fully_uncompressed: bool, data_compressed: bool, compression: str | None
) -> tuple[Finding, ...]:
    """The compression findings of a squashfs described by these few facts (a handful
    of combinations in any cache, so worked out once each)."""
    where = "its primary partition" if sif else "it"
    found: tuple[Finding, ...] = ()
    if fully_uncompressed:
        found = (_shared("uncompressed", f"{where} {_ALL_UNCOMPRESSED}"),)
    elif not data_compressed:
        found = (_shared("uncompressed", f"{where} {_DATA_UNCOMPRESSED}"),)
    if compression == "lzo":
        found += (_shared("legacy-codec", f"{where} is compressed with lzo"),)
    return found


def _unshared(image: Image, file_mode: int) -> Finding | None:
    read_bits = file_mode & 0o044
    mode = image.stat.mode
    if image.probe.note and image.probe.note.startswith("symbolic link"):
        return None
    if mode & read_bits != read_bits:
        who = "others" if not mode & 0o004 else "the group"
        return _shared(
            "unshared",
            f"mode {mode & 0o7777:04o}: {who} cannot read it, so users' jobs cannot open it",
        )
    if image.blocked_by:
        rel = os.path.relpath(image.blocked_by, image.root)
        where = "the cache root" if rel == "." else f"directory {rel}"
        return _shared("unshared", f"{where} cannot be entered by other users")
    return None


@lru_cache(maxsize=8192)
def _days_text(days: int) -> str:
    """`humanize.naturaldelta` of `days` whole days (>= 1)."""
    return humanize.naturaldelta(dt.timedelta(days=days))


def _idle_text(seconds: float) -> str:
    """`humanize.naturaldelta(seconds)`, remembered by day where that is the same thing.

    From one day up, naturaldelta's words depend only on the timedelta's whole
    days (years, months and days are all counted from them), so the words of a
    number of days are worked out once per process.
    """
    if math.isfinite(seconds):
        try:
            days = dt.timedelta(seconds=seconds).days
        except OverflowError:
            days = 0  # humanize raises it, as it always did
        if days >= 1:
            return _days_text(days)
    return humanize.naturaldelta(seconds)


def _stale_finding(idle: float, days: int) -> Finding:
    return _shared(
        "stale", f"neither modified nor read for {_idle_text(idle)} (threshold {days} days)"
    )


def _repo_key(kind: CacheKind, ref: str) -> str:
    """The repository part of an `Image.ref` string (no tag, no digest)."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _default_keys(defaults: Sequence[DefaultImage], kind: CacheKind) -> tuple[set[str], set[str]]:
    refs_, repos = set(), set()
    for d in defaults:
        if d.ref is None:
            continue
        try:
            key = caches.ref_string(kind, d.ref)
        except ValueError:
            continue
        refs_.add(key)
        repos.add(_repo_key(kind, key))
    return refs_, repos


def _rank(image: Image) -> tuple[bool, float, int, str]:
    """Which copy of a duplicated reference to keep: usable, then newest, then shortest name."""
    return (image.probe.corrupt, -image.stat.mtime, len(image.path), image.path)


def _assemble(
    head: tuple[Finding, ...], keep: str | None, superseded: Finding | None, stale: Finding | None
) -> tuple[Finding, ...]:
    """An image's findings in vocabulary order: `head` (from `_Rules.fixed`), then
    `duplicate` when `keep` names the copy that is kept, `superseded`, `stale`."""
    found = head
    if keep is not None:
        found += (_shared("duplicate", f"the same image is also stored as {keep}"),)
    if superseded is not None:
        found += (superseded,)
    if stale is not None:
        found += (stale,)
    return found


def _with_findings(image: Image, found: tuple[Finding, ...]) -> Image:
    """`image` with `found` as its findings: the image itself when they are the same."""
    if found == image.findings:
        return image
    return image_with(image, image.blocked_by, found)


class _Rules:
    """The per-image rules for one set of defaults and settings.

    `fixed` gives what depends on the image alone (everything but `duplicate` and
    `stale`), in vocabulary order, split around where `duplicate` goes.
    """

    __slots__ = ("_default_files", "_keys", "file_mode", "stale_days")

    def __init__(self, defaults: Sequence[DefaultImage], stale_days: int, file_mode: int) -> None:
        # Per kind once, not per image: the defaults' refs and repositories.
        self._keys = {kind: _default_keys(defaults, kind) for kind in CacheKind}
        self._default_files = {os.path.abspath(d.file) for d in defaults if d.file}
        self.stale_days = stale_days
        self.file_mode = file_mode

    def fixed(self, image: Image) -> tuple[tuple[Finding, ...], Finding | None, bool, bool]:
        """(findings before `duplicate`, `superseded` or None, may be stale, is incomplete)."""
        probe = image.probe
        name = image.path.rpartition("/")[2]
        incomplete = caches.looks_incomplete(name)
        head: tuple[Finding, ...] = ()
        if probe.error is not None:
            head = (_shared("corrupt", probe.error or "broken"),)
        if incomplete:
            head += (_shared("incomplete", f"{name} is named like an unfinished write"),)
        known = probe.format is not _UNKNOWN
        if known or image.ref is not None:
            unshared = _unshared(image, self.file_mode)
            if unshared:
                head += (unshared,)
        sq = probe.squashfs
        if sq is not None and probe.error is None:
            head += _compression_of(
                probe.format is _SIF, sq.fully_uncompressed, sq.data_compressed, sq.compression
            )
        default_refs, default_repos = self._keys[image.cache]
        ref = image.ref
        is_default = ref in default_refs or image.path in self._default_files
        superseded = None
        if (
            ref is not None
            and default_repos
            and not is_default
            and _repo_key(image.cache, ref) in default_repos
        ):
            superseded = _shared("superseded", _SUPERSEDED)
        return head, superseded, not is_default and known, incomplete


def evaluate(
    images: Iterable[Image],
    defaults: Sequence[DefaultImage],
    *,
    now: float,
    stale_days: int,
    file_mode: int = 0o644,
) -> list[Image]:
    """Return `images` with their findings computed, in the same order.

    An image whose findings are already the ones computed comes back as itself.
    """
    images = list(images)
    rules = _Rules(defaults, stale_days, file_mode)

    groups: dict[tuple[str, str], list[Image]] = {}
    for image in images:
        if image.ref is not None and not caches.looks_incomplete(image.path.rpartition("/")[2]):
            groups.setdefault((image.root, image.ref), []).append(image)
    extra: dict[str, str] = {}
    for group in groups.values():
        if len(group) > 1:
            keep = min(group, key=_rank)
            for image in group:
                if image is not keep:
                    extra[image.path] = keep.rel

    threshold = stale_days * 86400
    result = []
    for image in images:
        head, superseded, may_be_stale, _ = rules.fixed(image)
        keep = extra.get(image.path) if extra else None
        stale = None
        if may_be_stale:
            stat = image.stat
            idle = now - max(stat.mtime, stat.atime)
            if not idle < threshold:
                stale = _stale_finding(idle, stale_days)
        result.append(_with_findings(image, _assemble(head, keep, superseded, stale)))
    return result


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

    def __init__(self, image: Image, rules: _Rules) -> None:
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
        self._rules = _Rules(self._defaults, stale_days, file_mode)
        self._stale_days = stale_days
        self._threshold = stale_days * 86400
        self._entries: dict[str, _Entry] = {}
        """By path."""
        self._groups: dict[tuple[str, str], dict[str, Image]] = {}
        """(root, ref) -> path -> image, for images whose names are not temporary."""
        self._extra: dict[str, str] = {}
        """Path of each extra copy -> the relative path of the copy that is kept."""
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
                self._leave(path, entry, touched)
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
                    self._leave(path, entry, touched)
        for key in touched:
            # The copies of these references changed: which one is extra may too.
            for path in self._regroup(key):
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
        touched: set[tuple[str, str]] = set()
        changed: dict[str, Image | None] = {}
        redo: list[_Entry] = []
        for path, image in changes.items():
            entry = entries.get(path)
            if image is None:
                if entry is not None:
                    del entries[path]
                    self._leave(path, entry, touched)
                    changed[path] = None
                continue
            if entry is not None:
                if entry.raw is image:
                    continue
                self._leave(path, entry, touched)
            entry = entries[path] = self._enter(image)
            if entry.group is not None:
                touched.add(entry.group)
            redo.append(entry)
        for key in touched:
            redo.extend(entries[path] for path in self._regroup(key))
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
        members = self._groups.get((root, ref))
        if not members:
            return []
        return [self._entries[path].out for path in sorted(members)]  # type: ignore[misc]

    def _enter(self, image: Image) -> _Entry:
        entry = _Entry(image, self._rules)
        if entry.group is not None:
            self._groups.setdefault(entry.group, {})[image.path] = image
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
        found = _assemble(entry.head, dup, entry.superseded, stale)
        out = entry.out = _with_findings(entry.raw, found)
        entry.dup, entry.stale = dup, stale
        return out

    def _stale(self, entry: _Entry, idle: float) -> Finding:
        """The `stale` finding for `idle` seconds, remembered for the rest of that day."""
        stale = entry.stale_text = _stale_finding(idle, self._stale_days)
        entry.stale_lo = entry.stale_hi = 0.0
        if math.isfinite(idle) and 86400 <= idle < 1e12:
            # The wording depends on the whole days only (see `_idle_text`); inside
            # the same day, away from its edges, it stays the same.
            day = dt.timedelta(seconds=idle).days
            entry.stale_lo = day * 86400 + _DAY_EDGE
            entry.stale_hi = (day + 1) * 86400 - _DAY_EDGE
        return stale

    def _leave(self, path: str, entry: _Entry, touched: set[tuple[str, str]]) -> None:
        """Take a replaced or vanished image out of its `duplicate` group."""
        self._extra.pop(path, None)
        if entry.group is not None:
            members = self._groups.get(entry.group)
            if members is not None:
                members.pop(path, None)
                if not members:
                    del self._groups[entry.group]
            touched.add(entry.group)

    def _regroup(self, key: tuple[str, str]) -> list[str]:
        """Decide again which copies of `key` are extra; returns the paths where that changed."""
        members = self._groups.get(key)
        if not members:
            return []
        extra = self._extra
        changed = []
        if len(members) == 1:
            for path in members:
                if extra.pop(path, None) is not None:
                    changed.append(path)
            return changed
        keep = min(members.values(), key=_rank)
        for path, image in members.items():
            if image is keep:
                if extra.pop(path, None) is not None:
                    changed.append(path)
            elif extra.get(path) != keep.rel:
                extra[path] = keep.rel
                changed.append(path)
        return changed

    def _start_over(self, images: list[Image], now: float) -> list[Image]:
        """Forget everything and evaluate `images` as `evaluate` does."""
        self._entries.clear()
        self._groups.clear()
        self._extra.clear()
        self._due.clear()
        self._whole = False
        return evaluate(
            images,
            self._defaults,
            now=now,
            stale_days=self._stale_days,
            file_mode=self._rules.file_mode,
        )
