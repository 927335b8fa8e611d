"""The reference grammar: distribution/reference's patterns, and checks that say what is wrong.

`refs` parses and normalises references with these; a text the patterns refuse
goes through the part checks (`check_registry`, `check_path`, `check_tag`,
`check_digest`), each of which raises `RefError` with a reason an admin can act
on. The fast-path patterns match only what the checks accept.

Nothing here does I/O.
"""

from __future__ import annotations

import re

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
REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?")
_DOMAIN_AND_PORT_RE = re.compile(_DOMAIN_AND_PORT)
_DOMAIN_COMPONENT_RE = re.compile(_DOMAIN_COMPONENT)
_IPV6_RE = re.compile(_IPV6)
_PORT_DIGITS_RE = re.compile(r"[0-9]+")
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT)
TAG_RE = re.compile(_TAG)
_DIGEST_ALGORITHM_RE = re.compile(_DIGEST_ALGORITHM)
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_BAD_SEPARATOR_RE = re.compile(r"[._-]{2,}")

# The fast path: patterns that match only what the slow path accepts (see
# `_fast_parse`). A domain component spelled without the alternation of
# `_DOMAIN_COMPONENT` (the same strings, less backtracking); a registry is one
# docker reads as a registry: localhost, or a name with a '.' or a ':port'.
# Digests: only the registered algorithms, lowercase, with their exact lengths
# (what `check_digest` accepts).
_FAST_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
FAST_REGISTRY_RE = re.compile(
    r"localhost(?::[0-9]+)?"
    r"|" + _FAST_DOMAIN_COMPONENT + r"(?:\." + _FAST_DOMAIN_COMPONENT + r")+(?::[0-9]+)?"
    r"|" + _FAST_DOMAIN_COMPONENT + r":[0-9]+"
)
_FAST_PATH = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
FAST_PATH_RE = re.compile(_FAST_PATH)
_FAST_DIGEST = r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}"
#: What follows the registry: path, then optional tag and digest.
FAST_REMOTE_RE = re.compile(
    r"(" + _FAST_PATH + r")(?::(" + _TAG + r"))?(?:@(" + _FAST_DIGEST + r"))?"
)

_TAG_MAX = 128
# go-digest only accepts registered algorithms, each with a fixed lowercase length.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HOST_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")

_TAG_RULE = "allowed: letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-'"
_PATH_RULE = "allowed: lowercase letters, digits, and '.', '_', '__' or '-' between them"


class RefError(ValueError):
    """A text that is not an image reference, or a name that does not map to one.

    The message says why in plain words, so it can be shown to the admin as is.
    """


def quoted(text: str, limit: int = 72) -> str:
    """Quote *text* for a message, shortening it so one bad ref cannot flood a screen."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def _first_bad(text: str, allowed: frozenset[str]) -> str | None:
    """The first character of *text* outside *allowed*, if any."""
    return next((c for c in text if c not in allowed), None)


def is_registry_like(first: str) -> bool:
    """Whether docker reads a first ``/``-component as a registry (splitDockerDomain)."""
    return first == "localhost" or "." in first or ":" in first or first.lower() != first


# --- checks of the parts, each with its own reason ------------------------------


def check_registry(registry: str) -> None:
    """Refuse a registry that is not ``host[:port]``, saying what is wrong with it."""
    if _DOMAIN_AND_PORT_RE.fullmatch(registry):
        return
    if not registry:
        raise RefError("the registry name is empty")
    if registry.startswith("["):
        close = registry.find("]")
        if close < 0:
            raise RefError(
                f"registry {quoted(registry)} opens '[' for an IPv6 address but never closes it"
            )
        host, rest = registry[: close + 1], registry[close + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise RefError(
                f"registry {quoted(registry)}: {quoted(host)} is not an IPv6 address "
                "(hex digits and ':' between '[' and ']')"
            )
        port = rest[1:] if rest.startswith(":") else None
        if port is None or not _PORT_DIGITS_RE.fullmatch(port):
            raise RefError(
                f"registry {quoted(registry)}: only ':<port number>' may follow the IPv6 address"
            )
    else:
        host, colon, port = registry.partition(":")
        if not host:
            raise RefError(f"registry {quoted(registry)} has no host name before the port")
        if colon and not _PORT_DIGITS_RE.fullmatch(port):
            raise RefError(f"registry port {quoted(port)} must be a number")
        bad = _first_bad(host.replace(".", ""), _HOST_CHARS)
        if bad is not None:
            raise RefError(
                f"registry host {quoted(host)} has a character a host name cannot hold: {bad!r} "
                "(allowed: letters, digits, '-', and '.' between parts)"
            )
        for part in host.split("."):
            if not part:
                raise RefError(f"registry host {quoted(host)} has an empty part between dots")
            if not _DOMAIN_COMPONENT_RE.fullmatch(part):
                raise RefError(f"registry host part {quoted(part)} must not start or end with '-'")
    # Every way the grammar can fail is covered above; this keeps the grammar the judge.
    raise RefError(f"registry {quoted(registry)} is not a valid host[:port]")


def check_path(path: str) -> None:
    """Refuse a repository path outside the grammar, saying which component is wrong."""
    if not path:
        raise RefError("the repository path is empty")
    if path.startswith("/"):
        raise RefError(f"repository path {quoted(path)} starts with '/'")
    if path.endswith("/"):
        raise RefError(f"repository path {quoted(path)} ends with '/'")
    if "//" in path:
        raise RefError(f"repository path {quoted(path)} has an empty component ('//')")
    if any("A" <= c <= "Z" for c in path):
        raise RefError(f"repository name must be lowercase: {quoted(path)}")
    if ":" in path:
        raise RefError(
            f"repository path {quoted(path)} has a ':' inside it; "
            "a ':' may only come before a registry port or before the tag"
        )
    for component in path.split("/"):
        if _PATH_COMPONENT_RE.fullmatch(component):
            continue
        bad = _first_bad(component, _PATH_CHARS)
        if bad is not None:
            raise RefError(
                f"path component {quoted(component)} has a character a repository path "
                f"cannot hold: {bad!r} ({_PATH_RULE})"
            )
        if component[0] in "._-" or component[-1] in "._-":
            raise RefError(
                f"path component {quoted(component)} must start and end with a lowercase "
                "letter or digit"
            )
        for run in _BAD_SEPARATOR_RE.findall(component):
            if run != "__" and set(run) != {"-"}:
                raise RefError(
                    f"path component {quoted(component)} joins its parts with {run!r}; "
                    "between letters and digits only one '.', one '_', '__', "
                    "or any number of '-' may stand"
                )
        raise RefError(f"path component {quoted(component)} is not valid ({_PATH_RULE})")


def check_tag(tag: str) -> None:
    """Refuse a tag outside ``[\\w][\\w.-]{0,127}``, saying why."""
    if TAG_RE.fullmatch(tag):
        return
    if not tag:
        raise RefError("the tag is empty: ':' is not followed by a tag")
    bad = _first_bad(tag, _TAG_CHARS)
    if bad is not None:
        raise RefError(
            f"tag {quoted(tag)} has a character a tag cannot hold: {bad!r} ({_TAG_RULE})"
        )
    if len(tag) > _TAG_MAX:
        raise RefError(f"tag {quoted(tag)} is {len(tag)} characters long; a tag holds at most 128")
    raise RefError(
        f"tag {quoted(tag)} starts with {tag[0]!r}; a tag must start with a letter, digit or '_'"
    )


def check_digest(digest: str) -> None:
    """Refuse a digest that the grammar or go-digest would refuse, saying why."""
    if not digest:
        raise RefError("the digest is empty: '@' is not followed by a digest")
    algorithm, colon, hexpart = digest.partition(":")
    if not colon:
        raise RefError(
            f"digest {quoted(digest)} has no ':'; a digest is written algorithm:hex, "
            "e.g. sha256:<64 hex digits>"
        )
    if not _DIGEST_ALGORITHM_RE.fullmatch(algorithm):
        raise RefError(
            f"digest algorithm {quoted(algorithm)} is not valid (letters and digits starting "
            "with a letter, parts joined by '+', '.', '_' or '-')"
        )
    if not _HEX_RE.fullmatch(hexpart):
        bad = next(c for c in hexpart if c not in "0123456789abcdefABCDEF")
        raise RefError(f"digest {quoted(digest)} has a character that is not a hex digit: {bad!r}")
    if len(hexpart) < 32:
        raise RefError(
            f"digest {quoted(digest)} has only {len(hexpart)} hex digits; at least 32 are needed"
        )
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise RefError(
            f"digest algorithm {quoted(algorithm)} is not supported (sha256, sha384 or sha512)"
        )
    if len(hexpart) != expected:
        raise RefError(
            f"a {algorithm} digest has exactly {expected} hex digits; "
            f"{quoted(digest)} has {len(hexpart)}"
        )
    if hexpart != hexpart.lower():
        raise RefError(f"{algorithm} digest {quoted(digest)} must be written in lowercase hex")
