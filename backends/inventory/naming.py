"""How each cache kind names a file after a reference; that a path stays inside its root.

Each cache kind names its files after the reference in its own way (Determined's
SIF layout, ``enroot import``, ``podman save``); the encoders and their inverses
live here so that the scanner and the jobs agree on them. Any path built from a
reference goes through `path_in_root`, which refuses to leave the cache root.

Nothing here does I/O except `path_in_root`, which resolves symlinks.
"""

from __future__ import annotations

import os
import re

from imgcache.backends.inventory.refs import Reference, RefError, parse, path_reference, quoted

__all__ = [
    "enroot_filename",
    "enroot_ref_from_filename",
    "enroot_ref_string",
    "path_in_root",
    "podman_filename",
    "singularity_ref_from_relpath",
    "singularity_relpath",
]

_SIF_SUFFIX = ".sif"
_LATEST = "latest"
_LIBRARY = "library/"
#: Docker Hub as a reference may name it; enroot drops ``library/`` only there.
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
#: enroot's ``reg_digest``: the one kind of digest its URIs and file names hold.
_ENROOT_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SQSH_SUFFIX = ".sqsh"
_TAR_SUFFIX = ".tar"


# --- file names per cache kind ---------------------------------------------------


def singularity_relpath(ref: Reference) -> str:
    """The SIF file's path under ``singularity_image_root``: the ref as written.

    Determined's HPC launcher looks for ``ROOT/<image as written in the config>``,
    colon and all, so no normalisation and no ``.sif`` is added.
    """
    return str(ref)


def singularity_ref_from_relpath(rel: str) -> Reference:
    """The reference a path under ``singularity_image_root`` stands for.

    A trailing ``.sif`` is dropped first (``ubuntu:22.04.sif`` and ``ubuntu:22.04``
    are the same image), so a ref whose own text ends in ``.sif`` cannot be told
    apart from the one without it. Raises `RefError` for names that are not refs.
    """
    stem = rel.removesuffix(_SIF_SUFFIX)
    if not stem:
        raise RefError(f"file name {quoted(rel)} has nothing before '.sif'")
    return parse(stem)


def _enroot_image(ref: Reference) -> str:
    """The image part of an enroot file name: the path, Docker Hub's ``library/`` dropped."""
    if ref.registry in _DOCKER_HUB and ref.path.startswith(_LIBRARY):
        return ref.path.removeprefix(_LIBRARY)
    return ref.path


def enroot_filename(ref: Reference) -> str:
    """The file name ``enroot import`` (>= 4.0) gives *ref*: ``nvidia+pytorch+25.09-py3.sqsh``.

    The registry is dropped, and for Docker Hub a leading ``library/``
    (``ubuntu+22.04.sqsh``); ``/`` becomes ``+``; then ``+<tag>``, ``+latest``
    when there is none, or ``+sha256:<hex>`` for a digest (a tag beside it is
    ignored, as enroot ignores it). enroot names only sha256 digests; another
    algorithm is refused.
    """
    n = ref.normalized()
    if n.digest is not None:
        if not _ENROOT_DIGEST.fullmatch(n.digest):
            raise RefError(
                f"{quoted(str(ref))} names a {n.digest.split(':')[0]} digest; "
                "enroot names only sha256 digests"
            )
        last = n.digest
    else:
        last = n.tag or _LATEST
    return f"{_enroot_image(n).replace('/', '+')}+{last}{_SQSH_SUFFIX}"


def enroot_ref_from_filename(name: str) -> Reference:
    """The reference an enroot ``.sqsh`` file name stands for; registry is None.

    ``+`` separates the parts. A last part ``sha256:<64 hex>`` is a digest;
    otherwise, with two or more parts, the last is the tag (enroot >= 4.0 always
    writes one). A single part is the path alone: enroot 3's name for an untagged
    reference, or a name an admin chose. enroot 3 wrote ``ns+img.sqsh`` for an
    untagged ``ns/img``, which reads here as ``ns:img``: the two cannot be told
    apart, and enroot 4's reading wins. Raises `RefError` when *name* is not a
    ``.sqsh`` name or its parts do not parse.
    """
    if not name.endswith(_SQSH_SUFFIX):
        raise RefError(f"file name {quoted(name)} does not end in '.sqsh'")
    stem = name.removesuffix(_SQSH_SUFFIX)
    if not stem:
        raise RefError(f"file name {quoted(name)} has nothing before '.sqsh'")
    parts = stem.split("+")
    if not all(parts):
        raise RefError(f"enroot file name {quoted(name)} has an empty part between '+' signs")
    if "/" in name:
        raise RefError(f"enroot file name {quoted(name)} has a '/'; enroot writes '+' instead")
    if len(parts) == 1:
        return path_reference(parts[0], None)
    path, last = "/".join(parts[:-1]), parts[-1]
    if _ENROOT_DIGEST.fullmatch(last):
        return Reference(registry=None, path=path, digest=last)
    return path_reference(path, last)


def enroot_ref_string(ref: Reference) -> str:
    """The reference an enroot cache records for *ref*: what its file name reads back as.

    ``path:tag`` (``latest`` when there is none) or ``path@sha256:...``, with no
    registry and no ``library/`` in front, so that ``ubuntu``,
    ``docker.io/library/ubuntu:latest`` and the files ``ubuntu+latest.sqsh``,
    ``library+ubuntu+latest.sqsh`` (enroot 4.1's name for the last) and
    ``ubuntu.sqsh`` (enroot 3's) all record ``ubuntu:latest``.
    """
    path = ref.path.removeprefix(_LIBRARY)
    if ref.digest is not None:
        return f"{path}@{ref.digest}"
    return f"{path}:{ref.tag or _LATEST}"


def podman_filename(ref: Reference) -> str:
    """A readable name for *ref*'s ``podman save --format=oci-archive`` file.

    The familiar form with ``/``, ``:`` and ``@`` turned into ``+``, then ``.tar``.
    The name is only for people: the ref itself is read from inside the archive.
    """
    familiar = ref.familiar()
    for char in "/:@":
        familiar = familiar.replace(char, "+")
    return familiar + _TAR_SUFFIX


# --- containment -------------------------------------------------------------------


def path_in_root(root: str, rel: str) -> str:
    """``root/rel``, after checking that it stays inside *root* once symlinks are resolved.

    Returns ``os.path.normpath(os.path.join(root, rel))`` - the very string that was
    checked, so opening it cannot reach anything else (short of a rename racing the
    check). Raises `RefError` for an empty, absolute or NUL-containing *rel*, and
    when the path would be outside the cache root or the root itself.
    """
    if not rel:
        raise RefError("the file name is empty")
    if "\0" in rel or "\0" in root:
        raise RefError(f"file name {quoted(rel)} has a NUL byte")
    try:
        os.fsencode(rel)
        os.fsencode(root)
    except UnicodeEncodeError as exc:
        raise RefError(f"file name {quoted(rel)} cannot be written on this file system") from exc
    if os.path.isabs(rel):
        raise RefError(f"{quoted(rel)} is an absolute path; it would be outside the cache root")
    candidate = os.path.normpath(os.path.join(root, rel))
    lexical_root = os.path.abspath(root)
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    # Both checks: the lexical one catches '..' before any symlink is involved, the
    # resolved one catches symlinks (inside the root) that point out of it.
    for base, path in ((lexical_root, os.path.abspath(candidate)), (real_root, real)):
        if os.path.commonpath([base, path]) != base:
            raise RefError(f"{quoted(rel)} would be outside the cache root {quoted(root)}")
        if path == base:
            raise RefError(
                f"{quoted(rel)} would be the cache root {quoted(root)} itself, not a file in it"
            )
    return candidate
