"""Read the index of an oci-archive or docker-archive without extracting anything.

Both are plain tar files. The standard library's tarfile walks the member headers
through the budgeted reader, seeking over member data, so a 10 GiB archive costs
about 513 bytes per member. Only the small JSON members are read: `index.json`
and the manifest blobs it names (one level of nested image index) for OCI,
`manifest.json` for docker. `docker save` from version 25 writes both; such an
archive is a docker-archive whose refs come from both.

Where the index sits is up to the writer (skopeo puts it last), so all headers are
walked before any JSON is read; the walk keeps back part of the budget for that.
An archive with more members than the budget can walk (a docker-archive spends
four on each layer) has its end read instead (`_walk_tail`): every writer puts
manifest.json or index.json after the layers.
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any
from zlib import adler32

from imgcache.backends.inventory.model import ArchiveInfo, Format, LayerInfo, ProbeResult
from imgcache.backends.inventory.probe.reader import BudgetExhausted, BudgetReader

BLOCK = tarfile.BLOCKSIZE
#: No index or manifest imgcache has to read is larger; a member claiming more is corrupt.
MAX_JSON_BYTES = 1024 * 1024
#: Budget the header walk leaves for reading index.json and the manifests, or,
#: when the walk cannot reach the end, the archive's last bytes: room for the
#: manifest.json of a docker-archive of about 150 layers.
WALK_RESERVE = 16 * 1024

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
DOCKER_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
#: containerd (and docker save >= 25) put the full image name here, ref.name holds the tag.
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"

_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_BLOB_NAME = re.compile(r"^blobs/([a-z0-9]+(?:[.+_-][a-z0-9]+)*)/([a-zA-Z0-9=_-]+)$")
_HEX_TAR = re.compile(r"^(?:.*/)?([0-9a-f]{64})\.tar$")
# What docker save (before 25) and skopeo's docker-archive write beside manifest.json.
_DOCKER_LEGACY = re.compile(r"^[0-9a-f]{64}(?:\.tar|\.json|/layer\.tar|/json|/VERSION)$")


class ArchiveError(ValueError):
    """The archive's structure or metadata is broken; str() says why."""


class NotAnIndex(ArchiveError):
    """index.json or manifest.json that is not shaped like an image index at all.

    In a tar with no other trace of an image this is someone else's file, not a
    broken image.
    """


@dataclass
class _Walk:
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


def _norm(name: str) -> str:
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


def _walk_plain(reader: BudgetReader) -> _Walk | None:
    """`_walk` for a plain, intact archive; None, with nothing counted, otherwise.

    Uncounting is right here: tarfile then reads the same bytes again, and they
    are counted once, as if the fast path had not run.
    """
    read_before = reader.bytes_read
    walk = _plain_walk(reader)
    if walk is None:
        reader.bytes_read = read_before
    return walk


def _plain_walk(reader: BudgetReader) -> _Walk | None:
    walk = _Walk()
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
            # _walk reads the end-of-archive block once more to check it.
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
        walk.members[_norm(member.name)] = member
        walk.count += 1


def _walk(reader: BudgetReader) -> _Walk:
    """Walk every member header, stopping at the first sign of damage."""
    walk = _walk_plain(reader)
    if walk is not None:
        return walk
    walk = _Walk()
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
            walk.members[_norm(member.name)] = member
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


def _walk_tail(reader: BudgetReader, walk: _Walk) -> None:
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
                if walk.members.setdefault(_norm(member.name), member) is member:
                    walk.tail_count += 1
            return


def _read_json(reader: BudgetReader, members: dict[str, tarfile.TarInfo], name: str) -> Any:
    """Read and parse one small JSON member; BudgetExhausted if it does not fit."""
    member = members[name]
    if not member.isreg():
        raise ArchiveError(f"{name} is not a regular file in the archive")
    if member.size > MAX_JSON_BYTES:
        raise ArchiveError(f"{name} claims {member.size} bytes, more than 1 MiB of metadata")
    end = member.offset_data + member.size
    if end > reader.size:
        raise ArchiveError(
            f"{name} ends at {end}, past the end of the file at {reader.size}: truncated"
        )
    data = reader.read_at(member.offset_data, member.size)
    if len(data) < member.size:
        raise ArchiveError(f"{name} is cut short: truncated")
    try:
        return json.loads(data)
    except RecursionError:
        raise ArchiveError(f"{name} is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise ArchiveError(f"{name} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class _Descriptor:
    """An OCI content descriptor, checked."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]


def _descriptors(doc: Any, where: str, key: str) -> list[_Descriptor]:
    """The `key` list of OCI descriptors in `doc`, with every field checked."""
    if not isinstance(doc, dict):
        raise ArchiveError(f"{where} is not a JSON object")
    items = doc.get(key)
    if not isinstance(items, list):
        raise ArchiveError(f"{where} has no '{key}' list")
    out = []
    for i, item in enumerate(items):
        at = f"{where}: {key}[{i}]"
        if not isinstance(item, dict):
            raise ArchiveError(f"{at} is not a JSON object")
        digest, size = item.get("digest"), item.get("size")
        media_type, annotations = item.get("mediaType", ""), item.get("annotations") or {}
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ArchiveError(f"{at} has no valid digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ArchiveError(f"{at} has no valid size")
        if not isinstance(media_type, str):
            raise ArchiveError(f"{at} has a mediaType that is not a string")
        if not isinstance(annotations, dict):
            raise ArchiveError(f"{at} has annotations that are not an object")
        strings = {k: v for k, v in annotations.items() if isinstance(v, str)}
        out.append(_Descriptor(media_type, digest, size, strings))
    return out


def _blob(
    reader: BudgetReader, walk: _Walk, desc: _Descriptor, where: str
) -> tuple[str, Any] | None:
    """Read the JSON blob `desc` names; None when a partial walk may have missed it."""
    algorithm, encoded = desc.digest.split(":", 1)
    name = f"blobs/{algorithm}/{encoded}"
    member = walk.members.get(name)
    if member is None:
        if walk.complete:
            raise ArchiveError(f"{where} names {desc.digest}, which the archive does not contain")
        return None
    if member.isreg() and member.size != desc.size:
        raise ArchiveError(f"{name} is {member.size} bytes, {where} says {desc.size}")
    return name, _read_json(reader, walk.members, name)


@dataclass
class _Images:
    """What the index or manifest of one archive says."""

    refs: list[str] = field(default_factory=list)
    layers: list[LayerInfo] = field(default_factory=list)
    manifests: int = 0


def _oci(reader: BudgetReader, walk: _Walk) -> _Images:
    """Read index.json, one level of nested index, and the image manifests."""
    images = _Images()
    image_manifests: list[tuple[_Descriptor, str]] = []
    try:
        index = _read_json(reader, walk.members, "index.json")
    except NotAnIndex:
        raise
    except ArchiveError as exc:
        raise NotAnIndex(str(exc)) from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise NotAnIndex("index.json is not an OCI image index")
    for desc in _descriptors(index, "index.json", "manifests"):
        ref = desc.annotations.get(CONTAINERD_NAME_ANNOTATION) or desc.annotations.get(
            REF_ANNOTATION
        )
        if ref and ref not in images.refs:
            images.refs.append(ref)
        if desc.media_type not in INDEX_TYPES:
            image_manifests.append((desc, "index.json"))
            continue
        nested = _blob(reader, walk, desc, "index.json")
        if nested is None:
            continue
        name, doc = nested
        for inner in _descriptors(doc, name, "manifests"):
            # Build attestations ride in image indexes as manifests of their own.
            if inner.annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                continue
            if inner.media_type not in INDEX_TYPES:
                image_manifests.append((inner, name))
    seen: set[str] = set()
    for desc, where in image_manifests:
        if desc.media_type and desc.media_type not in MANIFEST_TYPES:
            continue  # an artifact imgcache does not count as an image
        found = _blob(reader, walk, desc, where)
        if found is None:
            continue
        name, doc = found
        images.manifests += 1
        for layer in _descriptors(doc, name, "layers"):
            # Images in one archive share blobs; the archive stores each once.
            if layer.digest not in seen:
                seen.add(layer.digest)
                images.layers.append(LayerInfo(layer.media_type, layer.size, layer.digest))
    return images


def _resolve(walk: _Walk, name: str) -> tuple[str, tarfile.TarInfo] | None:
    """Find the member `name`, following one symbolic or hard link."""
    name = _norm(name)
    member = walk.members.get(name)
    if member is not None and (member.issym() or member.islnk()):
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        else:
            target = member.linkname
        linked = walk.members.get(_norm(target))
        if linked is not None:
            return _norm(target), linked
    return (name, member) if member is not None else None


def _digest_from_name(name: str) -> str:
    """The content digest a layer's file name spells out, or "" when it has none."""
    if match := _BLOB_NAME.match(name):
        return f"{match[1]}:{match[2]}"
    if match := _HEX_TAR.match(name):
        return f"sha256:{match[1]}"
    return ""


def _docker(reader: BudgetReader, walk: _Walk) -> _Images:
    """Read manifest.json: RepoTags and Layers of every image in the archive."""
    try:
        doc = _read_json(reader, walk.members, "manifest.json")
    except NotAnIndex:
        raise
    except ArchiveError as exc:
        raise NotAnIndex(str(exc)) from None
    if not isinstance(doc, list) or not all(isinstance(e, dict) and "Layers" in e for e in doc):
        raise NotAnIndex("manifest.json is not a docker image manifest list")
    images = _Images(manifests=len(doc))
    seen: set[str] = set()
    for i, entry in enumerate(doc):
        at = f"manifest.json: [{i}]"
        tags, layers = entry.get("RepoTags") or [], entry.get("Layers")
        if not isinstance(entry.get("Config"), str):
            raise ArchiveError(f"{at} has no Config")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ArchiveError(f"{at}.RepoTags is not a list of strings")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ArchiveError(f"{at}.Layers is not a list of strings")
        images.refs.extend(t for t in tags if t not in images.refs)
        for layer in layers:
            found = _resolve(walk, layer)
            if found is None and walk.complete:
                raise ArchiveError(f"manifest.json names layer {layer}, which the archive lacks")
            name, size = (found[0], found[1].size) if found else (_norm(layer), 0)
            digest = _digest_from_name(name)
            if digest and digest in seen:
                continue
            seen.add(digest or name)
            images.layers.append(LayerInfo(DOCKER_LAYER_TYPE, size, digest))
    return images


def probe_archive(reader: BudgetReader) -> ProbeResult:
    """Probe a file with a ustar header at 0. Never raises but OSError."""
    walk = _walk(reader)
    if walk.budget_hit and walk.problem is None:
        _walk_tail(reader, walk)
    names = walk.members.keys()
    has_index, has_manifest = "index.json" in names, "manifest.json" in names
    oci_signs = "oci-layout" in names or any(n.startswith("blobs/") for n in names)
    docker_signs = "repositories" in names or any(_DOCKER_LEGACY.match(n) for n in names)
    if not (has_index or has_manifest or oci_signs or docker_signs):
        if walk.count == 0 and walk.problem:
            note = walk.problem
        elif walk.budget_hit:
            note = f"tar archive with no image index in its first {walk.count} members"
        else:
            note = "tar archive that is not an image"
        return ProbeResult(Format.UNKNOWN, note=note)

    docker = has_manifest or (docker_signs and not oci_signs and not has_index)
    fmt = Format.DOCKER_ARCHIVE if docker else Format.OCI_ARCHIVE
    error, note = walk.problem, None
    budget_note = f"read budget reached after {walk.count} tar members"
    if walk.tail_count:
        budget_note += f" and {walk.tail_count} at the end"
    parsed: dict[str, _Images] = {}
    for name, read in (("index.json", _oci), ("manifest.json", _docker)):
        if name not in names:
            continue
        try:
            parsed[name] = read(reader, walk)
        except ArchiveError as exc:
            if isinstance(exc, NotAnIndex) and not (oci_signs or docker_signs):
                # A lone index.json or manifest.json that is not an image index:
                # some other project's tarball, not a broken image.
                return ProbeResult(Format.UNKNOWN, note="tar archive that is not an image")
            error = error or str(exc)
        except BudgetExhausted:
            note = f"{budget_note}, before {name} was read"
    oci_images, docker_images = parsed.get("index.json"), parsed.get("manifest.json")

    index_name = "manifest.json" if docker else "index.json"
    if index_name not in names:
        if walk.budget_hit:
            note = f"{budget_note}, before {index_name}"
        else:
            error = error or f"archive ends before {index_name}: truncated?"
    elif walk.budget_hit and note is None:
        note = budget_note

    info = None
    if oci_images is not None or docker_images is not None:
        # A docker-archive whose manifest.json is broken still shows its index.json.
        main = (docker_images if docker else oci_images) or oci_images or docker_images
        assert main is not None
        refs = list(main.refs)
        layers = main.layers
        if docker_images is not None and oci_images is not None:
            refs.extend(r for r in oci_images.refs if r not in refs)
            # The OCI manifests of docker save >= 25 carry real media types.
            if oci_images.manifests:
                layers = oci_images.layers
        info = ArchiveInfo(refs=tuple(refs), layers=tuple(layers), manifests=main.manifests)
    return ProbeResult(fmt, error=error, archive=info, note=note)
