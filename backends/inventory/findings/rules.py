"""The findings' rules: which words of the vocabulary apply to each image.

Each rule looks at one image and, for `duplicate` and `superseded`, at the whole
inventory and the default images. `Rules.fixed` gives what depends on the image
alone; `evaluate` adds `duplicate` (`rank` picks the copy kept) and `stale`, and
`assemble` puts them in vocabulary order. The incremental evaluator
(`findings.evaluator`) reuses these pieces.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from functools import lru_cache

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.defaults import DefaultImage
from imgcache.backends.inventory.findings.vocabulary import (
    ALL_UNCOMPRESSED,
    DATA_UNCOMPRESSED,
    SUPERSEDED_REASON,
    shared_finding,
    stale_finding,
)
from imgcache.backends.inventory.model import CacheKind, Finding, Format, Image, image_with

_SIF, _UNKNOWN = Format.SIF, Format.UNKNOWN


@lru_cache(maxsize=64)
def _compression_of(
    sif: bool, fully_uncompressed: bool, data_compressed: bool, compression: str | None
) -> tuple[Finding, ...]:
    """The compression findings of a squashfs described by these few facts (a handful
    of combinations in any cache, so worked out once each)."""
    where = "its primary partition" if sif else "it"
    found: tuple[Finding, ...] = ()
    if fully_uncompressed:
        found = (shared_finding("uncompressed", f"{where} {ALL_UNCOMPRESSED}"),)
    elif not data_compressed:
        found = (shared_finding("uncompressed", f"{where} {DATA_UNCOMPRESSED}"),)
    if compression == "lzo":
        found += (shared_finding("legacy-codec", f"{where} is compressed with lzo"),)
    return found


def _unshared(image: Image, file_mode: int) -> Finding | None:
    read_bits = file_mode & 0o044
    mode = image.stat.mode
    if image.probe.note and image.probe.note.startswith("symbolic link"):
        return None
    if mode & read_bits != read_bits:
        who = "others" if not mode & 0o004 else "the group"
        return shared_finding(
            "unshared",
            f"mode {mode & 0o7777:04o}: {who} cannot read it, so users' jobs cannot open it",
        )
    if image.blocked_by:
        rel = os.path.relpath(image.blocked_by, image.root)
        where = "the cache root" if rel == "." else f"directory {rel}"
        return shared_finding("unshared", f"{where} cannot be entered by other users")
    return None


def _not_an_image(image: Image) -> Finding | None:
    """The `not-an-image` finding of a file whose probe says it is no image, if it
    claims to be one: by its format (an old squashfs, a SIF with no root
    filesystem), by being a FIFO, socket or device, or by its name."""
    probe = image.probe
    if probe.format is not _UNKNOWN or not stat.S_ISREG(image.stat.mode):
        return shared_finding("not-an-image", probe.note or str(probe.not_image))
    if caches.named_like_image(image.cache, image.rel):
        return shared_finding("not-an-image", f"{probe.not_image}, though named like an image")
    return None  # a README or notes file: not an image, and not pretending to be one


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


def rank(image: Image) -> tuple[bool, float, int, str]:
    """Which copy of a duplicated reference to keep: usable, then newest, then shortest name."""
    return (image.probe.corrupt, -image.stat.mtime, len(image.path), image.path)


def assemble(
    head: tuple[Finding, ...], keep: str | None, superseded: Finding | None, stale: Finding | None
) -> tuple[Finding, ...]:
    """An image's findings in vocabulary order: `head` (from `Rules.fixed`), then
    `duplicate` when `keep` names the copy that is kept, `superseded`, `stale`."""
    found = head
    if keep is not None:
        found += (shared_finding("duplicate", f"the same image is also stored as {keep}"),)
    if superseded is not None:
        found += (superseded,)
    if stale is not None:
        found += (stale,)
    return found


def with_findings(image: Image, found: tuple[Finding, ...]) -> Image:
    """`image` with `found` as its findings: the image itself when they are the same."""
    if found == image.findings:
        return image
    return image_with(image, image.blocked_by, found)


class Rules:
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
            head = (shared_finding("corrupt", probe.error or "broken"),)
        if incomplete:
            head += (shared_finding("incomplete", f"{name} is named like an unfinished write"),)
        known = probe.format is not _UNKNOWN
        if probe.not_image is not None:
            # No image at all: none of the rules below is about it, `stale` included
            # (gc must select it only when asked for `not-an-image` by name).
            if not incomplete:
                found = _not_an_image(image)
                if found is not None:
                    head += (found,)
            return head, None, False, incomplete
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
            superseded = shared_finding("superseded", SUPERSEDED_REASON)
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
    rules = Rules(defaults, stale_days, file_mode)

    groups: dict[tuple[str, str], list[Image]] = {}
    for image in images:
        if image.ref is not None and not caches.looks_incomplete(image.path.rpartition("/")[2]):
            groups.setdefault((image.root, image.ref), []).append(image)
    extra: dict[str, str] = {}
    for group in groups.values():
        if len(group) > 1:
            keep = min(group, key=rank)
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
                stale = stale_finding(idle, stale_days)
        result.append(with_findings(image, assemble(head, keep, superseded, stale)))
    return result
