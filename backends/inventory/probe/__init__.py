"""Header probes: what a file in an image cache is, read from its first bytes.

`probe_path` and `probe_fileobj` recognise SIF, squashfs and tar-based image
archives by content (never by name) and read their headers within a fixed byte
budget (`MAX_HEADER_BYTES`), whatever the file claims about itself. They raise
nothing but the OSError of the file itself: a recognised file whose structure is
broken comes back with `error` set (corrupt), anything else as Format.UNKNOWN.

`open_for_probe` and `probe_fd` split `probe_path` in two so that a scanner can
open the next files (which asks the kernel to fetch their first `PREFETCH_BYTES`
in the background) while it parses the current one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import BinaryIO

from imgcache.backends.inventory.model import Format, ProbeResult, new_probe_result
from imgcache.backends.inventory.probe.archive import probe_archive
from imgcache.backends.inventory.probe.reader import (
    MAX_HEADER_BYTES,
    BudgetExhausted,
    BudgetReader,
    fd_read_at,
    fileobj_read_at,
)
from imgcache.backends.inventory.probe.sif import MAGIC as SIF_MAGIC
from imgcache.backends.inventory.probe.sif import MAGIC_OFFSET as SIF_MAGIC_OFFSET
from imgcache.backends.inventory.probe.sif import probe_sif
from imgcache.backends.inventory.probe.squashfs import MAGIC as SQUASHFS_MAGIC
from imgcache.backends.inventory.probe.squashfs import MAGIC_SWAPPED as SQUASHFS_MAGIC_SWAPPED
from imgcache.backends.inventory.probe.squashfs import (
    SquashfsError,
    UnsupportedSquashfs,
    parse_superblock,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "PREFETCH_BYTES",
    "open_for_probe",
    "probe_fd",
    "probe_fileobj",
    "probe_path",
]

log = logging.getLogger("imgcache.probe")

TAR_MAGIC = b"ustar"
TAR_MAGIC_OFFSET = 257

_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_COMPRESSED_NOTE = "compressed data; imgcache reads headers of plain tar archives only"
#: The note of a file in which no image header was found.
NO_HEADER = "no SIF, squashfs or tar header"


#: Bytes of each file fetched in one request when it is opened: the SIF global
#: header, its descriptor area (48 x 585 bytes from 4096, up to 32176) and the page
#: at 32 KiB where siftool puts the first partition, hence its superblock. A
#: squashfs superblock or the first tar headers lie inside it too. One request
#: instead of one per header read: reading the headers of 5,000 bench files from
#: a cold cache took 1.4 s with a read per header, 0.45 s with this window and 32
#: files in flight (the scanner), and 0.7 s for open + read(4096) alone. A fixed
#: window (within `MAX_HEADER_BYTES`) instead of the kernel's read-ahead keeps a
#: scan from pulling far more over NFS.
PREFETCH_BYTES = 36 * 1024
_FADVISE = hasattr(os, "posix_fadvise")
#: O_NONBLOCK does nothing to regular files; it keeps a FIFO that replaced one
#: since the scanner's lstat from blocking the open forever.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: Reading a header must not make an image look used: the `stale` rule goes by
#: the access time, and with relatime every read of a file not read for a day
#: (or never) would move it, so a daily scan would keep every image fresh.
_NOATIME = getattr(os, "O_NOATIME", 0)


def open_for_probe(path: str, prefetch: int = PREFETCH_BYTES) -> int:
    """Open `path` for a probe (a symlink is refused) and start fetching its headers.

    `prefetch` bytes from the start are fetched in the background; it is only a
    hint (a caller that expects squashfs needs one page), what is read is still
    decided by the content. Where the caller may (owner or root), the read
    leaves the access time alone.

    Returns the descriptor; the caller closes it. The fetch runs in the background,
    so a scanner opens a few files ahead of the one it parses.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        # O_NOATIME is for the file's owner (and root) only; others read the
        # header like anyone would, and the access time moves.
        fd = os.open(path, _OPEN_FLAGS)
    if _FADVISE:
        # try/except rather than contextlib.suppress: this runs for every file.
        try:
            # Headers beyond the window (a tar index after a big layer, a SIF
            # partition further in) are scattered reads: no read-ahead for them.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            os.posix_fadvise(fd, 0, prefetch, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
    return fd


def probe_fd(fd: int, size: int | None = None) -> ProbeResult:
    """Probe an open file (see `open_for_probe`); `size` as for `probe_path`."""
    if size is None:
        size = os.fstat(fd).st_size
    return _probe(BudgetReader(fd_read_at(fd), size))


def probe_path(path: str, size: int | None = None) -> ProbeResult:
    """Probe the file at `path` (a symlink is refused, not followed).

    `size` is the size from the caller's lstat; without it the file is fstat'ed
    once. OSError from opening or reading the file propagates.
    """
    fd = open_for_probe(path)
    try:
        return probe_fd(fd, size)
    finally:
        os.close(fd)


def probe_fileobj(f: BinaryIO, size: int) -> ProbeResult:
    """Probe a seekable binary file object of `size` bytes, like `probe_path`."""
    return _probe(BudgetReader(fileobj_read_at(f), size))


def _probe_squashfs(reader: BudgetReader) -> ProbeResult:
    try:
        info = parse_superblock(reader.head(), reader.size)
    except UnsupportedSquashfs as exc:
        # Not broken, but no runtime here mounts it: say exactly which it is.
        which = str(exc).partition(":")[0]
        return new_probe_result(Format.SQUASHFS, note=str(exc), not_image=which)
    except SquashfsError as exc:
        return new_probe_result(Format.SQUASHFS, str(exc))
    return new_probe_result(Format.SQUASHFS, None, info, None, None, reader.bytes_read)


#: Bytes that occur in text files (as `file` and binaryornot count them): printable
#: ASCII, the usual whitespace and control characters, and every byte of UTF-8
#: and the 8-bit code pages.
_TEXT_BYTES = bytes({7, 8, 9, 10, 11, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
#: Headers of other well-known files, named in the reason of a file that claims an image.
_OTHER_MAGIC = (
    (b"\x7fELF", "an ELF executable"),
    (b"PK\x03\x04", "a zip archive"),
    (b"QFI\xfb", "a qcow2 disk image"),
    (b"%PDF", "a PDF document"),
)


def _not_image(head: bytes) -> tuple[str, str | None]:
    """(note, what it is instead of an image) for data that starts no format imgcache reads.

    `head` is the file's first bytes (at most `reader.HEAD_BYTES`). What it is
    goes into the `not-an-image` reason, so it names the data without quoting
    it; None for compressed data, which may be a compressed image archive.
    """
    if not head:
        return "empty file", "an empty file"
    for magic, _name in _COMPRESSED:
        if head.startswith(magic):
            return _COMPRESSED_NOTE, None
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return NO_HEADER, name
    if not head.strip(b"\0"):
        return NO_HEADER, (
            f"no header: its first {len(head)} bytes are all zero "
            "(cut short, or still being written)"
        )
    if not head.translate(None, _TEXT_BYTES):
        return NO_HEADER, "a text file"
    return NO_HEADER, f"an unknown header (starts {head[:8].hex(' ')})"


def _detect(head: bytes) -> tuple[Format, Callable[[BudgetReader], ProbeResult] | None]:
    """Which format `head` starts and the probe for it (None: no format imgcache reads)."""
    if head[:4] in (SQUASHFS_MAGIC, SQUASHFS_MAGIC_SWAPPED):
        return Format.SQUASHFS, _probe_squashfs
    if head[SIF_MAGIC_OFFSET : SIF_MAGIC_OFFSET + len(SIF_MAGIC)] == SIF_MAGIC:
        return Format.SIF, probe_sif
    if head[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + len(TAR_MAGIC)] == TAR_MAGIC:
        # Archives are not known to be images until their index has been read.
        return Format.UNKNOWN, probe_archive
    return Format.UNKNOWN, None


def _probe(reader: BudgetReader) -> ProbeResult:
    fmt = Format.UNKNOWN
    try:
        head = reader.head()
        fmt, probe = _detect(head)
        if probe is None:
            note, what = _not_image(head)
            result = new_probe_result(fmt, note=note, not_image=what)
        else:
            result = probe(reader)
    except OSError:
        raise
    except BudgetExhausted:
        # Every probe handles its own budget; this is a backstop.
        result = new_probe_result(fmt, note="read budget reached")
    except Exception as exc:
        # A backstop, too: a bug here must not stop a scan of thousands of files.
        # The reason says "internal error" so tests and users can tell it apart.
        log.exception("probe failed")
        result = new_probe_result(fmt, f"internal error reading the headers: {exc!r}")
    if result.bytes_read == reader.bytes_read:
        return result  # the probe counted already (the common cases do)
    # The (fast) constructor, not dataclasses.replace: this runs for many files of
    # a scan and replace() costs ten times as much.
    return new_probe_result(
        result.format,
        result.error,
        result.squashfs,
        result.sif,
        result.archive,
        reader.bytes_read,
        result.note,
        result.not_image,
    )
