"""Image references: parsing as written, and normalisation.

A reference is ``[registry/]path[:tag][@digest]`` as docker, podman, apptainer and
enroot understand it (github.com/distribution/reference, ``regexp.go`` and
``normalize.go``). Parsing keeps the reference *as written*; `Reference.normalized`
adds the implied ``docker.io``, ``library/`` and ``latest``. How each cache kind
names its files after a reference is in `naming`; the grammar's patterns and
the checks that say what is wrong with a part are in `refgrammar`.

Parsing has a fast path: a reference written the usual way (a registry with a
``.``, a port or ``localhost``, lowercase path, tag, a sha256/384/512 digest) is
recognised by one regular expression whose every match is a valid reference,
and built without checking its parts again. Anything else takes the slow path,
which checks part by part to say what is wrong. Both give the same result; the
scanner parses a name for every file it finds, and the checks cost ten times
the match.

Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from imgcache.backends.inventory.model import fast_constructor
from imgcache.backends.inventory.refgrammar import (
    FAST_PATH_RE,
    FAST_REGISTRY_RE,
    FAST_REMOTE_RE,
    IDENTIFIER_RE,
    REFERENCE_RE,
    TAG_RE,
    RefError,
    check_digest,
    check_path,
    check_registry,
    check_tag,
    is_registry_like,
    quoted,
)

__all__ = [
    "RefError",
    "Reference",
    "normalize",
    "parse",
    "path_reference",
    "quoted",
]

_NAME_MAX = 255
_DEFAULT_REGISTRY = "docker.io"
_LEGACY_DEFAULT_REGISTRY = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_DEFAULT_TAG = "latest"


# --- the reference ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference as written: ``[registry/]path[:tag][@digest]``.

    Construction validates every part, so a `Reference` that exists is safe to turn
    into a file name. A registry must be one docker would read as a registry (with a
    ``.``, a ``:port``, uppercase, or ``localhost``), otherwise ``str()`` would read
    back differently. With ``registry=None`` the path is kept as given even when its
    first component looks like a registry (enroot file names carry no registry, so
    `naming.enroot_ref_from_filename` can produce such paths); ``str()`` of such a ref reads
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
                f"repository name {quoted(name)} is {len(name)} characters long; "
                f"at most {_NAME_MAX} are allowed"
            )
        if self.registry is not None:
            check_registry(self.registry)
            if not is_registry_like(self.registry):
                raise RefError(
                    f"{quoted(self.registry)} cannot be a registry: a registry needs a '.', "
                    "a ':port', or to be 'localhost', or it is read as the first part of "
                    "the repository path"
                )
        check_path(self.path)
        if self.tag is not None:
            check_tag(self.tag)
        if self.digest is not None:
            check_digest(self.digest)
        text = str(self)
        if IDENTIFIER_RE.fullmatch(text):
            # docker refuses these so that an image ID is never mistaken for a name.
            raise RefError(
                f"{quoted(text)} is 64 hex digits, which reads as an image ID, "
                "not a repository name"
            )
        if not REFERENCE_RE.fullmatch(text):
            raise RefError(f"{quoted(text)} is not a valid image reference")

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
    `FAST_REMOTE_RE`, whose path and tag cannot hold a ``/`` before the tag's
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
            if FAST_REGISTRY_RE.fullmatch(first) is None:
                return None
            registry = first
            remote = text[slash + 1 :]
    match = FAST_REMOTE_RE.fullmatch(remote)
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
            f"image reference {quoted(text)} has spaces or line breaks at the start or end"
        )
    if "://" in text:
        # Admins paste transport-prefixed refs from apptainer/skopeo commands.
        scheme = text.split("://", 1)[0]
        raise RefError(
            f"image reference {quoted(text)} starts with a transport ({scheme}://); "
            "write the reference alone, e.g. nvcr.io/nvidia/pytorch:25.09-py3"
        )
    if "#" in text:
        # enroot/pyxis write registry#image; that form is not a reference.
        raise RefError(
            f"image reference {quoted(text)} has a '#': registry#image is enroot's URI form; "
            "write registry/image instead"
        )
    if text.count("@") > 1:
        raise RefError(f"image reference {quoted(text)} has more than one '@'")
    rest, at, digest = text.partition("@")
    if at and not digest:
        raise RefError(f"image reference {quoted(text)}: '@' is not followed by a digest")
    # A tag is what follows the last ':' after the last '/'; a ':' before a '/' can
    # only be a registry port.
    colon = rest.rfind(":")
    tag: str | None = None
    name = rest
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            raise RefError(f"image reference {quoted(text)}: ':' is not followed by a tag")
    if not name:
        raise RefError(f"image reference {quoted(text)} has no repository name")
    if name.startswith("/"):
        raise RefError(f"image reference {quoted(text)} starts with '/'")
    first, slash, remainder = name.partition("/")
    if slash and is_registry_like(first):
        registry: str | None = first
        path = remainder
    else:
        if name.startswith("[") and not slash:
            raise RefError(
                f"image reference {quoted(text)} looks like a registry address, "
                "but no repository path follows it"
            )
        if name.startswith("["):
            raise RefError(
                f"registry {quoted(first)} is not an IPv6 address: it has no ':', "
                "so docker reads it as part of the repository path"
            )
        registry, path = None, name
    return Reference(registry=registry, path=path, tag=tag, digest=digest or None)


def path_reference(path: str, tag: str | None) -> Reference:
    """The reference with no registry that *path* and *tag*, read from a file name, make.

    Raises `RefError` when they do not make a reference.
    """
    # The usual name needs no checks beyond these matches (see `_fast_parse`);
    # anything else goes through the constructor, which says what is wrong. A
    # 64-character name without tag may read as an image ID: the constructor decides.
    plain = len(path) != 64 if tag is None else TAG_RE.fullmatch(tag) is not None
    if plain and len(path) <= _NAME_MAX and FAST_PATH_RE.fullmatch(path):
        return _trusted_reference(None, path, tag, None)
    return Reference(registry=None, path=path, tag=tag)


def normalize(text: str) -> str:
    """Parse *text* and return its fully qualified form: ``docker.io/library/ubuntu:latest``."""
    return str(parse(text).normalized())
