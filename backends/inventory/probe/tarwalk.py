"""Walk the member headers of a plain tar file within the probe's read budget.

`walk_headers` reads every member header (names, sizes, where the data lies)
without reading any member's data: the standard library's tarfile walks them
through the budgeted reader, seeking over member data, so a 10 GiB archive costs
about 513 bytes per member, and the plain ustar headers image tools write are
parsed here directly, faster and to the same result. The walk keeps back part of
the budget (`WALK_RESERVE`) for what the caller reads afterwards. An archive
with more members than the budget can walk has its end read instead
(`walk_tail`): the members whose headers lead from there to the end-of-archive
marker.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from zlib import adler32

from imgcache.backends.inventory.probe.reader import BudgetExhausted, BudgetReader

#: The tar block: headers and member data start on multiples of it.
BLOCK = tarfile.BLOCKSIZE
#: Budget the header walk leaves for reading index.json and the manifests, or,
#: when the walk cannot reach the end, the archive's last bytes: room for the
#: manifest.json of a docker-archive of about 150 layers.
WALK_RESERVE = 16 * 1024


@dataclass
class Walk:
    """What walking the tar headers found."""

    members: dict[str, tarfile.TarInfo] = field(default_factory=dict)
    count: int = 0
    problem: str | None = None
    """Why the archive is broken (truncated, unreadable header), if it is."""
    budget_hit: bool = False
    tail_count: int = 0
    """Members found in the archive's end after the budget stopped the walk."""

    @property
    def complete(self) -> bool:
        """True when every member header was seen."""
        return self.problem is None and not self.budget_hit


def norm(name: str) -> str:
    """Member name as the index refers to it: no leading './' or '/', no trailing '/'."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


# --- the plain-archive fast path ---------------------------------------------------
# tarfile spends ~40 us on each member header (two 504-item checksum tuples, a
# dozen nts/nti calls); image archives are plain ustar written by Go's archive/tar
# (skopeo, podman, docker), so `_walk_plain` parses exactly those headers itself and
# hands anything else (pax, GNU long names, odd number fields, damage, a budget
# that runs low) back to tarfile, which starts again from the beginning. For the
# headers it accepts it reproduces what tarfile computes field by field and reads
# the same bytes (tarfile's 1-byte look at the end of the previous member and the
# next header are one pread here), so the result and the bytes counted are the same.

#: Number fields as tarfile's nti reads them without surprises: optional spaces,
#: octal digits, then only spaces and NULs. Anything else goes to tarfile.
_OCTAL = re.compile(rb" *([0-7]*)[ \0]*")
#: mode, uid, gid, size, mtime and chksum (bytes 100..156) as tar writers format
#: them: zero-padded octal, then NUL (the checksum: six digits, NUL, space).
_CANONICAL = re.compile(
    rb"([0-7]{7})\0([0-7]{7})\0([0-7]{7})\0([0-7]{11})\0([0-7]{11})\0([0-7]{6})\0 "
)
#: devmajor and devminor (bytes 329..345): the same, or left all NUL.
_CANONICAL_DEV = re.compile(rb"(?:[0-7]{7}\0|\0{8}){2}")
#: Where tarfile reads each number field, in `_plain_header`'s order.
_NUMBER_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156),
                  (329, 337), (337, 345))  # fmt: skip
#: Types the fast path accepts: regular (0 and the old NUL), hard link, symlink, dir.
_PLAIN_TYPES = frozenset(
    {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE}
)
#: Bytes one member costs the walk: tarfile's 1-byte probe of the previous
#: member's end, then the 512-byte header.
_MEMBER_COST = 1 + BLOCK
_ZERO_BLOCK = bytes(BLOCK)


def _byte_sum(block: bytes) -> int:
    """``sum(block)`` of a 512-byte tar header, in a tenth of the time.

    zlib's Adler-32 keeps 1 + the sum of the bytes modulo 65521 in its low half;
    for 256 bytes that sum is at most 65280, so no modulo happens and each half
    of the header gives its exact sum.
    """
    return (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) - 2


def _octal(field: bytes) -> int | None:
    match = _OCTAL.fullmatch(field)
    return None if match is None else int(match[1] or b"0", 8)


def _nts(field: bytes) -> str:
    """tarfile.nts with tarfile's default encoding and errors."""
    end = field.find(b"\0")
    if end != -1:
        field = field[:end]
    return field.decode(tarfile.ENCODING, "surrogateescape")


def _plain_header(buf: bytes, offset: int) -> tarfile.TarInfo | None:
    """The TarInfo tarfile would make of the header `buf` at `offset`, if it is plain."""
    canonical = _CANONICAL.fullmatch(buf, 100, 156)
    if canonical is not None and _CANONICAL_DEV.fullmatch(buf, 329, 345) is not None:
        # Go, Python and GNU tar write "%0*o\0" numbers: one match for them all.
        mode, uid, gid, size, mtime, chksum = [int(g, 8) for g in canonical.groups()]
        devmajor = int(buf[329:336], 8) if buf[329] else 0
        devminor = int(buf[337:344], 8) if buf[337] else 0
    else:
        numbers = [_octal(buf[a:b]) for a, b in _NUMBER_FIELDS]
        if None in numbers:
            return None
        mode, uid, gid, size, mtime, chksum, devmajor, devminor = numbers
    # The unsigned sum with the checksum field counted as spaces (256 = 8 x 0x20).
    if chksum != 256 + _byte_sum(buf) - sum(buf[148:156]):
        return None
    kind = buf[156:157]
    if kind not in _PLAIN_TYPES:
        return None
    name = _nts(buf[0:100])
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        return None  # tarfile turns it into a directory; leave that to it
    info = tarfile.TarInfo()
    info.mode, info.uid, info.gid, info.size, info.mtime = mode, uid, gid, size, mtime
    info.chksum, info.type = chksum, kind
    info.linkname = _nts(buf[157:257])
    info.uname, info.gname = _nts(buf[265:297]), _nts(buf[297:329])
    info.devmajor, info.devminor = devmajor, devminor
    prefix = _nts(buf[345:500])
    # The same steps in the same order as TarInfo.frombuf and _proc_builtin.
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    if prefix:
        name = prefix + "/" + name
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    info.name = name
    info.offset = offset
    info.offset_data = offset + BLOCK
    return info


def _walk_plain(reader: BudgetReader) -> Walk | None:
    """`walk_headers` for a plain, intact archive; None, with nothing counted, otherwise.

    Uncounting is right here: tarfile then reads the same bytes again, and they
    are counted once, as if the fast path had not run.
    """
    read_before = reader.bytes_read
    walk = _plain_walk(reader)
    if walk is None:
        reader.bytes_read = read_before
    return walk


def _plain_walk(reader: BudgetReader) -> Walk | None:
    walk = Walk()
    offset = 0
    data_end = 0  # where tarfile's file position is after reading a header
    while True:
        # Room for this member, the end blocks and the walk's reserve; when the
        # budget runs low, tarfile decides where the walk stops.
        if reader.remaining < WALK_RESERVE + _MEMBER_COST + 2 * BLOCK:
            return None
        if offset == data_end:
            # The first header, or one right after a member without data.
            buf = reader.read_at(offset, BLOCK)
        else:
            # tarfile reads the last byte before the header first; one read here.
            both = reader.read_at(offset - 1, 1 + BLOCK)
            if len(both) != 1 + BLOCK:
                return None
            buf = both[1:]
        if len(buf) != BLOCK:
            return None
        if buf == _ZERO_BLOCK:
            if offset == 0:
                return None
            # walk_headers reads the end-of-archive block once more to check it.
            if len(reader.read_at(offset, BLOCK)) != BLOCK:
                return None
            return walk
        member = _plain_header(buf, offset)
        if member is None:
            return None
        data_end = offset = member.offset_data
        if member.isreg():
            offset += -(-member.size // BLOCK) * BLOCK
        if offset > reader.size:
            return None  # truncated: tarfile's walk says how
        walk.members[norm(member.name)] = member
        walk.count += 1


def walk_headers(reader: BudgetReader) -> Walk:
    """Walk every member header, stopping at the first sign of damage."""
    walk = _walk_plain(reader)
    if walk is not None:
        return walk
    walk = Walk()
    try:
        # Nothing to close: tarfile leaves a file object it was given open.
        tf = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
    except BudgetExhausted:
        walk.budget_hit = True
        return walk
    except OSError:
        raise
    except Exception as exc:
        # tarfile raises more than TarError on hostile headers (ValueError from a
        # GNU sparse map, for one); all of them mean the same here.
        walk.problem = f"tar archive with an unreadable first header ({exc})"
        return walk
    last = None
    try:
        while True:
            if reader.remaining < WALK_RESERVE:
                walk.budget_hit = True
                return walk
            member = tf.next()
            if member is None:
                break
            last = member
            walk.members[norm(member.name)] = member
            walk.count += 1
            # tf.offset is where the next header would start.
            if tf.offset > reader.size:
                end = member.offset_data + member.size
                if end > reader.size:
                    walk.problem = (
                        f"member {member.name} ends at {end}, past the end of the file "
                        f"at {reader.size}: truncated"
                    )
                else:
                    walk.problem = f"archive ends inside the padding of {member.name}: truncated"
                return walk
    except BudgetExhausted:
        walk.budget_hit = True
        return walk
    except OSError:
        raise
    except Exception as exc:  # see above: not only TarError
        after = f" after {last.name}" if last is not None else ""
        walk.problem = f"unreadable tar header{after} ({exc})"
        return walk

    # tarfile stops quietly at a zero block, a cut header or a damaged header;
    # only the first is a proper end.
    end = tf.offset
    left = reader.size - end
    if left == 0:
        walk.problem = f"archive ends at {end} without an end-of-archive marker: truncated"
    elif left < BLOCK:
        walk.problem = f"archive ends inside a tar header at offset {end}: truncated"
    else:
        try:
            block = reader.read_at(end, BLOCK)
        except BudgetExhausted:
            walk.budget_hit = True
            return walk
        if block.count(0) != len(block):
            walk.problem = f"unreadable tar header at offset {end}"
    return walk


def _chain_to_end(data: bytes, at: int, base: int, size: int) -> list[tarfile.TarInfo] | None:
    """The plain members from `data[at:]` on, if their headers lead to the archive's end.

    `data` holds the file from offset `base` to its end at `size`. The chain must
    hop header to header and end in zero blocks that run to the end of the file:
    a layer is itself a tar, and its own headers end in zeros with more outside.
    """
    members = []
    while True:
        if at + BLOCK > len(data):
            return None
        block = data[at : at + BLOCK]
        if block == _ZERO_BLOCK:
            return members if members and data.count(0, at) == len(data) - at else None
        member = _plain_header(block, base + at)
        if member is None:
            return None
        members.append(member)
        at += BLOCK
        if member.isreg():
            at += -(-member.size // BLOCK) * BLOCK
        if base + at > size:
            return None


def walk_tail(reader: BudgetReader, walk: Walk) -> None:
    """Add the members in the archive's last bytes to a walk the budget stopped.

    The remaining budget is read from the end in one piece (kept, so the JSON in
    it is not paid for twice); the first block-aligned header whose chain leads to
    the end-of-archive marker starts the members added. Headers that are not
    plain ustar are left alone.
    """
    length = min(reader.remaining, reader.size)
    start = -(-(reader.size - length) // BLOCK) * BLOCK
    if reader.size - start < 2 * BLOCK:
        return
    data = reader.keep(start, reader.size - start)
    for at in range(0, len(data) - BLOCK, BLOCK):
        members = _chain_to_end(data, at, start, reader.size)
        if members is not None:
            for member in members:
                if walk.members.setdefault(norm(member.name), member) is member:
                    walk.tail_count += 1
            return
