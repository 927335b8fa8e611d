"""A read-budgeted view of one file, shared by every header reader.

A probe runs for every file of a cache that may hold thousands of multi-gigabyte
images on NFS or Lustre, often while jobs hammer the same servers. So every byte
the probes read goes through `BudgetReader`, which counts it and refuses a read
that would take the total past its budget. Parsers never touch the file object.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

#: The most bytes one probe may read from one file, whatever the file claims.
MAX_HEADER_BYTES = 64 * 1024

#: Bytes read up front: enough for every magic we look for (the tar magic sits at
#: 257) and the whole squashfs superblock (96) or SIF global header (128).
HEAD_BYTES = 512


class BudgetExhausted(Exception):
    """A read was refused because it would take the probe past its byte budget.

    Not an error of the file: the probe reports what it learned so far with a note.
    """


ReadAt = Callable[[int, int], bytes]


def fd_read_at(fd: int) -> ReadAt:
    """Return a positional reader over a file descriptor (pread, no shared offset)."""

    def read_at(offset: int, length: int) -> bytes:
        # One pread nearly always does it (a short read means the end of the file).
        data = os.pread(fd, length, offset) if length > 0 else b""
        if len(data) == length or not data:
            return data
        chunks = [data]
        offset += len(data)
        length -= len(data)
        while length > 0:
            chunk = os.pread(fd, length, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    return read_at


def fileobj_read_at(f: BinaryIO) -> ReadAt:
    """Return a positional reader over a seekable binary file object."""

    def read_at(offset: int, length: int) -> bytes:
        f.seek(offset)
        chunks: list[bytes] = []
        while length > 0:
            chunk = f.read(length)
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    return read_at


class BudgetReader:
    """Counts and caps the bytes read from one file; also a minimal file object.

    `size` is what the caller believes the file's size is (the scanner's lstat);
    reads never go past it, and a file that shrank since simply returns short data,
    which the parsers treat as truncation. `read`, `seek` and `tell` exist so the
    standard library's tarfile can walk the file through this reader.
    OSError from the underlying file propagates unchanged.
    """

    def __init__(self, read_at: ReadAt, size: int, budget: int = MAX_HEADER_BYTES) -> None:
        self._read_at = read_at
        self.size = max(0, size)
        self.budget = budget
        self.bytes_read = 0
        self._pos = 0
        # The first bytes, read once: tarfile asks for its first header again and
        # the SIF reader may find its descriptors inside it; neither pays twice.
        self._head = b""
        self._head_asked = 0
        # A range read once with `keep`, served again for free (the end of an archive).
        self._kept_at = 0
        self._kept = b""

    @property
    def remaining(self) -> int:
        """Bytes this probe may still read."""
        return self.budget - self.bytes_read

    def head(self, length: int = HEAD_BYTES) -> bytes:
        """Read (once) and return the first `length` bytes of the file, or fewer."""
        if length > self._head_asked:
            self._head = self.read_at(0, length)
            self._head_asked = length
        return self._head[:length]

    def read_at(self, offset: int, length: int) -> bytes:
        """Return up to `length` bytes at `offset`; short at the end of the file.

        Raises BudgetExhausted when the bytes that exist there do not fit the budget.
        """
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        if offset + length <= len(self._head):
            return self._head[offset : offset + length]
        if self._kept_at <= offset and offset + length <= self._kept_at + len(self._kept):
            return self._kept[offset - self._kept_at : offset - self._kept_at + length]
        if length > self.remaining:
            raise BudgetExhausted(f"reading {length} bytes at offset {offset}")
        data = self._read_at(offset, length)
        self.bytes_read += len(data)
        return data

    def keep(self, offset: int, length: int) -> bytes:
        """Read `length` bytes at `offset` (counted once) and serve reads inside them again free."""
        data = self.read_at(offset, length)
        self._kept_at, self._kept = offset, data
        return data

    # The file-object protocol tarfile needs.

    def read(self, size: int | None = -1) -> bytes:
        """Read from the current position, like a binary file."""
        if size is None or size < 0:
            size = self.size - self._pos
        data = self.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position like a binary file; seeking costs nothing."""
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += self.size
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        """Return the current position."""
        return self._pos

    def seekable(self) -> bool:
        """Always True: every probe seeks."""
        return True

    def readable(self) -> bool:
        """Always True."""
        return True
