"""Findings: the fixed vocabulary of what is wrong with an image, and the rules.

Each rule looks at one image and, for `duplicate` and `superseded`, at the whole
inventory and the default images. The vocabulary is part of the JSON interface:
scripts filter on these words, so they never change meaning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import humanize

from backends import caches
from backends.defaults import DefaultImage
from backends.model import CacheKind, Finding, Format, Image


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


def _compression_findings(image: Image) -> list[Finding]:
    sq = image.probe.squashfs
    if sq is None or image.probe.corrupt:
        return []
    found = []
    where = "its primary partition" if image.probe.format is Format.SIF else "it"
    if sq.fully_uncompressed:
        found.append(finding("uncompressed", f"{where} was built with everything uncompressed"))
    elif not sq.data_compressed:
        found.append(finding("uncompressed", f"{where} stores data blocks uncompressed (-noD)"))
    if sq.compression == "lzo":
        found.append(finding("legacy-codec", f"{where} is compressed with lzo"))
    return found


def _unshared(image: Image, file_mode: int) -> Finding | None:
    read_bits = file_mode & 0o044
    mode = image.stat.mode
    if image.probe.note and image.probe.note.startswith("symbolic link"):
        return None
    if mode & read_bits != read_bits:
        who = "others" if not mode & 0o004 else "the group"
        return finding(
            "unshared",
            f"mode {mode & 0o7777:04o}: {who} cannot read it, so users' jobs cannot open it",
        )
    if image.blocked_by:
        rel = os.path.relpath(image.blocked_by, image.root)
        where = "the cache root" if rel == "." else f"directory {rel}"
        return finding("unshared", f"{where} cannot be entered by other users")
    return None


def _stale(image: Image, now: float, days: int) -> Finding | None:
    last = max(image.stat.mtime, image.stat.atime)
    if now - last < days * 86400:
        return None
    idle = humanize.naturaldelta(now - last)
    return finding("stale", f"neither modified nor read for {idle} (threshold {days} days)")


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


def evaluate(
    images: Iterable[Image],
    defaults: Sequence[DefaultImage],
    *,
    now: float,
    stale_days: int,
    file_mode: int = 0o644,
) -> list[Image]:
    """Return `images` with their findings computed, in the same order."""
    images = list(images)
    keys = {kind: _default_keys(defaults, kind) for kind in CacheKind}
    default_files = {os.path.abspath(d.file) for d in defaults if d.file}

    groups: dict[tuple[str, str], list[Image]] = {}
    for image in images:
        if image.ref is not None and not caches.looks_incomplete(os.path.basename(image.path)):
            groups.setdefault((image.root, image.ref), []).append(image)
    extra: dict[str, str] = {}
    for group in groups.values():
        if len(group) > 1:
            keep = min(group, key=_rank)
            for image in group:
                if image is not keep:
                    extra[image.path] = keep.rel

    result = []
    for image in images:
        found: list[Finding] = []
        name = os.path.basename(image.path)
        if image.probe.corrupt:
            found.append(finding("corrupt", image.probe.error or "broken"))
        if caches.looks_incomplete(name):
            found.append(finding("incomplete", f"{name} is named like an unfinished write"))
        if image.probe.format is not Format.UNKNOWN or image.ref is not None:
            unshared = _unshared(image, file_mode)
            if unshared:
                found.append(unshared)
        found.extend(_compression_findings(image))
        if image.path in extra:
            found.append(
                finding("duplicate", f"the same image is also stored as {extra[image.path]}")
            )
        default_refs, default_repos = keys[image.cache]
        is_default = (image.ref in default_refs) or (image.path in default_files)
        if (
            image.ref is not None
            and not is_default
            and _repo_key(image.cache, image.ref) in default_repos
        ):
            found.append(
                finding("superseded", "a default image of the same repository has another tag")
            )
        if not is_default and image.probe.format is not Format.UNKNOWN:
            stale = _stale(image, now, stale_days)
            if stale:
                found.append(stale)
        found.sort(key=lambda f: ORDER.index(f.code))
        result.append(replace(image, findings=tuple(found)))
    return result
