"""How sizes, ages, names and findings read on screen, shared by the app and the CLI."""

from __future__ import annotations

import re

import humanize

from imgcache.backends.inventory import refs
from imgcache.backends.inventory.model import Image

# Re-exported: the one way counts read ("1 file", "3 files"), in the app and the CLI alike.
from imgcache.backends.wording import plural as plural

#: Badge colours per finding, readable in 16, 256 and true colour.
FINDING_STYLES = {
    "corrupt": "bold white on red",
    "incomplete": "bold black on magenta",
    "not-an-image": "bold white on dark_orange3",
    "unshared": "bold black on yellow",
    "uncompressed": "bold black on cyan",
    "legacy-codec": "bold white on blue",
    "duplicate": "black on white",
    "superseded": "black on white",
    "stale": "white on bright_black",
}
#: Short badge text per finding, so a row of several still fits.
FINDING_SHORT = {
    "corrupt": "corrupt",
    "incomplete": "partial",
    "not-an-image": "noimg",
    "unshared": "unshared",
    "uncompressed": "raw",
    "legacy-codec": "lzo",
    "duplicate": "dup",
    "superseded": "old",
    "stale": "stale",
}
#: Colours of the default images' presence states.
PRESENCE_STYLES = {
    "present": "bold green",
    "missing": "bold red",
    "broken": "bold magenta",
    "elsewhere": "yellow",
    "n/a": "dim",
}


#: What must never reach a terminal from a file name or a tool's message: C0 and C1
#: controls (ESC starts escape sequences, CR and newline rewrite lines), DEL, and
#: the bidirectional overrides that make a name read backwards ("Trojan source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` safe to show on a terminal: control characters written as escapes (`\\x1b`).

    File names in a shared cache are chosen by whoever wrote them; one holding ESC
    could recolour or rewrite the admin's screen, one holding a newline could pass
    for two lines. Every name and message imgcache shows goes through this.
    """
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape, text)


def human_size(size: int | None) -> str:
    """A size in binary units, e.g. `12.8 GiB`."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    return humanize.naturalsize(size, binary=True, format="%.1f")


def human_age(seconds: float) -> str:
    """A short age, e.g. `3 months`, `2 days`, `now`."""
    if seconds < 60:
        return "now"
    return humanize.naturaldelta(seconds)


def display_name(image: Image) -> str:
    """How an image is named in tables: its familiar reference, else its path in the cache."""
    if image.ref is None:
        return printable(image.rel)
    try:
        ref = refs.parse(image.ref)
    except refs.RefError:
        return printable(image.ref)
    # enroot file names carry no registry, so their refs stay as they are.
    return image.ref if ref.registry is None else ref.familiar()


def compression_label(image: Image) -> str:
    """The codec, marked when data blocks are stored raw."""
    comp = image.probe.compression
    if comp is None:
        return ""
    if image.probe.squashfs is not None and image.probe.squashfs.fully_uncompressed:
        return "none"
    if image.probe.data_compressed is False:
        return f"{comp} -noD"
    return comp


def short_age(seconds: float) -> str:
    """A compact age for narrow columns, e.g. `1y 4mo`, `5mo`, `12d`, `3h`, `now`."""
    if seconds < 60:
        return "now"
    minutes = seconds / 60
    if minutes < 60:
        return f"{int(minutes)}min"
    hours = minutes / 60
    if hours < 24:
        return f"{int(hours)}h"
    days = hours / 24
    if days < 31:
        return f"{int(days)}d"
    months = int(days / 30.44)
    if months < 12:
        return f"{max(months, 1)}mo"
    years, months = divmod(months, 12)
    return f"{years}y {months}mo" if months else f"{years}y"
