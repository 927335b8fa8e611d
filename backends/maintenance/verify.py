"""Check a recompressed squashfs against the original before it may replace it.

Three checks, all cheap next to the compression itself:

- the new file's headers probe as valid, with the asked-for codec, block size and
  compressed data (`check_probe`);
- `unsquashfs -lln` lists the same entries before and after: names, types, modes,
  numeric owners, sizes of everything but directories (whose size is a layout
  detail), device numbers, symlink targets and mtimes to the minute (`compare`);
- the number of distinct xattr sets in the xattr table is the same (`xattr_ids`):
  a per-file xattr comparison would read both images whole again (about +40% of
  the compress time measured on a 54,000-file image), while a lost xattr set
  changes this count.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import IO

from imgcache.backends.inventory.model import ProbeResult, SquashInfo
from imgcache.backends.inventory.probe.squashfs import ABSENT, SUPERBLOCK_SIZE
from imgcache.backends.maintenance.common import MaintenanceError
from imgcache.backends.maintenance.squashopts import SquashOptions
from imgcache.backends.tools.run import CancelToken, run

# perms, uid/gid, size or "major, minor", date time, name (and " -> target").
_LINE = re.compile(
    r"^(?P<mode>\S{10}) (?P<owner>\d+/\d+)\s+(?P<size>\d+|\d+,\s*\d+) "
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d) (?P<name>.*)$"
)
_XATTR_TABLE = struct.Struct("<QII")
_XATTR_ID_TABLE_AT = 56
#: How many differences a refusal quotes.
SHOWN = 5


@dataclass(frozen=True, slots=True)
class Listing:
    """An image's entries as `unsquashfs -lln` prints them, directory sizes blanked."""

    entries: tuple[str, ...]

    @property
    def sockets(self) -> list[str]:
        """Names of sockets (tar cannot carry them)."""
        return [_name(e) for e in self.entries if e.startswith("s")]


def _name(entry: str) -> str:
    match = _LINE.match(entry)
    name = match["name"] if match else entry
    return name.removeprefix("squashfs-root") or "/"


def _normalise(line: str) -> str:
    """The line as compared: a directory's size blanked (it depends on the builder).

    Only directories are rewritten; every other line is compared as unsquashfs
    printed it, which keeps this cheap for images of 100,000 entries.
    """
    if not line.startswith("d"):
        return line
    parts = line.split(None, 3)
    if len(parts) < 4 or not parts[2].isdigit():
        return line
    return f"{parts[0]} {parts[1]} - {parts[3]}"


def listing(
    path: str,
    *,
    offset: int = 0,
    cancel: CancelToken | None = None,
    logfile: IO[str] | None = None,
) -> Listing:
    """List the squashfs at `offset` in `path` with numeric owners, times in UTC."""
    argv = ["unsquashfs", "-lln", "-UTC"]
    if offset:
        argv += ["-o", str(offset)]
    done = run([*argv, path], capture=True, cancel=cancel, logfile=logfile)
    lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
    return Listing(tuple(_normalise(line) for line in lines if line))


def compare(before: Listing, after: Listing) -> None:
    """Raise `MaintenanceError` quoting the first differences if the listings differ."""
    if before.entries == after.entries:
        return
    old, new = set(before.entries), set(after.entries)
    problems = [f"lost {e!r}" for e in before.entries if e not in new]
    problems += [f"gained {e!r}" for e in after.entries if e not in old]
    if not problems:
        problems = ["the same entries in another order"]
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    raise MaintenanceError(
        "the new image does not list the same files: " + "; ".join(problems[:SHOWN]) + more,
        "verify",
    )


def xattr_ids(fd: int, offset: int, info: SquashInfo) -> int:
    """How many distinct xattr sets the squashfs at `offset` of `fd` stores (0 without)."""
    block = os.pread(fd, SUPERBLOCK_SIZE, offset)
    if len(block) < SUPERBLOCK_SIZE:
        raise MaintenanceError("the squashfs superblock is cut short", "verify")
    (table,) = struct.unpack_from("<Q", block, _XATTR_ID_TABLE_AT)
    if table == ABSENT:
        return 0
    if table + _XATTR_TABLE.size > info.bytes_used:
        raise MaintenanceError("the xattr id table lies outside the filesystem", "verify")
    raw = os.pread(fd, _XATTR_TABLE.size, offset + table)
    if len(raw) < _XATTR_TABLE.size:
        raise MaintenanceError("the xattr id table is cut short", "verify")
    _start, count, _unused = _XATTR_TABLE.unpack(raw)
    return count


def check_probe(result: ProbeResult, options: SquashOptions, what: str) -> SquashInfo:
    """The new image's squashfs superblock, refused unless it is what was asked for."""
    info = result.squashfs
    if result.corrupt or info is None:
        raise MaintenanceError(
            f"{what} does not probe as a valid image: {result.error or result.note}", "verify"
        )
    if info.compression != options.codec or not info.data_compressed:
        raise MaintenanceError(
            f"{what} came out as {info.compression} with data "
            f"{'compressed' if info.data_compressed else 'uncompressed'}, not {options.codec}",
            "verify",
        )
    if info.block_size != options.block_size:
        raise MaintenanceError(
            f"{what} has {info.block_size}-byte blocks, not {options.block_size}", "verify"
        )
    return info
