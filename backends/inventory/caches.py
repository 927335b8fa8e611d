"""The three kinds of cache: how a file's name maps to an image reference, and back.

- singularity (Determined's `singularity_image_root`): the file is
  `ROOT/<image ref as written>`, colon kept, with or without `.sif`.
- enroot (`manage-enroot-cache -s DIR`, pyxis `--container-save`): the file is
  named as `enroot import` (>= 4.0) names it: registry dropped, `/` and the tag
  (`latest` when none, or the sha256 digest) joined with `+`, `.sqsh`.
- podman (`podman save --format=oci-archive`): the reference is inside the
  archive; the file name is only for people.
"""

from __future__ import annotations

import re

from imgcache.backends.inventory import naming, refs
from imgcache.backends.inventory.model import CacheKind, Format, ProbeResult

#: Our own trash directory inside each cache (see the delete job); never scanned as images.
TRASH_DIR = ".imgcache-trash"
#: Where jobs keep their per-reference lock files; never scanned as images.
LOCK_DIR = ".imgcache-locks"
#: Directories of imgcache's own inside a cache, skipped by every walk and every
#: watch event: nothing under a path with one of these names is ever an image.
RESERVED_DIRS = frozenset({TRASH_DIR, LOCK_DIR})
#: Names of files being written or left behind by an interrupted write.
_INCOMPLETE = re.compile(
    r"""(
        ^\.imgcache-.*            # our own temporary files
      | ^\..*\.tmp               # hidden temporaries of other tools: .*.tmp* (.x.sqsh.tmp123)
      | ^\..*\.part(\.|$)         # and .x.part, .x.part.1
      | \.(tmp|part|partial|download|incomplete|crdownload)$
    )""",
    re.VERBOSE,
)
#: File name endings that claim an image: SIF (and Singularity 2's .simg),
#: squashfs, and the archives podman and skopeo write.
IMAGE_SUFFIXES = (".sif", ".simg", ".sqsh", ".squashfs", ".tar", ".oci")
#: Temporary-file prefix of imgcache's own jobs; `.imgcache-<final name>.<job>.tmp`.
TEMP_PREFIX = ".imgcache-"
#: Every name `_INCOMPLETE` matches is hidden or ends in one of these (its `$`
#: also matches before a final newline, hence the second spelling of each).
_INCOMPLETE_ENDINGS = tuple(
    ending + newline
    for ending in (".tmp", ".part", ".partial", ".download", ".incomplete", ".crdownload")
    for newline in ("", "\n")
)


def looks_incomplete(name: str) -> bool:
    """True when a file's name says it is a temporary or partial download."""
    # The cheap test first: this runs for every file of a scan and of every
    # findings evaluation, and almost no name is hidden or ends like a download.
    if not name.startswith(".") and not name.endswith(_INCOMPLETE_ENDINGS):
        return False
    return bool(_INCOMPLETE.search(name))


def reserved(rel: str) -> bool:
    """True when a '/'-separated path under a cache root lies in (or is) one of
    imgcache's own directories (`RESERVED_DIRS`), at any depth."""
    return any(part in RESERVED_DIRS for part in rel.split("/"))


def named_like_image(kind: CacheKind, rel: str) -> bool:
    """True when a file's name claims an image, whatever its content.

    A name ending in one of `IMAGE_SUFFIXES` does in any cache; in a singularity
    cache so does Determined's layout, a path that reads as a reference with a tag
    or digest (`ubuntu:22.04`). A README or notes file does not.
    """
    name = _basename(rel)
    if name.lower().endswith(IMAGE_SUFFIXES):
        return True
    if kind is CacheKind.SINGULARITY:
        try:
            ref = naming.singularity_ref_from_relpath(rel)
        except refs.RefError:
            return False
        return ref.tag is not None or ref.digest is not None
    return False


def _basename(rel: str) -> str:
    """`os.path.basename` for the '/'-separated paths of a scan, in a third of the time."""
    return rel.rpartition("/")[2]


def ref_string(kind: CacheKind, ref: refs.Reference) -> str:
    """The reference a cache of `kind` records for `ref`, as `Image.ref` holds it.

    enroot drops the registry (and Docker Hub's `library/`) from its file names,
    so an enroot file's reference is the repository path and tag (or digest)
    alone (`naming.enroot_ref_string`); the others are fully normalised.
    """
    if kind is CacheKind.ENROOT:
        return naming.enroot_ref_string(ref)
    return str(ref.normalized())


def ref_from_name(kind: CacheKind, rel: str) -> tuple[str | None, str | None]:
    """The reference a file's name maps to, or (None, reason) when it does not."""
    try:
        if kind is CacheKind.SINGULARITY:
            return ref_string(kind, naming.singularity_ref_from_relpath(rel)), None
        if kind is CacheKind.ENROOT:
            name = _basename(rel)
            if not name.endswith(".sqsh"):
                return None, "enroot images are named <repository+tag>.sqsh"
            return ref_string(kind, naming.enroot_ref_from_filename(name)), None
    except refs.RefError as exc:
        return None, str(exc)
    return None, "podman archives carry their reference inside the file"


def ref_for(kind: CacheKind, rel: str, probe: ProbeResult) -> tuple[str | None, str | None]:
    """The reference of a file: from its name, or for archives from inside it."""
    if looks_incomplete(_basename(rel)):
        # A partial download is no image yet, whatever its name would map to.
        return None, "an unfinished write, not an image"
    if probe.archive is not None and (kind is CacheKind.PODMAN or probe.archive.refs):
        for text in probe.archive.refs:
            try:
                return ref_string(CacheKind.PODMAN, refs.parse(text)), None
            except refs.RefError:
                continue
        if kind is CacheKind.PODMAN:
            return None, "the archive names no image reference"
    if kind is CacheKind.PODMAN:
        if probe.format is Format.UNKNOWN:
            return None, "not an image archive"
        return None, "the archive names no image reference"
    ref, error = ref_from_name(kind, rel)
    if ref is not None and probe.not_image is not None:
        # The content says it is no image, whatever its name maps to.
        return None, f"not an image: {probe.not_image}"
    return ref, error


def target_relpath(kind: CacheKind, ref: refs.Reference) -> str:
    """Where a new image for `ref` goes, relative to a cache root of `kind`."""
    if kind is CacheKind.SINGULARITY:
        return naming.singularity_relpath(ref)
    if kind is CacheKind.ENROOT:
        return naming.enroot_filename(ref)
    return naming.podman_filename(ref)


def target_path(kind: CacheKind, root: str, ref: refs.Reference) -> str:
    """The absolute path for `ref` in a cache, checked to lie inside the root."""
    return naming.path_in_root(root, target_relpath(kind, ref))


def expected_paths(kind: CacheKind, root: str, ref: refs.Reference) -> list[str]:
    """Every path under which the runtime finds `ref`, the preferred one first."""
    first = target_path(kind, root, ref)
    if kind is CacheKind.SINGULARITY:
        return [first, first + ".sif"]
    return [first]


#: The formats each kind of cache is expected to hold.
NATIVE_FORMATS = {
    CacheKind.SINGULARITY: (Format.SIF, Format.SQUASHFS),
    CacheKind.ENROOT: (Format.SQUASHFS,),
    CacheKind.PODMAN: (Format.OCI_ARCHIVE, Format.DOCKER_ARCHIVE),
}
