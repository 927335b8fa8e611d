"""Replace the primary partition of a SIF file, keeping every other object byte for byte.

siftool cannot do this and keep the image as it was: `siftool new` + `add` hands out
new descriptor ids, a new UUID and no launch script, and `del` + `add` leaves the
old partition's bytes in the file. So the new SIF is written here, from the layout
sylabs/sif defines (pkg/sif/sif.go, create.go): the global header and the
descriptor table are copied and patched, the bytes before the primary partition
are copied unchanged, the new partition is written where the old one started (so
its alignment holds), and every object after it moves down by the space saved,
rounded down to `ALIGN` so their alignment holds too (sif aligns partitions to
4096 bytes and other objects to 1 by default).

Patched fields: the primary's size, size-with-padding and modification time; the
offsets of objects after it (and the padding of the first of them); the header's
data size and modification time. Ids, groups, links, names, types, partition and
signature metadata, UUID, launch script and creation times stay as they were.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import IO, Any

from imgcache.backends.inventory.probe.sif import DESCRIPTOR_SIZE, HEADER_SIZE
from imgcache.backends.maintenance.common import MaintenanceError, ProgressFn
from imgcache.backends.tools.run import CancelToken

# Same layouts as inventory.probe.sif, kept whole here because writing needs every field.
_HEADER = struct.Struct("<32s10s3s3s16s8q")
_DESCRIPTOR = struct.Struct("<iBIII7q128s384s")
# Field positions in the unpacked tuples.
H_MTIME, H_DTOTAL, H_DOFFSET, H_DATASIZE = 6, 8, 9, 12
D_USED, D_ID, D_OFFSET, D_SIZE, D_PADDED, D_MTIME = 1, 2, 5, 6, 7, 9
#: Objects after the primary move by a multiple of this, keeping their alignment.
ALIGN = 4096
_CHUNK = 64 << 20


@dataclass(frozen=True, slots=True)
class SifLayout:
    """The global header and every descriptor slot of a SIF, unpacked."""

    header: tuple[Any, ...]
    slots: tuple[tuple[Any, ...], ...]
    size: int
    """The file's size in bytes."""

    def used(self) -> list[int]:
        """Indexes of the used descriptor slots."""
        return [i for i, d in enumerate(self.slots) if d[D_USED]]

    def slot_of(self, ident: int) -> int:
        """The slot index of the descriptor with id `ident`."""
        for i in self.used():
            if self.slots[i][D_ID] == ident:
                return i
        raise MaintenanceError(f"the SIF has no descriptor {ident}")

    def span(self, i: int) -> tuple[int, int]:
        """(offset, size) of the object in slot `i`."""
        d = self.slots[i]
        return int(d[D_OFFSET]), int(d[D_SIZE])


def read_layout(fd: int) -> SifLayout:
    """Read the header and descriptor table of the SIF open as `fd`."""
    size = os.fstat(fd).st_size
    header = _HEADER.unpack(_pread(fd, HEADER_SIZE, 0))
    total, offset = int(header[H_DTOTAL]), int(header[H_DOFFSET])
    if total < 0 or offset < HEADER_SIZE or offset + total * DESCRIPTOR_SIZE > size:
        raise MaintenanceError("the SIF descriptor table lies outside the file", "corrupt")
    area = _pread(fd, total * DESCRIPTOR_SIZE, offset)
    slots = tuple(_DESCRIPTOR.iter_unpack(area))
    return SifLayout(header, slots, size)


def _pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise MaintenanceError("the SIF is shorter than its header says", "corrupt")
    return data


def copy_range(
    src: int,
    src_off: int,
    dst: int,
    dst_off: int,
    length: int,
    *,
    cancel: CancelToken | None = None,
    on_bytes: ProgressFn | None = None,
) -> None:
    """Copy `length` bytes between descriptors (in the kernel where it can: reflinks, NFS)."""
    done = 0
    kernel = True
    while done < length:
        if cancel is not None:
            cancel.raise_if_cancelled()
        want = min(_CHUNK, length - done)
        n = 0
        if kernel:
            try:
                n = os.copy_file_range(src, dst, want, src_off + done, dst_off + done)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                kernel = False
        if not kernel:
            data = os.pread(src, min(want, 1 << 20), src_off + done)
            n = os.pwrite(dst, data, dst_off + done) if data else 0
        if n <= 0:
            raise MaintenanceError("the file ended while it was being copied", "corrupt")
        done += n
        if on_bytes is not None:
            on_bytes(done / length, "copying")


def shift_for(layout: SifLayout, primary: int, new_size: int) -> int:
    """How far the objects after the primary partition move down (negative: up)."""
    start, old_size = layout.span(primary)
    old_end = start + old_size
    after = []
    for i in layout.used():
        if i == primary:
            continue
        off, size = layout.span(i)
        if off >= old_end:
            after.append(i)
        elif off + size > start:
            raise MaintenanceError(
                f"SIF object {layout.slots[i][D_ID]} overlaps the primary partition", "corrupt"
            )
    if not after:
        return old_end - (start + new_size)
    return ((old_size - new_size) // ALIGN) * ALIGN


def write_sif(
    src: int,
    layout: SifLayout,
    primary: int,
    part: int,
    part_size: int,
    out: int,
    *,
    now: int,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
) -> SifLayout:
    """Write to `out` the SIF `src` with the primary partition replaced by `part`.

    Returns the new layout. `out` must be empty and opened for writing.
    """
    start, old_size = layout.span(primary)
    old_end = start + old_size
    shift = shift_for(layout, primary, part_size)
    new_end = start + part_size
    tail_at = old_end - shift
    copy_range(src, 0, out, 0, start, cancel=cancel)
    copy_range(part, 0, out, start, part_size, cancel=cancel, on_bytes=on_progress)
    copy_range(src, old_end, out, tail_at, layout.size - old_end, cancel=cancel)
    os.ftruncate(out, layout.size - shift)

    slots = [list(d) for d in layout.slots]
    p = slots[primary]
    p[D_PADDED] = int(p[D_PADDED]) - old_size + part_size
    p[D_SIZE] = part_size
    p[D_MTIME] = now
    after = sorted(
        (i for i in layout.used() if i != primary and layout.span(i)[0] >= old_end),
        key=lambda i: layout.span(i)[0],
    )
    for i in after:
        slots[i][D_OFFSET] = layout.span(i)[0] - shift
    if after:
        # The first object after the partition now has the gap before it as padding.
        first = slots[after[0]]
        first[D_PADDED] = int(first[D_PADDED]) + (tail_at - new_end)
    header = list(layout.header)
    header[H_DATASIZE] = int(header[H_DATASIZE]) - shift
    header[H_MTIME] = now
    os.pwrite(out, _HEADER.pack(*header), 0)
    table = b"".join(_DESCRIPTOR.pack(*d) for d in slots)
    os.pwrite(out, table, int(header[H_DOFFSET]))
    return SifLayout(tuple(header), tuple(tuple(d) for d in slots), layout.size - shift)


def _same_bytes(a: int, a_off: int, b: int, b_off: int, length: int) -> bool:
    done = 0
    while done < length:
        n = min(1 << 20, length - done)
        if os.pread(a, n, a_off + done) != os.pread(b, n, b_off + done):
            return False
        done += n
    return True


def check_kept(old_fd: int, old: SifLayout, new_fd: int, new: SifLayout, primary: int) -> None:
    """Refuse unless every descriptor but the primary's layout fields, and every other
    object's bytes, are the same in `new` as in `old`."""
    moving = {D_OFFSET, D_PADDED, D_MTIME, D_SIZE}
    for i, (a, b) in enumerate(zip(old.slots, new.slots, strict=True)):
        ignore = moving if i == primary else {D_OFFSET, D_PADDED}
        if [v for k, v in enumerate(a) if k not in ignore] != [
            v for k, v in enumerate(b) if k not in ignore
        ]:
            raise MaintenanceError(f"SIF descriptor slot {i} changed unexpectedly", "verify")
        if a[D_USED] and i != primary:
            (a_off, size), (b_off, _) = old.span(i), new.span(i)
            if not _same_bytes(old_fd, a_off, new_fd, b_off, size):
                raise MaintenanceError(f"SIF object {a[D_ID]} was not copied intact", "verify")
    keep = [k for k in range(len(old.header)) if k not in (H_MTIME, H_DATASIZE)]
    if [old.header[k] for k in keep] != [new.header[k] for k in keep]:
        raise MaintenanceError("the SIF global header changed unexpectedly", "verify")


def describe(layout: SifLayout) -> list[str]:
    """One line per used descriptor, for logs: id, type, offset, size."""
    return [
        f"id {d[D_ID]} type 0x{int(d[0]):x} at {d[D_OFFSET]} size {d[D_SIZE]}"
        for d in (layout.slots[i] for i in layout.used())
    ]


def log_layout(logfile: IO[str] | None, title: str, layout: SifLayout) -> None:
    """Write the layout's descriptors to the job log."""
    if logfile is not None:
        logfile.write(f"{title}:\n" + "".join(f"  {line}\n" for line in describe(layout)))
