"""Read the index of an oci-archive or docker-archive without extracting anything.

Both are plain tar files, whose member headers `tarwalk` walks. Only the small
JSON members are read: `index.json` and the manifest blobs it names (one level
of nested image index) for OCI, `manifest.json` for docker. `docker save` from
version 25 writes both; such an archive is a docker-archive whose refs come from
both.

Where the index sits is up to the writer (skopeo puts it last), so all headers are
walked before any JSON is read; the walk keeps back part of the budget for that.
An archive with more members than the budget can walk (a docker-archive spends
four on each layer) has its end read instead (`tarwalk.walk_tail`): every writer
puts manifest.json or index.json after the layers.
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from imgcache.backends.inventory.model import ArchiveInfo, Format, LayerInfo, ProbeResult
from imgcache.backends.inventory.probe.reader import BudgetExhausted, BudgetReader
from imgcache.backends.inventory.probe.tarwalk import Walk, norm, walk_headers, walk_tail

#: No index or manifest imgcache has to read is larger; a member claiming more is corrupt.
MAX_JSON_BYTES = 1024 * 1024

#: Media types of an image index (a list of manifests, one per platform or image).
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
#: Media types of an image manifest (one image: its config and layers).
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
#: The media type given to the layers a docker-archive's manifest.json lists.
DOCKER_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
#: The OCI annotation holding an image's reference (or only its tag).
REF_ANNOTATION = "org.opencontainers.image.ref.name"
#: containerd (and docker save >= 25) put the full image name here, ref.name holds the tag.
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"

_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_BLOB_NAME = re.compile(r"^blobs/([a-z0-9]+(?:[.+_-][a-z0-9]+)*)/([a-zA-Z0-9=_-]+)$")
_HEX_TAR = re.compile(r"^(?:.*/)?([0-9a-f]{64})\.tar$")
# What docker save (before 25) and skopeo's docker-archive write beside manifest.json.
_DOCKER_LEGACY = re.compile(r"^[0-9a-f]{64}(?:\.tar|\.json|/layer\.tar|/json|/VERSION)$")


#: The note, and what it is, of a whole tar archive with no trace of an image in it.
_NOT_AN_IMAGE = "tar archive that is not an image"
_PLAIN_TAR = "a tar archive with no image index (index.json or manifest.json)"


class ArchiveError(ValueError):
    """The archive's structure or metadata is broken; str() says why."""


class NotAnIndex(ArchiveError):
    """index.json or manifest.json that is not shaped like an image index at all.

    In a tar with no other trace of an image this is someone else's file, not a
    broken image.
    """


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
    return parse_json(data, name)


def parse_json(data: bytes, name: str) -> Any:
    """`data` parsed as JSON; ArchiveError naming `name` when it is not valid JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ArchiveError(f"{name} is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise ArchiveError(f"{name} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class OciDescriptor:
    """An OCI content descriptor, checked (see `oci_descriptors`)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]


def oci_descriptors(doc: Any, where: str, key: str) -> list[OciDescriptor]:
    """The `key` list of OCI descriptors in `doc`, with every field checked.

    Raises ArchiveError, naming `where`, for anything that is not one.
    """
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
        out.append(OciDescriptor(media_type, digest, size, strings))
    return out


def _blob(
    reader: BudgetReader, walk: Walk, desc: OciDescriptor, where: str
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


def _oci(reader: BudgetReader, walk: Walk) -> _Images:
    """Read index.json, one level of nested index, and the image manifests."""
    images = _Images()
    image_manifests: list[tuple[OciDescriptor, str]] = []
    try:
        index = _read_json(reader, walk.members, "index.json")
    except NotAnIndex:
        raise
    except ArchiveError as exc:
        raise NotAnIndex(str(exc)) from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise NotAnIndex("index.json is not an OCI image index")
    for desc in oci_descriptors(index, "index.json", "manifests"):
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
        for inner in oci_descriptors(doc, name, "manifests"):
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
        for layer in oci_descriptors(doc, name, "layers"):
            # Images in one archive share blobs; the archive stores each once.
            if layer.digest not in seen:
                seen.add(layer.digest)
                images.layers.append(LayerInfo(layer.media_type, layer.size, layer.digest))
    return images


def _resolve(walk: Walk, name: str) -> tuple[str, tarfile.TarInfo] | None:
    """Find the member `name`, following one symbolic or hard link."""
    name = norm(name)
    member = walk.members.get(name)
    if member is not None and (member.issym() or member.islnk()):
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        else:
            target = member.linkname
        linked = walk.members.get(norm(target))
        if linked is not None:
            return norm(target), linked
    return (name, member) if member is not None else None


def _digest_from_name(name: str) -> str:
    """The content digest a layer's file name spells out, or "" when it has none."""
    if match := _BLOB_NAME.match(name):
        return f"{match[1]}:{match[2]}"
    if match := _HEX_TAR.match(name):
        return f"sha256:{match[1]}"
    return ""


def _docker(reader: BudgetReader, walk: Walk) -> _Images:
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
            name, size = (found[0], found[1].size) if found else (norm(layer), 0)
            digest = _digest_from_name(name)
            if digest and digest in seen:
                continue
            seen.add(digest or name)
            images.layers.append(LayerInfo(DOCKER_LAYER_TYPE, size, digest))
    return images


def probe_archive(reader: BudgetReader) -> ProbeResult:
    """Probe a file with a ustar header at 0. Never raises but OSError."""
    walk = walk_headers(reader)
    if walk.budget_hit and walk.problem is None:
        walk_tail(reader, walk)
    names = walk.members.keys()
    has_index, has_manifest = "index.json" in names, "manifest.json" in names
    oci_signs = "oci-layout" in names or any(n.startswith("blobs/") for n in names)
    docker_signs = "repositories" in names or any(_DOCKER_LEGACY.match(n) for n in names)
    if not (has_index or has_manifest or oci_signs or docker_signs):
        if walk.count == 0 and walk.problem:
            return ProbeResult(Format.UNKNOWN, note=walk.problem)
        if walk.budget_hit:
            note = f"tar archive with no image index in its first {walk.count} members"
            return ProbeResult(Format.UNKNOWN, note=note)
        return ProbeResult(Format.UNKNOWN, note=_NOT_AN_IMAGE, not_image=_PLAIN_TAR)

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
                return ProbeResult(Format.UNKNOWN, note=_NOT_AN_IMAGE, not_image=_PLAIN_TAR)
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
