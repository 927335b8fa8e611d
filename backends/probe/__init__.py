"""Header probes: what a file in an image cache is, read from its first bytes.

`probe_path` and `probe_fileobj` recognise SIF, squashfs and tar-based image
archives by content (never by name) and read their headers within a fixed byte
budget (`MAX_HEADER_BYTES`), whatever the file claims about itself. They raise
nothing but the OSError of the file itself: a recognised file whose structure is
broken comes back with `error` set (corrupt), anything else as Format.UNKNOWN.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable
from typing import BinaryIO

from backends.model import Format, ProbeResult
from backends.probe.archive import probe_archive
from backends.probe.reader import (
    MAX_HEADER_BYTES,
    BudgetExhausted,
    BudgetReader,
    fd_read_at,
    fileobj_read_at,
)
from backends.probe.sif import MAGIC as SIF_MAGIC
from backends.probe.sif import MAGIC_OFFSET as SIF_MAGIC_OFFSET
from backends.probe.sif import probe_sif
from backends.probe.squashfs import MAGIC as SQUASHFS_MAGIC
from backends.probe.squashfs import MAGIC_SWAPPED as SQUASHFS_MAGIC_SWAPPED
from backends.probe.squashfs import SquashfsError, parse_superblock

__all__ = ["MAX_HEADER_BYTES", "probe_fileobj", "probe_path"]

log = logging.getLogger("imgcache.probe")

TAR_MAGIC = b"ustar"
TAR_MAGIC_OFFSET = 257

_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_COMPRESSED_NOTE = "compressed data; imgcache reads headers of plain tar archives only"


def probe_path(path: str, size: int | None = None) -> ProbeResult:
    """Probe the file at `path` (a symlink is refused, not followed).

    `size` is the size from the caller's lstat; without it the file is fstat'ed
    once. OSError from opening or reading the file propagates.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if size is None:
            size = os.fstat(fd).st_size
        # Headers are scattered small reads; kernel read-ahead would pull far more
        # than the budget over NFS for every file of a scan.
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        return _probe(BudgetReader(fd_read_at(fd), size))
    finally:
        os.close(fd)


def probe_fileobj(f: BinaryIO, size: int) -> ProbeResult:
    """Probe a seekable binary file object of `size` bytes, like `probe_path`."""
    return _probe(BudgetReader(fileobj_read_at(f), size))


def _probe_squashfs(reader: BudgetReader) -> ProbeResult:
    try:
        info = parse_superblock(reader.head(), reader.size)
    except SquashfsError as exc:
        return ProbeResult(Format.SQUASHFS, error=str(exc))
    return ProbeResult(Format.SQUASHFS, squashfs=info)


def _detect(head: bytes) -> tuple[Format, Callable[[BudgetReader], ProbeResult] | None, str]:
    """Which format `head` starts, the probe for it, and a note for unknown data."""
    if head[:4] in (SQUASHFS_MAGIC, SQUASHFS_MAGIC_SWAPPED):
        return Format.SQUASHFS, _probe_squashfs, ""
    if head[SIF_MAGIC_OFFSET : SIF_MAGIC_OFFSET + len(SIF_MAGIC)] == SIF_MAGIC:
        return Format.SIF, probe_sif, ""
    if head[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + len(TAR_MAGIC)] == TAR_MAGIC:
        # Archives are not known to be images until their index has been read.
        return Format.UNKNOWN, probe_archive, ""
    if not head:
        return Format.UNKNOWN, None, "empty file"
    for magic, _name in _COMPRESSED:
        if head.startswith(magic):
            return Format.UNKNOWN, None, _COMPRESSED_NOTE
    return Format.UNKNOWN, None, "no SIF, squashfs or tar header"


def _probe(reader: BudgetReader) -> ProbeResult:
    fmt = Format.UNKNOWN
    try:
        fmt, probe, note = _detect(reader.head())
        result = ProbeResult(fmt, note=note) if probe is None else probe(reader)
    except OSError:
        raise
    except BudgetExhausted:
        # Every probe handles its own budget; this is a backstop.
        result = ProbeResult(fmt, note="read budget reached")
    except Exception as exc:
        # A backstop, too: a bug here must not stop a scan of thousands of files.
        # The reason says "internal error" so tests and users can tell it apart.
        log.exception("probe failed")
        result = ProbeResult(fmt, error=f"internal error reading the headers: {exc!r}")
    return dataclasses.replace(result, bytes_read=reader.bytes_read)
