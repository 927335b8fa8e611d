"""How each cache kind names a file after a reference; that a path stays inside its root.

Each cache kind names its files after the reference in its own way (Determined's
SIF layout, ``enroot import``, ``podman save``); the encoders and their inverses
live here so that the scanner and the jobs agree on them. Any path built from a
reference goes through `path_in_root`, which refuses to leave the cache root.

Nothing here does I/O except `path_in_root`, which resolves symlinks.
"""

from __future__ import annotations

import os

from imgcache.backends.inventory.refs import Reference, RefError, parse, path_reference, quoted

__all__ = [
    "enroot_filename",
    "enroot_ref_from_filename",
    "path_in_root",
    "podman_filename",
    "singularity_ref_from_relpath",
    "singularity_relpath",
]

_SIF_SUFFIX = ".sif"
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


def enroot_filename(ref: Reference) -> str:
    """The file name ``enroot import`` gives *ref*: ``nvidia+pytorch+25.09-py3.sqsh``.

    The registry is dropped, ``/`` becomes ``+``, ``+<tag>`` follows when there is a
    tag. enroot has no way to name a digest, so a ref with one is refused.
    """
    if ref.digest is not None:
        raise RefError(
            f"{quoted(str(ref))} names a digest, which an enroot file name cannot hold; use a tag"
        )
    name = ref.path.replace("/", "+")
    if ref.tag is not None:
        name += f"+{ref.tag}"
    return name + _SQSH_SUFFIX


def enroot_ref_from_filename(name: str) -> Reference:
    """The reference an enroot ``.sqsh`` file name stands for; registry is None.

    ``+`` separates the parts: one part is the path alone, with more the last part
    is the tag. So ``nvidia+pytorch.sqsh`` reads as ``nvidia:pytorch``; enroot's
    naming cannot tell a two-component path without tag from a path with one.
    Raises `RefError` when *name* is not a ``.sqsh`` name or its parts do not parse.
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
        path, tag = parts[0], None
    else:
        path, tag = "/".join(parts[:-1]), parts[-1]
    return path_reference(path, tag)


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
