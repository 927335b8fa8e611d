"""The findings' vocabulary: the fixed words for what is wrong with an image, and their wording.

The vocabulary is part of the JSON interface: scripts filter on these words, so
they never change meaning. Besides the words (`Term`, `VOCABULARY`, `ORDER`) this
holds how the rules word their reasons where that wording is shared or
remembered: `shared_finding` (one object per code and reason), the fixed reason
texts, and the `stale` reason, whose wording changes only once a day.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache

import humanize

from imgcache.backends.inventory.model import Finding, new_finding


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
            "not-an-image",
            "Not an image",
            "Named like an image, or a FIFO, socket or device in a cache, but nothing a "
            "runtime can start: empty, text, an unknown header, a SIF with no root "
            "filesystem, a squashfs older than 4.0 or big-endian; the reason says which.",
            "Look at it and delete it if nobody needs it "
            "(imgcache gc --finding not-an-image; gc never selects it otherwise).",
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
            "Compressed with lzo: a squashfuse built without liblzo2 cannot mount it "
            "(Debian's can) and some distributions' mksquashfs lack lzo.",
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
#: Findings whose files gc can select (the words scripts pass to `gc --finding`).
GC_CODES = ("corrupt", "incomplete", "not-an-image", "duplicate", "superseded", "stale")
#: What gc selects when told nothing: files that are broken, left over, or unused.
#: `superseded` (jobs may still name an old tag) and `not-an-image` only when asked.
GC_DEFAULT_CODES = ("corrupt", "incomplete", "duplicate", "stale")


def finding(code: str, reason: str) -> Finding:
    """A `Finding` of `code` with the vocabulary's advice."""
    return Finding(code, reason, VOCABULARY[code].advice)


@lru_cache(maxsize=4096)
def shared_finding(code: str, reason: str) -> Finding:
    """`finding(code, reason)`, one object per (code, reason) for the rules' own use.

    Findings are immutable, and most reasons repeat from image to image ("stores
    data blocks uncompressed", "for 4 months"); sharing them saves making one per
    image per evaluation, and lets an unchanged set of findings be recognised by
    identity.
    """
    return new_finding(code, reason, VOCABULARY[code].advice)


#: The reason of every `superseded` finding.
SUPERSEDED_REASON = "a default image of the same repository has another tag"
#: How an `uncompressed` reason ends for a squashfs built with no compression at all.
ALL_UNCOMPRESSED = "was built with everything uncompressed"
#: How an `uncompressed` reason ends for a squashfs whose data blocks only are not.
DATA_UNCOMPRESSED = "stores data blocks uncompressed (-noD)"


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


def stale_finding(idle: float, days: int) -> Finding:
    """The `stale` finding of an image idle for `idle` seconds, against `days` days.

    From one day of idleness up, the wording depends only on the whole days of
    `idle` (see `_idle_text`), which the evaluator relies on to reuse it.
    """
    return shared_finding(
        "stale", f"neither modified nor read for {_idle_text(idle)} (threshold {days} days)"
    )
