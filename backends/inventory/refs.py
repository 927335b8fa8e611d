"""Image references: the distribution/reference grammar, normalisation, cache file names.

A reference is ``[registry/]path[:tag][@digest]`` as docker, podman, apptainer and
enroot understand it (github.com/distribution/reference, ``regexp.go`` and
``normalize.go``). Parsing keeps the reference *as written*; `Reference.normalized`
adds the implied ``docker.io``, ``library/`` and ``latest``.

Each cache kind names its files after the reference in its own way (Determined's
SIF layout, ``enroot import``, ``podman save``); the encoders and their inverses
live here so that the scanner and the jobs agree on them. Any path built from a
reference goes through `path_in_root`, which refuses to leave the cache root.

Parsing has a fast path: a reference written the usual way (a registry with a
``.``, a port or ``localhost``, lowercase path, tag, a sha256/384/512 digest) is
recognised by one regular expression whose every match is a valid reference,
and built without checking its parts again. Anything else takes the slow path,
which checks part by part to say what is wrong. Both give the same result; the
scanner parses a name for every file it finds, and the checks cost ten times
the match.

Nothing here does I/O except `path_in_root`, which resolves symlinks.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass

from imgcache.backends.inventory.model import fast_constructor

__all__ = [
    "RefError",
    "Reference",
    "enroot_filename",
    "enroot_ref_from_filename",
    "normalize",
    "parse",
    "path_in_root",
    "podman_filename",
    "singularity_ref_from_relpath",
    "singularity_relpath",
]

# --- the grammar, spelled as in distribution/reference regexp.go -------------------
# Classes are written out instead of \w or [[:xdigit:]]: Python's \w is Unicode,
# Go's is ASCII, and a Unicode letter must not slip into a file name.

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")"
_PORT = r"(?::[0-9]+)?"
_DOMAIN_AND_PORT = _HOST + _PORT
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST_ALGORITHM = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
_DIGEST = _DIGEST_ALGORITHM + r"[:][0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

# All are used with fullmatch(): Python's "$" also matches before a final newline.
_REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?")
_DOMAIN_AND_PORT_RE = re.compile(_DOMAIN_AND_PORT)
_DOMAIN_COMPONENT_RE = re.compile(_DOMAIN_COMPONENT)
_IPV6_RE = re.compile(_IPV6)
_PORT_DIGITS_RE = re.compile(r"[0-9]+")
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT)
_TAG_RE = re.compile(_TAG)
_DIGEST_ALGORITHM_RE = re.compile(_DIGEST_ALGORITHM)
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_BAD_SEPARATOR_RE = re.compile(r"[._-]{2,}")

# The fast path: patterns that match only what the slow path accepts (see
# `_fast_parse`). A domain component spelled without the alternation of
# `_DOMAIN_COMPONENT` (the same strings, less backtracking); a registry is one
# docker reads as a registry: localhost, or a name with a '.' or a ':port'.
# Digests: only the registered algorithms, lowercase, with their exact lengths
# (what `_check_digest` accepts).
_FAST_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_FAST_REGISTRY_RE = re.compile(
    r"localhost(?::[0-9]+)?"
    r"|" + _FAST_DOMAIN_COMPONENT + r"(?:\." + _FAST_DOMAIN_COMPONENT + r")+(?::[0-9]+)?"
    r"|" + _FAST_DOMAIN_COMPONENT + r":[0-9]+"
)
_FAST_PATH = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_FAST_PATH_RE = re.compile(_FAST_PATH)
_FAST_DIGEST = r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}"
#: What follows the registry: path, then optional tag and digest.
_FAST_REMOTE_RE = re.compile(
    r"(" + _FAST_PATH + r")(?::(" + _TAG + r"))?(?:@(" + _FAST_DIGEST + r"))?"
)

_NAME_MAX = 255
_TAG_MAX = 128
_DEFAULT_REGISTRY = "docker.io"
_LEGACY_DEFAULT_REGISTRY = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_DEFAULT_TAG = "latest"
# go-digest only accepts registered algorithms, each with a fixed lowercase length.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HOST_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")

_TAG_RULE = "allowed: letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-'"
_PATH_RULE = "allowed: lowercase letters, digits, and '.', '_', '__' or '-' between them"

_SIF_SUFFIX = ".sif"
_SQSH_SUFFIX = ".sqsh"
_TAR_SUFFIX = ".tar"


class RefError(ValueError):
    """A text that is not an image reference, or a name that does not map to one.

    The message says why in plain words, so it can be shown to the admin as is.
    """


def _show(text: str, limit: int = 72) -> str:
    """Quote *text* for a message, shortening it so one bad ref cannot flood a screen."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def _first_bad(text: str, allowed: frozenset[str]) -> str | None:
    """The first character of *text* outside *allowed*, if any."""
    return next((c for c in text if c not in allowed), None)


def _is_registry_like(first: str) -> bool:
    """Whether docker reads a first ``/``-component as a registry (splitDockerDomain)."""
    return first == "localhost" or "." in first or ":" in first or first.lower() != first


# --- checks of the parts, each with its own reason ------------------------------


def _check_registry(registry: str) -> None:
    """Refuse a registry that is not ``host[:port]``, saying what is wrong with it."""
    if _DOMAIN_AND_PORT_RE.fullmatch(registry):
        return
    if not registry:
        raise RefError("the registry name is empty")
    if registry.startswith("["):
        close = registry.find("]")
        if close < 0:
            raise RefError(
                f"registry {_show(registry)} opens '[' for an IPv6 address but never closes it"
            )
        host, rest = registry[: close + 1], registry[close + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise RefError(
                f"registry {_show(registry)}: {_show(host)} is not an IPv6 address "
                "(hex digits and ':' between '[' and ']')"
            )
        port = rest[1:] if rest.startswith(":") else None
        if port is None or not _PORT_DIGITS_RE.fullmatch(port):
            raise RefError(
                f"registry {_show(registry)}: only ':<port number>' may follow the IPv6 address"
            )
    else:
        host, colon, port = registry.partition(":")
        if not host:
            raise RefError(f"registry {_show(registry)} has no host name before the port")
        if colon and not _PORT_DIGITS_RE.fullmatch(port):
            raise RefError(f"registry port {_show(port)} must be a number")
        bad = _first_bad(host.replace(".", ""), _HOST_CHARS)
        if bad is not None:
            raise RefError(
                f"registry host {_show(host)} has a character a host name cannot hold: {bad!r} "
                "(allowed: letters, digits, '-', and '.' between parts)"
            )
        for part in host.split("."):
            if not part:
                raise RefError(f"registry host {_show(host)} has an empty part between dots")
            if not _DOMAIN_COMPONENT_RE.fullmatch(part):
                raise RefError(f"registry host part {_show(part)} must not start or end with '-'")
    # Every way the grammar can fail is covered above; this keeps the grammar the judge.
    raise RefError(f"registry {_show(registry)} is not a valid host[:port]")


def _check_path(path: str) -> None:
    """Refuse a repository path outside the grammar, saying which component is wrong."""
    if not path:
        raise RefError("the repository path is empty")
    if path.startswith("/"):
        raise RefError(f"repository path {_show(path)} starts with '/'")
    if path.endswith("/"):
        raise RefError(f"repository path {_show(path)} ends with '/'")
    if "//" in path:
        raise RefError(f"repository path {_show(path)} has an empty component ('//')")
    if any("A" <= c <= "Z" for c in path):
        raise RefError(f"repository name must be lowercase: {_show(path)}")
    if ":" in path:
        raise RefError(
            f"repository path {_show(path)} has a ':' inside it; "
            "a ':' may only come before a registry port or before the tag"
        )
    for component in path.split("/"):
        if _PATH_COMPONENT_RE.fullmatch(component):
            continue
        bad = _first_bad(component, _PATH_CHARS)
        if bad is not None:
            raise RefError(
                f"path component {_show(component)} has a character a repository path "
                f"cannot hold: {bad!r} ({_PATH_RULE})"
            )
        if component[0] in "._-" or component[-1] in "._-":
            raise RefError(
                f"path component {_show(component)} must start and end with a lowercase "
                "letter or digit"
            )
        for run in _BAD_SEPARATOR_RE.findall(component):
            if run != "__" and set(run) != {"-"}:
                raise RefError(
                    f"path component {_show(component)} joins its parts with {run!r}; "
                    "between letters and digits only one '.', one '_', '__', "
                    "or any number of '-' may stand"
                )
        raise RefError(f"path component {_show(component)} is not valid ({_PATH_RULE})")


def _check_tag(tag: str) -> None:
    """Refuse a tag outside ``[\\w][\\w.-]{0,127}``, saying why."""
    if _TAG_RE.fullmatch(tag):
        return
    if not tag:
        raise RefError("the tag is empty: ':' is not followed by a tag")
    bad = _first_bad(tag, _TAG_CHARS)
    if bad is not None:
        raise RefError(f"tag {_show(tag)} has a character a tag cannot hold: {bad!r} ({_TAG_RULE})")
    if len(tag) > _TAG_MAX:
        raise RefError(f"tag {_show(tag)} is {len(tag)} characters long; a tag holds at most 128")
    raise RefError(
        f"tag {_show(tag)} starts with {tag[0]!r}; a tag must start with a letter, digit or '_'"
    )


def _check_digest(digest: str) -> None:
    """Refuse a digest that the grammar or go-digest would refuse, saying why."""
    if not digest:
        raise RefError("the digest is empty: '@' is not followed by a digest")
    algorithm, colon, hexpart = digest.partition(":")
    if not colon:
        raise RefError(
            f"digest {_show(digest)} has no ':'; a digest is written algorithm:hex, "
            "e.g. sha256:<64 hex digits>"
        )
    if not _DIGEST_ALGORITHM_RE.fullmatch(algorithm):
        raise RefError(
            f"digest algorithm {_show(algorithm)} is not valid (letters and digits starting "
            "with a letter, parts joined by '+', '.', '_' or '-')"
        )
    if not _HEX_RE.fullmatch(hexpart):
        bad = next(c for c in hexpart if c not in "0123456789abcdefABCDEF")
        raise RefError(f"digest {_show(digest)} has a character that is not a hex digit: {bad!r}")
    if len(hexpart) < 32:
        raise RefError(
            f"digest {_show(digest)} has only {len(hexpart)} hex digits; at least 32 are needed"
        )
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise RefError(
            f"digest algorithm {_show(algorithm)} is not supported (sha256, sha384 or sha512)"
        )
    if len(hexpart) != expected:
        raise RefError(
            f"a {algorithm} digest has exactly {expected} hex digits; "
            f"{_show(digest)} has {len(hexpart)}"
        )
    if hexpart != hexpart.lower():
        raise RefError(f"{algorithm} digest {_show(digest)} must be written in lowercase hex")


# --- the reference ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference as written: ``[registry/]path[:tag][@digest]``.

    Construction validates every part, so a `Reference` that exists is safe to turn
    into a file name. A registry must be one docker would read as a registry (with a
    ``.``, a ``:port``, uppercase, or ``localhost``), otherwise ``str()`` would read
    back differently. With ``registry=None`` the path is kept as given even when its
    first component looks like a registry (enroot file names carry no registry, so
    `enroot_ref_from_filename` can produce such paths); ``str()`` of such a ref reads
    back with that component as the registry.
    """

    registry: str | None
    """The registry as written; None when the ref names none (docker.io implied)."""
    path: str
    """The repository path as written, e.g. ``determinedai/environments`` or ``ubuntu``."""
    tag: str | None = None
    """The tag, without ``:``."""
    digest: str | None = None
    """The digest, ``algorithm:hex``, without ``@``."""

    def __post_init__(self) -> None:
        """Refuse parts outside the grammar; the message says which part and why."""
        name = self.path if self.registry is None else f"{self.registry}/{self.path}"
        # Checked first so that no regex below ever runs over a huge input.
        if len(name) > _NAME_MAX:
            raise RefError(
                f"repository name {_show(name)} is {len(name)} characters long; "
                f"at most {_NAME_MAX} are allowed"
            )
        if self.registry is not None:
            _check_registry(self.registry)
            if not _is_registry_like(self.registry):
                raise RefError(
                    f"{_show(self.registry)} cannot be a registry: a registry needs a '.', "
                    "a ':port', or to be 'localhost', or it is read as the first part of "
                    "the repository path"
                )
        _check_path(self.path)
        if self.tag is not None:
            _check_tag(self.tag)
        if self.digest is not None:
            _check_digest(self.digest)
        text = str(self)
        if _IDENTIFIER_RE.fullmatch(text):
            # docker refuses these so that an image ID is never mistaken for a name.
            raise RefError(
                f"{_show(text)} is 64 hex digits, which reads as an image ID, not a repository name"
            )
        if not _REFERENCE_RE.fullmatch(text):
            raise RefError(f"{_show(text)} is not a valid image reference")

    def __str__(self) -> str:
        """The reference as written: ``[registry/]path[:tag][@digest]``."""
        text = self.path if self.registry is None else f"{self.registry}/{self.path}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def normalized(self) -> Reference:
        """The fully qualified form: ``docker.io``, ``library/`` and ``latest`` filled in.

        ``index.docker.io`` becomes ``docker.io`` as in distribution/reference. A tag
        and a digest written together are both kept.
        """
        registry = self.registry
        if registry is None or registry == _LEGACY_DEFAULT_REGISTRY:
            registry = _DEFAULT_REGISTRY
        path = self.path
        if registry == _DEFAULT_REGISTRY and "/" not in path:
            path = _OFFICIAL_PREFIX + path
        tag = self.tag
        if tag is None and self.digest is None:
            tag = _DEFAULT_TAG
        if (registry, path, tag) == (self.registry, self.path, self.tag):
            return self
        if len(registry) + 1 + len(path) > _NAME_MAX:
            # The added docker.io/library/ made the name too long: the constructor
            # says so, as it always has.
            return dataclasses.replace(self, registry=registry, path=path, tag=tag)
        # No checks again: the parts of a valid reference stay valid with
        # docker.io, library/ and latest filled in; only the length could not.
        return _trusted_reference(registry, path, tag, self.digest)

    @property
    def repository(self) -> str:
        """The normalised ``registry/path``, e.g. ``docker.io/library/ubuntu``."""
        n = self.normalized()
        return f"{n.registry}/{n.path}"

    def familiar(self) -> str:
        """The short form docker prints: ``ubuntu:latest``, ``nvcr.io/nvidia/pytorch:25.09-py3``.

        The ref is normalised first, then ``docker.io/`` and a ``library/`` with a
        single component after it are dropped; tag and digest are kept.
        """
        n = self.normalized()
        if n.registry == _DEFAULT_REGISTRY:
            path = n.path
            rest = path.removeprefix(_OFFICIAL_PREFIX)
            if rest != path and "/" not in rest:
                path = rest
            return str(dataclasses.replace(n, registry=None, path=path))
        return str(n)


#: Builds a `Reference` without `Reference.__post_init__`'s checks: only for parts
#: already proven valid (by `_fast_parse`, or by normalising a valid reference).
_trusted_reference = fast_constructor(Reference)


# --- parsing -----------------------------------------------------------------------


def _fast_parse(text: str) -> Reference | None:
    """`parse(text)` for a reference written the usual way; None for anything else.

    The first ``/``-component is the registry when it has a ``.`` or a ``:`` or
    is ``localhost``, as in `parse` (which also takes an uppercase one: that
    case, never a valid path, is left to it). What remains must match
    `_FAST_REMOTE_RE`, whose path and tag cannot hold a ``/`` before the tag's
    ``:``, so tag and digest are split where `parse` splits them. Every part is
    then one `Reference` accepts, so it is built without its checks; only the
    name's length and the image-ID rule need a look of their own. None means
    "ask the slow path", which then accepts or says why not.
    """
    registry = None
    remote = text
    slash = text.find("/")
    if slash > 0:
        first = text[:slash]
        if "." in first or ":" in first or first == "localhost":
            if _FAST_REGISTRY_RE.fullmatch(first) is None:
                return None
            registry = first
            remote = text[slash + 1 :]
    match = _FAST_REMOTE_RE.fullmatch(remote)
    if match is None:
        return None
    path, tag, digest = match.groups()
    if registry is None:
        if len(path) > _NAME_MAX or (tag is None and digest is None and len(path) == 64):
            return None  # too long, or perhaps an image ID: the slow path says
    elif len(registry) + 1 + len(path) > _NAME_MAX:
        return None
    return _trusted_reference(registry, path, tag, digest)


def parse(text: str) -> Reference:
    """Parse *text* as an image reference, as written (no normalisation).

    The first ``/``-component is the registry when docker would read it as one
    (it has a ``.`` or ``:``, is ``localhost``, or has uppercase letters). Raises
    `RefError` with the reason when *text* is not a reference.
    """
    fast = _fast_parse(text)
    if fast is not None:
        return fast
    return _parse_checked(text)


def _parse_checked(text: str) -> Reference:
    """`parse` the slow way: split, then check part by part, saying what is wrong."""
    if not text:
        raise RefError("the image reference is empty")
    if text != text.strip():
        raise RefError(
            f"image reference {_show(text)} has spaces or line breaks at the start or end"
        )
    if "://" in text:
        # Admins paste transport-prefixed refs from apptainer/skopeo commands.
        scheme = text.split("://", 1)[0]
        raise RefError(
            f"image reference {_show(text)} starts with a transport ({scheme}://); "
            "write the reference alone, e.g. nvcr.io/nvidia/pytorch:25.09-py3"
        )
    if "#" in text:
        # enroot/pyxis write registry#image; that form is not a reference.
        raise RefError(
            f"image reference {_show(text)} has a '#': registry#image is enroot's URI form; "
            "write registry/image instead"
        )
    if text.count("@") > 1:
        raise RefError(f"image reference {_show(text)} has more than one '@'")
    rest, at, digest = text.partition("@")
    if at and not digest:
        raise RefError(f"image reference {_show(text)}: '@' is not followed by a digest")
    # A tag is what follows the last ':' after the last '/'; a ':' before a '/' can
    # only be a registry port.
    colon = rest.rfind(":")
    tag: str | None = None
    name = rest
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            raise RefError(f"image reference {_show(text)}: ':' is not followed by a tag")
    if not name:
        raise RefError(f"image reference {_show(text)} has no repository name")
    if name.startswith("/"):
        raise RefError(f"image reference {_show(text)} starts with '/'")
    first, slash, remainder = name.partition("/")
    if slash and _is_registry_like(first):
        registry: str | None = first
        path = remainder
    else:
        if name.startswith("[") and not slash:
            raise RefError(
                f"image reference {_show(text)} looks like a registry address, "
                "but no repository path follows it"
            )
        if name.startswith("["):
            raise RefError(
                f"registry {_show(first)} is not an IPv6 address: it has no ':', "
                "so docker reads it as part of the repository path"
            )
        registry, path = None, name
    return Reference(registry=registry, path=path, tag=tag, digest=digest or None)


def normalize(text: str) -> str:
    """Parse *text* and return its fully qualified form: ``docker.io/library/ubuntu:latest``."""
    return str(parse(text).normalized())


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
        raise RefError(f"file name {_show(rel)} has nothing before '.sif'")
    return parse(stem)


def enroot_filename(ref: Reference) -> str:
    """The file name ``enroot import`` gives *ref*: ``nvidia+pytorch+25.09-py3.sqsh``.

    The registry is dropped, ``/`` becomes ``+``, ``+<tag>`` follows when there is a
    tag. enroot has no way to name a digest, so a ref with one is refused.
    """
    if ref.digest is not None:
        raise RefError(
            f"{_show(str(ref))} names a digest, which an enroot file name cannot hold; use a tag"
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
        raise RefError(f"file name {_show(name)} does not end in '.sqsh'")
    stem = name.removesuffix(_SQSH_SUFFIX)
    if not stem:
        raise RefError(f"file name {_show(name)} has nothing before '.sqsh'")
    parts = stem.split("+")
    if not all(parts):
        raise RefError(f"enroot file name {_show(name)} has an empty part between '+' signs")
    if "/" in name:
        raise RefError(f"enroot file name {_show(name)} has a '/'; enroot writes '+' instead")
    if len(parts) == 1:
        path, tag = parts[0], None
    else:
        path, tag = "/".join(parts[:-1]), parts[-1]
    # The usual name needs no checks beyond these matches (see `_fast_parse`);
    # anything else goes through the constructor, which says what is wrong. A
    # 64-character name without tag may read as an image ID: the constructor decides.
    plain = len(path) != 64 if tag is None else _TAG_RE.fullmatch(tag) is not None
    if plain and len(path) <= _NAME_MAX and _FAST_PATH_RE.fullmatch(path):
        return _trusted_reference(None, path, tag, None)
    return Reference(registry=None, path=path, tag=tag)


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
        raise RefError(f"file name {_show(rel)} has a NUL byte")
    try:
        os.fsencode(rel)
        os.fsencode(root)
    except UnicodeEncodeError as exc:
        raise RefError(f"file name {_show(rel)} cannot be written on this file system") from exc
    if os.path.isabs(rel):
        raise RefError(f"{_show(rel)} is an absolute path; it would be outside the cache root")
    candidate = os.path.normpath(os.path.join(root, rel))
    lexical_root = os.path.abspath(root)
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    # Both checks: the lexical one catches '..' before any symlink is involved, the
    # resolved one catches symlinks (inside the root) that point out of it.
    for base, path in ((lexical_root, os.path.abspath(candidate)), (real_root, real)):
        if os.path.commonpath([base, path]) != base:
            raise RefError(f"{_show(rel)} would be outside the cache root {_show(root)}")
        if path == base:
            raise RefError(
                f"{_show(rel)} would be the cache root {_show(root)} itself, not a file in it"
            )
    return candidate
